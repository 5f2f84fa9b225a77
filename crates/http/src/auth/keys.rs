//! Key files: a new key pair written owner-only, a signing key read from its file, and the
//! verifier a node's `--auth-public-key` flags name.

use std::path::{Path, PathBuf};

use stockmesh_process::FileError;
use stockmesh_process::private::{create_private_dir, read_public, read_secret, write_new};

use super::{Issuer, KeyError, Verifier, generate_key_pair};

/// Why key files could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// A key id with characters a file name or a token header should not hold.
    #[error("a key id is letters, digits, '-', '_' or '.'")]
    BadKid,
    /// A key file could not be read or written, or is not owner-only.
    #[error(transparent)]
    File(#[from] FileError),
    /// A key file does not hold a usable key.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Writes a new key pair `<dir>/<kid>.key` (0600, never overwritten) and `<dir>/<kid>.pub`, in a
/// directory created 0700. Returns (private key path, public key path).
pub fn write_key_pair(dir: &Path, kid: &str) -> Result<(PathBuf, PathBuf), KeyFileError> {
    if kid.is_empty()
        || !kid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(KeyFileError::BadKid);
    }
    create_private_dir(dir)?;
    let (private_pem, public_pem) = generate_key_pair()?;
    let private = dir.join(format!("{kid}.key"));
    let public = dir.join(format!("{kid}.pub"));
    write_new(&private, private_pem.as_bytes(), 0o600)?;
    write_new(&public, public_pem.as_bytes(), 0o644)?;
    Ok((private, public))
}

/// The key id a key file stands for when none is given: its name without extension.
pub fn kid_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// An issuer signing with the owner-only private key at `path`, under `kid` (default: the file's
/// name without extension).
pub fn issuer_from_file(path: &Path, kid: Option<String>) -> Result<Issuer, KeyFileError> {
    let pem = read_secret(path)?;
    Ok(Issuer::new(kid.unwrap_or_else(|| kid_of(path)), &pem)?)
}

/// The verifier of the public keys `specs` name (`KID=PATH`, or `PATH` whose file name is the
/// kid); None when there are none (the node runs without authentication).
pub fn verifier_from_files(specs: &[String]) -> Result<Option<Verifier>, KeyFileError> {
    if specs.is_empty() {
        return Ok(None);
    }
    let mut keys = Vec::new();
    for spec in specs {
        let (kid, path) = match spec.split_once('=') {
            Some((kid, path)) => (kid.to_owned(), PathBuf::from(path)),
            None => (kid_of(Path::new(spec)), PathBuf::from(spec)),
        };
        keys.push((kid, read_public(&path)?));
    }
    Ok(Some(Verifier::new(keys)?))
}

/// The key pair `<dir>/<kid>.key` and `.pub`, made on first use: its issuer, its verifier and the
/// private key's path (`stockmesh up --auth`).
pub fn local_key_pair(dir: &Path, kid: &str) -> Result<(Issuer, Verifier, PathBuf), KeyFileError> {
    let (private, public) = (
        dir.join(format!("{kid}.key")),
        dir.join(format!("{kid}.pub")),
    );
    if !private.exists() {
        write_key_pair(dir, kid)?;
    }
    let issuer = issuer_from_file(&private, Some(kid.to_owned()))?;
    let verifier = Verifier::new([(kid.to_owned(), read_public(&public)?)])?;
    Ok((issuer, verifier, private))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn a_written_pair_signs_tokens_its_verifier_accepts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let (private, public) = write_key_pair(&keys, "k1").expect("key pair");
        let issuer = issuer_from_file(&private, None).expect("issuer");
        let spec = format!("k1={}", public.display());
        let verifier = verifier_from_files(&[spec])
            .expect("verifier")
            .expect("some");
        let token = issuer
            .issue(
                "someone",
                Role::Admin,
                None,
                std::time::Duration::from_secs(60),
            )
            .expect("token");
        assert!(verifier.verify(&token).is_ok());
        assert!(matches!(
            write_key_pair(&keys, "k1"),
            Err(KeyFileError::File(_))
        ));
    }

    #[test]
    fn a_key_id_with_a_slash_is_refused_and_no_keys_mean_no_verifier() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            write_key_pair(dir.path(), "../k"),
            Err(KeyFileError::BadKid)
        ));
        assert!(verifier_from_files(&[]).expect("no keys").is_none());
    }

    #[test]
    fn the_local_pair_is_made_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, _, path) = local_key_pair(dir.path(), "up").expect("first");
        let (_, verifier, again) = local_key_pair(dir.path(), "up").expect("second");
        assert_eq!(path, again);
        let token = first
            .issue(
                "up-admin",
                Role::Admin,
                None,
                std::time::Duration::from_secs(60),
            )
            .expect("token");
        assert!(
            verifier.verify(&token).is_ok(),
            "the second load reads the first pair"
        );
    }
}
