//! What a single node (`stockmesh store`, `stockmesh central`) sets up before it starts: its
//! verifier, its HTTPS acceptor, protected mode, its listener.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use stockmesh_http::auth::Verifier;
use stockmesh_http::auth::keys::verifier_from_files;
use stockmesh_http::auth::protect::protect;
use stockmesh_http::server::TlsAcceptor;
use tokio::net::TcpListener;

use crate::cli::{AuthArgs, TlsArgs};

/// A node's listener and who may call it.
pub struct Listening {
    /// The bound socket.
    pub listener: TcpListener,
    /// The token verifier; None: no authentication.
    pub auth: Option<Arc<Verifier>>,
    /// The HTTPS acceptor; None: plain HTTP.
    pub tls: Option<TlsAcceptor>,
}

impl Listening {
    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

/// Reads the keys and certificate the flags name, refuses an open network address, binds.
pub async fn listen(addr: SocketAddr, args: &AuthArgs, tls: &TlsArgs) -> anyhow::Result<Listening> {
    let auth = verifier_from_files(&args.public_keys)?.map(Arc::new);
    if let Some(verifier) = &auth {
        tracing::info!(kids = ?verifier.kids(), "bearer tokens required");
    }
    let tls = match (&tls.tls_cert, &tls.tls_key) {
        (Some(cert), Some(key)) => Some(stockmesh_http::tls::acceptor_from_files(cert, key)?),
        _ => None,
    };
    protect(addr, auth.as_deref(), args.insecure_no_auth)?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    Ok(Listening {
        listener,
        auth,
        tls,
    })
}
