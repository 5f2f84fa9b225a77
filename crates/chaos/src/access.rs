//! Who the suite's callers and nodes are when it runs secured (the default): a fresh Ed25519 key
//! pair written as `stockmesh auth keygen` writes it (`stockmesh_http::auth::keys`), whose public
//! half every node verifies tokens with; a token for each caller of the least role that suffices; and a Redis ACL user per node
//! from the generator behind `stockmesh redis-acl`, with the default user off and an
//! administrator for the suite's own faults (kill, flush, delete and inject entries).

use std::path::{Path, PathBuf};
use std::time::Duration;

use stockmesh_bus::acl::{self, AclUser, Placement};
use stockmesh_core::StoreId;
use stockmesh_http::auth::keys::{issuer_from_file, write_key_pair};
use stockmesh_http::auth::{Issuer, Role};

/// The key id of the suite's signing key.
pub const KID: &str = "chaos";

/// How long the suite's tokens are valid: longer than any run.
const TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Who makes a request; each gets a token of the least role that suffices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Staff of store N (1-based), on that store's own API (`store`).
    Store(usize),
    /// Remote purchases and reservations at Central (`sales`).
    Sales,
    /// Transfers at Central (`admin`: moving stock between stores is the chain's decision).
    Admin,
    /// Reads at Central and at the stores (`viewer`): the observers and the heal phase.
    Viewer,
    /// `GET /metrics` (`metrics`).
    Metrics,
}

/// One token per caller. No `Debug`: tokens are secrets.
pub struct Tokens {
    stores: Vec<String>,
    sales: String,
    admin: String,
    viewer: String,
    metrics: String,
}

impl Tokens {
    fn issue(issuer: &Issuer, stores: usize) -> anyhow::Result<Self> {
        let token = |role: Role, store: Option<&str>| issuer.issue("chaos", role, store, TOKEN_TTL);
        Ok(Self {
            stores: (1..=stores)
                .map(|i| token(Role::Store, Some(store_id(i).as_str())))
                .collect::<Result<_, _>>()?,
            sales: token(Role::Sales, None)?,
            admin: token(Role::Admin, None)?,
            viewer: token(Role::Viewer, None)?,
            metrics: token(Role::Metrics, None)?,
        })
    }

    /// The token `caller` sends.
    pub fn of(&self, caller: Caller) -> &str {
        match caller {
            Caller::Store(store) => &self.stores[store - 1],
            Caller::Sales => &self.sales,
            Caller::Admin => &self.admin,
            Caller::Viewer => &self.viewer,
            Caller::Metrics => &self.metrics,
        }
    }
}

/// The secured set-up of a run: keys, tokens and Redis users.
pub struct Secured {
    /// The public key file every node is given (`--auth-public-key chaos=PATH`).
    pub public_key: PathBuf,
    /// The callers' tokens.
    pub tokens: Tokens,
    /// The suite's own Redis user (every command), for its faults and observations.
    pub admin: AclUser,
    /// Central's Redis user.
    pub central: AclUser,
    /// Each store's Redis user, `store-1` first.
    pub stores: Vec<AclUser>,
}

impl Secured {
    /// A fresh key pair (written under `dir`), tokens for `stores` stores, and fresh Redis users
    /// naming the keys where `placement` puts them (one Redis, or a cluster's partitions).
    pub fn create(dir: &Path, stores: usize, placement: Placement) -> anyhow::Result<Self> {
        let (private, public_key) = write_key_pair(dir, KID)?;
        let issuer = issuer_from_file(&private, Some(KID.to_owned()))?;
        Ok(Self {
            public_key,
            tokens: Tokens::issue(&issuer, stores)?,
            admin: acl::admin_user("chaos-admin", &acl::password()),
            central: acl::central_user_on(placement, "central", &acl::password()),
            stores: (1..=stores)
                .map(|i| acl::store_user_on(placement, &store_id(i), &acl::password()))
                .collect(),
        })
    }

    /// Every node's Redis user: Central's, then the stores'.
    pub fn node_users(&self) -> Vec<AclUser> {
        std::iter::once(self.central.clone())
            .chain(self.stores.iter().cloned())
            .collect()
    }
}

/// A store's id.
pub fn store_id(store: usize) -> StoreId {
    StoreId::parse(format!("store-{store}"))
        .unwrap_or_else(|_| unreachable!("valid by construction"))
}
