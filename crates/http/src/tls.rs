//! HTTPS on a node's listener: the acceptor built from a certificate file and its owner-only key.

use std::path::{Path, PathBuf};

use stockmesh_process::FileError;
use stockmesh_process::private::{read, read_secret};

use crate::server::{TlsAcceptor, tls_acceptor};

/// Why the certificate and key could not serve HTTPS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read, or the key is not owner-only.
    #[error(transparent)]
    File(#[from] FileError),
    /// The files do not hold a usable certificate chain and key.
    #[error("{}: {reason}", cert.display())]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// What is wrong with it or its key.
        reason: String,
    },
}

/// The acceptor of the certificate chain `cert` (PEM) and its private key `key` (PEM, owner-only).
pub fn acceptor_from_files(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let cert_pem = read(cert)?;
    let key_pem = read_secret(key)?;
    tls_acceptor(&cert_pem, key_pem.as_bytes()).map_err(|reason| TlsError::Unusable {
        cert: cert.to_path_buf(),
        reason,
    })
}
