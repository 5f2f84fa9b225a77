//! Who may do what: signed, scoped bearer tokens and the one place that decides.
//!
//! Tokens are EdDSA (Ed25519) JWTs. Nodes hold only public keys (several, by `kid`, so a key can
//! rotate without downtime); only whoever holds a private key can mint tokens. A token carries a
//! [`Role`], for store staff the store id, an issuer, an audience and an expiry.
//!
//! Each node declares its routes' required [`Permission`]s in one table of [`Rule`]s;
//! [`authorize`] (installed by [`crate::router::finish`] on every route) looks the matched route
//! up, checks the media type of mutating requests, then the token:
//! - no rule for a route: 403 (deny by default);
//! - a mutating request (`POST`, `PUT`, `PATCH`, `DELETE`) with a body or a `Content-Type` that is
//!   not JSON: 415, so no HTML form can reach a route;
//! - missing, malformed, expired or badly signed token: 401 with `WWW-Authenticate: Bearer`;
//! - a valid token whose role (or store) does not grant the permission: 403.
//!
//! The refusal happens before any handler runs, so a refused request writes nothing.
//!
//! - [`keys`]: key files (a new pair written owner-only, a signing key, a node's verifier).
//! - [`protect`]: protected mode, no authentication only on loopback unless consented to.

pub mod keys;
pub mod protect;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::problem::Problem;

/// The `iss` of every stockmesh token.
pub const ISSUER: &str = "stockmesh";
/// The `aud` of every stockmesh token.
pub const AUDIENCE: &str = "stockmesh";

/// What a token holder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, everywhere.
    Admin,
    /// Staff of one store: that store's own API only.
    Store,
    /// Central: read the view and the purchases, make remote purchases.
    Sales,
    /// Reads, at Central and at the stores.
    Viewer,
    /// Scrapes `/metrics`.
    Metrics,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Store,
        Role::Sales,
        Role::Viewer,
        Role::Metrics,
    ];

    /// The role's name in tokens and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Store => "store",
            Role::Sales => "sales",
            Role::Viewer => "viewer",
            Role::Metrics => "metrics",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?} (admin, store, sales, viewer, metrics)"))
    }
}

/// The claims of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: [`ISSUER`].
    pub iss: String,
    /// Audience: [`AUDIENCE`].
    pub aud: String,
    /// Subject: who the token was made for (free text).
    pub sub: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// The holder's role.
    pub role: Role,
    /// For [`Role::Store`]: the store whose API the holder may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Anyone, without a token (`GET /`, `/healthz`, `/readyz`).
    Public,
    /// Scrape `/metrics`.
    Metrics,
    /// Read Central's view and purchases.
    ViewRead,
    /// Make a remote purchase at Central.
    Sell,
    /// Read a store's own API.
    StoreRead,
    /// Change a store's stock or link through its own API.
    StoreWrite,
    /// Administer (provision stores).
    Admin,
}

impl Permission {
    /// Whether `claims` grant this permission on a node that serves store `node_store` (None
    /// for Central).
    pub fn granted(self, claims: &Claims, node_store: Option<&str>) -> bool {
        let own_store = || matches!((claims.store.as_deref(), node_store), (Some(mine), Some(node)) if mine == node);
        match (claims.role, self) {
            (_, Permission::Public) | (Role::Admin, _) => true,
            (Role::Metrics, Permission::Metrics) => true,
            (Role::Sales, Permission::ViewRead | Permission::Sell) => true,
            (Role::Viewer, Permission::ViewRead | Permission::StoreRead) => true,
            (Role::Store, Permission::StoreRead | Permission::StoreWrite) => own_store(),
            _ => false,
        }
    }
}

/// One row of a node's table: `method` on the route `path` (as declared, e.g.
/// `/inventory/{product_id}`) requires `permission`. `GET` rows cover `HEAD` too.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The method.
    pub method: Method,
    /// The route as declared in the router.
    pub path: &'static str,
    /// What it requires.
    pub permission: Permission,
}

impl Rule {
    /// A `GET` rule.
    pub const fn get(path: &'static str, permission: Permission) -> Self {
        Self {
            method: Method::GET,
            path,
            permission,
        }
    }
    /// A `POST` rule.
    pub const fn post(path: &'static str, permission: Permission) -> Self {
        Self {
            method: Method::POST,
            path,
            permission,
        }
    }
    /// A `PUT` rule.
    pub const fn put(path: &'static str, permission: Permission) -> Self {
        Self {
            method: Method::PUT,
            path,
            permission,
        }
    }
    /// A `DELETE` rule.
    pub const fn delete(path: &'static str, permission: Permission) -> Self {
        Self {
            method: Method::DELETE,
            path,
            permission,
        }
    }
}

/// The rows of the routes every node serves through this crate, read after a node's own table:
/// `/healthz` ([`crate::router::finish`]), the spec and the API reference page
/// ([`crate::openapi::serve`]). All public: they hold no data.
pub const SHARED: &[Rule] = &[
    Rule::get("/healthz", Permission::Public),
    Rule::get(crate::paths::SPEC_PATH, Permission::Public),
    Rule::get(crate::paths::DOCS_PATH, Permission::Public),
    Rule::get("/docs/", Permission::Public),
    Rule::get("/docs/{*rest}", Permission::Public),
];

