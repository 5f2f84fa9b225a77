//! `stockmesh auth …`, and the keys and protected mode of every node.

use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use stockmesh_http::auth::{Issuer, Verifier, generate_key_pair};

use crate::cli::{AuthArgs, AuthCommand, KeygenArgs, TokenArgs};

/// Runs an `auth` subcommand.
pub fn run(command: AuthCommand) -> anyhow::Result<()> {
    match command {
        AuthCommand::Keygen(args) => keygen(&args),
        AuthCommand::Token(args) => token(&args),
    }
}

fn keygen(args: &KeygenArgs) -> anyhow::Result<()> {
    let (private, public) = write_key_pair(&args.dir, &args.kid)?;
    println!(
        "private key: {} (keep it secret; it mints tokens)",
        private.display()
    );
    println!(
        "public key:  {} (give it to every node: --auth-public-key {}={})",
        public.display(),
        args.kid,
        public.display()
    );
    Ok(())
}

/// Writes a new key pair `<dir>/<kid>.key` (0600, never overwritten) and `<dir>/<kid>.pub`, in a
/// directory created 0700.
pub fn write_key_pair(dir: &Path, kid: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    if kid.is_empty()
        || !kid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        bail!("a key id is letters, digits, '-', '_' or '.'");
    }
    create_private_dir(dir)?;
    let (private_pem, public_pem) = generate_key_pair()?;
    let private = dir.join(format!("{kid}.key"));
    let public = dir.join(format!("{kid}.pub"));
    write_new(&private, private_pem.as_bytes(), 0o600)?;
    write_new(&public, public_pem.as_bytes(), 0o644)?;
    Ok((private, public))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Creates `dir` and its missing parents readable by this user only (0700): they hold every
/// node's database and the private Redis's data.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Reads a secret file, refusing one that its group or others may read or write.
pub fn read_secret(path: &Path) -> anyhow::Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is accessible to others (mode {mode:03o}); make it owner-only: chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads a public key file, refusing one that its group or others may write (anyone who can
/// replace it can mint accepted tokens).
fn read_public(path: &Path) -> anyhow::Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        bail!(
            "{} is writable by others (mode {mode:03o}); chmod 644 {}",
            path.display(),
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn kid_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn token(args: &TokenArgs) -> anyhow::Result<()> {
    let pem = read_secret(&args.key)?;
    let kid = args.kid.clone().unwrap_or_else(|| kid_of(&args.key));
    let issuer = Issuer::new(kid, &pem)?;
    let token = issuer.issue(
        &args.subject,
        args.role,
        args.store.as_ref().map(|s| s.as_str()),
        args.ttl,
    )?;
    println!("{token}");
    Ok(())
}

/// The HTTPS acceptor the flags name, if any.
pub fn tls(
    args: &crate::cli::TlsArgs,
) -> anyhow::Result<Option<stockmesh_http::server::TlsAcceptor>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let cert_pem =
        std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    let key_pem = read_secret(key)?;
    stockmesh_http::server::tls_acceptor(&cert_pem, key_pem.as_bytes())
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))
}

/// The verifier the flags name, if any.
pub fn verifier(args: &AuthArgs) -> anyhow::Result<Option<Arc<Verifier>>> {
    if args.public_keys.is_empty() {
        return Ok(None);
    }
    let mut keys = Vec::new();
    for spec in &args.public_keys {
        let (kid, path) = match spec.split_once('=') {
            Some((kid, path)) => (kid.to_owned(), PathBuf::from(path)),
            None => (kid_of(Path::new(spec)), PathBuf::from(spec)),
        };
        keys.push((kid, read_public(&path)?));
    }
    let verifier = Verifier::new(keys)?;
    tracing::info!(kids = ?verifier.kids(), "bearer tokens required");
    Ok(Some(Arc::new(verifier)))
}

/// Protected mode: a node without authentication serves only loopback, unless told
/// `--insecure-no-auth` (warned on every start).
pub fn protect(listen: SocketAddr, auth: Option<&Verifier>, insecure: bool) -> anyhow::Result<()> {
    if auth.is_some() {
        return Ok(());
    }
    if listen.ip().is_loopback() {
        tracing::warn!(%listen, "no authentication: every route is open to local processes");
        return Ok(());
    }
    if insecure {
        tracing::warn!(
            %listen,
            "INSECURE: no authentication on a network address (--insecure-no-auth); anyone who \
             reaches this port may change stock and buy"
        );
        return Ok(());
    }
    bail!(
        "refusing to listen on {listen} without authentication: give --auth-public-key (see \
         `stockmesh auth keygen`), listen on 127.0.0.1, or pass --insecure-no-auth"
    )
}
