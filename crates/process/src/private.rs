//! Files that only this user may read: key files, TLS keys, node data directories.
//!
//! A secret another account can read is no longer a secret, and a public key another account can
//! replace lets it mint accepted tokens, so both are refused before they are used, with the
//! `chmod` that mends them.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file system refused (missing file, no permission, already exists, …).
    #[error("cannot {action} {}{note}", path.display())]
    Io {
        /// What was attempted: `read`, `create`, `write`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// A hint after the path (empty when none).
        note: &'static str,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A secret that its group or others may read or write.
    #[error(
        "{} is accessible to others (mode {mode:03o}); make it owner-only: chmod 600 {}",
        path.display(),
        path.display()
    )]
    NotOwnerOnly {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A public file that its group or others may write.
    #[error("{} is writable by others (mode {mode:03o}); chmod 644 {}", path.display(), path.display())]
    WritableByOthers {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

fn io(
    action: &'static str,
    path: &Path,
    note: &'static str,
) -> impl FnOnce(std::io::Error) -> FileError {
    let path = path.to_path_buf();
    move |source| FileError::Io {
        action,
        path,
        note,
        source,
    }
}

/// Creates `dir` and its missing parents readable by this user only (0700).
pub fn create_private_dir(dir: &Path) -> Result<(), FileError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create", dir, ""))
}

/// Writes a file that must not exist yet, with permission bits `mode`.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io("create", path, " (it must not exist yet)"))?;
    file.write_all(bytes).map_err(io("write", path, ""))
}

/// Reads a file whose contents are not secret (a certificate).
pub fn read(path: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(path).map_err(io("read", path, ""))
}

/// Reads a secret file, refusing one that its group or others may read or write.
pub fn read_secret(path: &Path) -> Result<String, FileError> {
    let mode = mode_of(path)?;
    if mode & 0o077 != 0 {
        return Err(FileError::NotOwnerOnly {
            path: path.to_path_buf(),
            mode,
        });
    }
    std::fs::read_to_string(path).map_err(io("read", path, ""))
}

/// Reads a public file (a verification key), refusing one that its group or others may write:
/// whoever can replace it can mint accepted tokens.
pub fn read_public(path: &Path) -> Result<String, FileError> {
    let mode = mode_of(path)?;
    if mode & 0o022 != 0 {
        return Err(FileError::WritableByOthers {
            path: path.to_path_buf(),
            mode,
        });
    }
    std::fs::read_to_string(path).map_err(io("read", path, ""))
}

fn mode_of(path: &Path) -> Result<u32, FileError> {
    let meta = std::fs::metadata(path).map_err(io("read", path, ""))?;
    Ok(meta.permissions().mode() & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with_mode(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        write_new(&path, b"pem", mode).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn a_secret_readable_by_others_is_refused_with_the_mend() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = file_with_mode(dir.path(), "open.key", 0o644);
        let error = read_secret(&open).expect_err("group-readable secret");
        assert!(matches!(error, FileError::NotOwnerOnly { mode: 0o644, .. }));
        assert!(error.to_string().contains("chmod 600"), "{error}");
        let closed = file_with_mode(dir.path(), "closed.key", 0o600);
        assert_eq!(read_secret(&closed).expect("owner-only secret"), "pem");
    }

    #[test]
    fn a_public_file_writable_by_others_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let writable = file_with_mode(dir.path(), "w.pub", 0o664);
        assert!(matches!(
            read_public(&writable),
            Err(FileError::WritableByOthers { mode: 0o664, .. })
        ));
        let readable = file_with_mode(dir.path(), "r.pub", 0o644);
        assert_eq!(read_public(&readable).expect("public key"), "pem");
    }

    #[test]
    fn an_existing_file_is_never_overwritten_and_a_new_dir_is_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("a/b");
        create_private_dir(&nested).expect("mkdir");
        let mode = std::fs::metadata(&nested)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        let path = nested.join("k.key");
        write_new(&path, b"first", 0o600).expect("first write");
        let error = write_new(&path, b"second", 0o600).expect_err("second write");
        assert!(error.to_string().contains("must not exist yet"), "{error}");
        assert_eq!(std::fs::read(&path).expect("read"), b"first");
    }
}