/// The permission `method` on `path` requires in `table` (or in [`SHARED`]), if either names it.
pub fn required(table: &[Rule], method: &Method, path: &str) -> Option<Permission> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    table
        .iter()
        .chain(SHARED)
        .find(|rule| rule.method == method && rule.path == path)
        .map(|rule| rule.permission)
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization: Bearer` header.
    #[error("a bearer token is required")]
    Missing,
    /// Expired.
    #[error("the token has expired")]
    Expired,
    /// Not a token, unknown key, bad signature, wrong issuer, audience or algorithm.
    #[error("the token is not valid")]
    Invalid,
}

/// Checks tokens against a set of public keys, by `kid`.
#[derive(Clone)]
pub struct Verifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<_> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("Verifier").field("kids", &kids).finish()
    }
}

/// A key that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

impl Verifier {
    /// A verifier over `(kid, public key PEM)` pairs; at least one.
    pub fn new(keys: impl IntoIterator<Item = (String, String)>) -> Result<Self, KeyError> {
        let mut map = HashMap::new();
        for (kid, pem) in keys {
            let key = DecodingKey::from_ed_pem(pem.as_bytes())
                .map_err(|e| KeyError(format!("public key {kid:?} is not an Ed25519 PEM: {e}")))?;
            map.insert(kid, key);
        }
        if map.is_empty() {
            return Err(KeyError("no public key given".into()));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        validation.validate_exp = true;
        Ok(Self {
            keys: map,
            validation,
        })
    }

    /// The key ids this verifier knows.
    pub fn kids(&self) -> Vec<String> {
        let mut kids: Vec<_> = self.keys.keys().cloned().collect();
        kids.sort();
        kids
    }

    /// The claims of `token` if it is signed by one of the keys, unexpired and for stockmesh.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(TokenError::Invalid)?;
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                }
            })?;
        let claims = data.claims;
        if claims.role == Role::Store && claims.store.is_none() {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }
}

/// Mints tokens with one private key.
#[derive(Clone)]
pub struct Issuer {
    kid: String,
    key: EncodingKey,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer").field("kid", &self.kid).finish()
    }
}

impl Issuer {
    /// An issuer from a PKCS#8 Ed25519 private key PEM, naming its tokens' key `kid`.
    pub fn new(kid: impl Into<String>, private_pem: &str) -> Result<Self, KeyError> {
        let key = EncodingKey::from_ed_pem(private_pem.as_bytes())
            .map_err(|e| KeyError(format!("private key is not an Ed25519 PEM: {e}")))?;
        Ok(Self {
            kid: kid.into(),
            key,
        })
    }

    /// A token for `role` (and `store`) that expires after `ttl`.
    pub fn issue(
        &self,
        subject: &str,
        role: Role,
        store: Option<&str>,
        ttl: Duration,
    ) -> Result<String, KeyError> {
        if role == Role::Store && store.is_none() {
            return Err(KeyError("a store token needs --store".into()));
        }
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        self.sign(&Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: subject.into(),
            iat: now,
            exp: now.saturating_add(ttl),
            role,
            store: store.map(str::to_owned),
        })
    }

    /// Signs arbitrary claims (tests forge expired tokens with it).
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
            .map_err(|e| KeyError(format!("cannot sign: {e}")))
    }
}

/// A fresh Ed25519 key pair as PEM: (PKCS#8 private key, SPKI public key).
pub fn generate_key_pair() -> Result<(String, String), KeyError> {
    use ed25519_dalek::SigningKey;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use ed25519_dalek::pkcs8::spki::EncodePublicKey;
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    let seed: [u8; 32] = rand::random();
    let signing = SigningKey::from_bytes(&seed);
    let private = signing
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError(format!("cannot encode the private key: {e}")))?;
    let public = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError(format!("cannot encode the public key: {e}")))?;
    Ok((private.to_string(), public))
}

/// What a node's [`authorize`] layer needs: its table, its store (if a store) and its keys (None:
/// no authentication, every route open).
#[derive(Debug, Clone)]
pub struct Access {
    /// The node's route table.
    pub table: &'static [Rule],
    /// The store this node serves (None for Central).
    pub node_store: Option<String>,
    /// The keys tokens are checked against; None disables authentication.
    pub verifier: Option<Arc<Verifier>>,
}

fn unauthorized(error: &TokenError) -> Response {
    let mut response =
        Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", error.to_string()).into_response();
    let challenge = match error {
        TokenError::Missing => r#"Bearer realm="stockmesh""#,
        TokenError::Expired => {
            r#"Bearer realm="stockmesh", error="invalid_token", error_description="expired""#
        }
        TokenError::Invalid => r#"Bearer realm="stockmesh", error="invalid_token""#,
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

fn forbidden(detail: impl Into<String>) -> Response {
    Problem::new(StatusCode::FORBIDDEN, "Forbidden", detail).into_response()
}

fn bearer(request: &Request) -> Result<&str, TokenError> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(TokenError::Missing)?
        .to_str()
        .map_err(|_| TokenError::Invalid)?;
    let (scheme, token) = value.split_once(' ').ok_or(TokenError::Invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(TokenError::Invalid);
    }
    Ok(token.trim())
}

/// A mutating request must carry JSON or nothing: no form, no text.
fn media_type_ok(request: &Request) -> bool {
    let mutating = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !mutating {
        return true;
    }
    if request.headers().contains_key(header::CONTENT_TYPE) {
        return crate::extract::is_json(request.headers());
    }
    let has_body = request.headers().contains_key(header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    !has_body
}

/// The middleware: media type, then token, then permission. See the module documentation.
pub async fn authorize(
    State(access): State<Arc<Access>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let Some(permission) = required(access.table, request.method(), &path) else {
        return forbidden(format!("{} {path} is not open to anyone", request.method()));
    };
    if !media_type_ok(&request) {
        return Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            "a request that changes anything must be sent with Content-Type: application/json",
        )
        .into_response();
    }
    if permission == Permission::Public {
        return next.run(request).await;
    }
    let Some(verifier) = &access.verifier else {
        return next.run(request).await;
    };
    let claims = match bearer(&request).and_then(|token| verifier.verify(token)) {
        Ok(claims) => claims,
        Err(error) => {
            metrics::counter!("stockmesh_auth_refused_total", "status" => "401").increment(1);
            return unauthorized(&error);
        }
    };
    if !permission.granted(&claims, access.node_store.as_deref()) {
        metrics::counter!("stockmesh_auth_refused_total", "status" => "403").increment(1);
        let whom = match &claims.store {
            Some(store) => format!("role {} of store {store}", claims.role),
            None => format!("role {}", claims.role),
        };
        return forbidden(format!("{whom} may not {} {path}", request.method()));
    }
    let mut request = request;
    request.extensions_mut().insert(claims);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(kid: &str) -> (Issuer, Verifier) {
        let (private, public) = generate_key_pair().expect("keys");
        (
            Issuer::new(kid, &private).expect("issuer"),
            Verifier::new([(kid.to_owned(), public)]).expect("verifier"),
        )
    }

    #[test]
    fn a_token_round_trips_and_a_foreign_key_is_refused() {
        let (issuer, verifier) = pair("k1");
        let token = issuer
            .issue(
                "clerk",
                Role::Store,
                Some("store-1"),
                Duration::from_secs(60),
            )
            .expect("token");
        let claims = verifier.verify(&token).expect("valid");
        assert_eq!(claims.role, Role::Store);
        assert_eq!(claims.store.as_deref(), Some("store-1"));
        let (_, other) = pair("k1");
        assert_eq!(other.verify(&token), Err(TokenError::Invalid));
        assert_eq!(verifier.verify("garbage"), Err(TokenError::Invalid));
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let (issuer, verifier) = pair("k1");
        let now = chrono::Utc::now().timestamp();
        let token = issuer
            .sign(&Claims {
                iss: ISSUER.into(),
                aud: AUDIENCE.into(),
                sub: "x".into(),
                iat: now - 120,
                exp: now - 60,
                role: Role::Admin,
                store: None,
            })
            .expect("token");
        assert_eq!(verifier.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn keys_rotate_by_kid() {
        let (old_private, old_public) = generate_key_pair().expect("keys");
        let (new_private, new_public) = generate_key_pair().expect("keys");
        let verifier = Verifier::new([
            ("old".to_owned(), old_public),
            ("new".to_owned(), new_public),
        ])
        .expect("verifier");
        for (kid, private) in [("old", old_private), ("new", new_private)] {
            let token = Issuer::new(kid, &private)
                .expect("issuer")
                .issue("x", Role::Viewer, None, Duration::from_secs(60))
                .expect("token");
            assert!(verifier.verify(&token).is_ok(), "{kid}");
        }
    }

    #[test]
    fn roles_grant_what_the_table_says() {
        let claims = |role, store: Option<&str>| Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "x".into(),
            iat: 0,
            exp: 0,
            role,
            store: store.map(str::to_owned),
        };
        let clerk = claims(Role::Store, Some("store-1"));
        assert!(Permission::StoreWrite.granted(&clerk, Some("store-1")));
        assert!(!Permission::StoreWrite.granted(&clerk, Some("store-2")));
        assert!(!Permission::ViewRead.granted(&clerk, None));
        assert!(Permission::Sell.granted(&claims(Role::Sales, None), None));
        assert!(!Permission::StoreWrite.granted(&claims(Role::Viewer, None), Some("store-1")));
        assert!(!Permission::ViewRead.granted(&claims(Role::Metrics, None), None));
        assert!(Permission::Admin.granted(&claims(Role::Admin, None), None));
        assert!(!Permission::Admin.granted(&claims(Role::Sales, None), None));
    }
}
