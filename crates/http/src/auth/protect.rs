//! Protected mode: a node without authentication serves only loopback, unless its operator said
//! `--insecure-no-auth` (warned on every start).

use std::net::SocketAddr;

use super::Verifier;

/// A node was about to serve a network address without authentication.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to listen on {0} without authentication: give --auth-public-key (see \
     `stockmesh auth keygen`), listen on 127.0.0.1, or pass --insecure-no-auth"
)]
pub struct Unprotected(pub SocketAddr);

/// Whether a node may listen on `listen` with `auth` (None: no authentication); `insecure` is
/// the operator's explicit consent to an open network address.
pub fn protect(
    listen: SocketAddr,
    auth: Option<&Verifier>,
    insecure: bool,
) -> Result<(), Unprotected> {
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
    Err(Unprotected(listen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_or_explicit_consent_runs_without_authentication() {
        let local: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let open: SocketAddr = "0.0.0.0:8080".parse().expect("addr");
        assert!(protect(local, None, false).is_ok());
        assert!(protect(open, None, true).is_ok());
        let refused = protect(open, None, false).expect_err("open address without auth");
        assert!(
            refused
                .to_string()
                .contains("refusing to listen on 0.0.0.0:8080")
        );
    }
}
