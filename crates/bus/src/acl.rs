//! Least-privilege Redis users: one per store, one for Central, as `ACL SETUSER` lines.
//!
//! A store's user may only touch its own keys: append to its events stream (and its commands'
//! dead letters), read/ack/claim its commands stream (never append to it), set and withdraw its
//! heartbeat and its advertised summary, and add itself to the registry. Central's user reads
//! every events stream and appends commands; it reads heartbeats, summaries and the registry.
//! Each user has `resetkeys resetchannels -@all` first, so nothing else is allowed; per-command
//! key sets use Redis 7 selectors (`(...)`).
//!
//! The same users can be given to a server at start as an ACL file ([`acl_file`]: `aclfile` in
//! its configuration), which a restart reads again; the file turns the default user off, so
//! only the users it names can connect.
//!
//! On a Redis Cluster ([`Placement::Cluster`]) a store's keys live in its partition
//! (`stockmesh:{p07}:store-1:events`, see [`topology::cluster_key`]), so the users name those
//! keys, and may ask for the slot map (`CLUSTER SLOTS`, which a cluster client needs). Redis
//! does not share users between cluster nodes: they must be set on every node.
//!
//! - [`script`]: what `stockmesh redis-acl` prints, for one Redis or a cluster.

pub mod script;

use stockmesh_core::StoreId;

use crate::topology;

/// Where the keys live, which decides the key patterns of the users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// One Redis: the names stockmesh uses (`stockmesh:{store-1}:events`).
    #[default]
    Single,
    /// A Redis Cluster: a store's keys inside its partition
    /// (`stockmesh:{p07}:store-1:events`).
    Cluster,
}

impl Placement {
    /// The key that holds `name` under this placement.
    fn key(self, name: &str) -> String {
        match self {
            Placement::Single => name.to_owned(),
            Placement::Cluster => topology::cluster_key(name),
        }
    }

    /// A pattern matching `suffix` (`events`, `commands`, …) of every store.
    fn every_store(self, suffix: &str) -> String {
        let p = topology::PREFIX;
        match self {
            Placement::Single => format!("{p}:{{*}}:{suffix}"),
            // The partition tag is `p` and two digits; the store id follows it.
            Placement::Cluster => format!("{p}:{{p[0-9][0-9]}}:*:{suffix}"),
        }
    }

    /// Commands a connection needs beyond [`CONNECTION`] under this placement: a cluster
    /// client reads the slot map of the node it connects to.
    fn topology_commands(self) -> &'static str {
        match self {
            Placement::Single => "",
            Placement::Cluster => " +cluster|slots",
        }
    }
}

/// Commands every connection needs (handshake, liveness, transactions), touching no key.
const CONNECTION: &str = "+ping +hello +auth +client|setname +multi +exec +discard";
/// Reading a stream as a consumer group.
const CONSUME: &str =
    "+xreadgroup +xack +xautoclaim +xclaim +xpending +xinfo|groups +xlen +xrange +xgroup|create";

/// The arguments of an `ACL SETUSER` line as `redis-cli` splits it (double quotes group).
pub fn split_line(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    args.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        args.push(current);
    }
    args
}

/// One user: its name, password and `ACL SETUSER` line. Its `Debug` shows the name only.
#[derive(Clone, PartialEq, Eq)]
pub struct AclUser {
    /// The user name (the store id, or `central`).
    pub name: String,
    /// Its password.
    pub password: String,
    /// `ACL SETUSER …`.
    pub line: String,
}

impl std::fmt::Debug for AclUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclUser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl AclUser {
    /// The Redis URL for this user at `host:port`.
    pub fn url(&self, host_port: &str) -> String {
        format!("redis://{}:{}@{host_port}", self.name, self.password)
    }

    /// The user as a line of an ACL file: `user NAME RULES…`, the `ACL SETUSER` line's rules
    /// unquoted (Redis joins a selector's space-separated rules again when it reads the file).
    pub fn file_line(&self) -> String {
        let args = split_line(&self.line);
        let rules = args.get(2..).unwrap_or_default();
        format!("user {}", rules.join(" "))
    }
}

/// How the default user is turned off: no connection can use it, yet it keeps every permission,
/// because a Redis replaying its append-only file checks each `MULTI`/`EXEC` against the default
/// user and silently drops the transactions it may not run (redis/redis#14541, present in Redis
/// 7.0): with `-@all`, every dead letter written before a restart would be lost.
pub const DEFAULT_USER_OFF: &str = "user default off resetpass ~* &* +@all";

/// An ACL file holding `users`, with the default user off ([`DEFAULT_USER_OFF`]): what `aclfile`
/// in a server's configuration reads at every start.
pub fn acl_file(users: &[AclUser]) -> String {
    let mut file = format!("{DEFAULT_USER_OFF}\n");
    for user in users {
        file.push_str(&user.file_line());
        file.push('\n');
    }
    file
}

/// An administrator `name` with `password`: every command on every key (for operators and for
/// the fault suite's own faults, never for a node).
pub fn admin_user(name: &str, password: &str) -> AclUser {
    AclUser {
        name: name.to_owned(),
        password: password.to_owned(),
        line: format!("ACL SETUSER {name} reset on >{password} ~* &* +@all"),
    }
}

/// A random password of 32 letters and digits.
pub fn password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// The user of `store`, with `password`, on one Redis.
pub fn store_user(store: &StoreId, password: &str) -> AclUser {
    store_user_on(Placement::Single, store, password)
}

/// The user of `store`, with `password`, for keys placed by `placement`.
pub fn store_user_on(placement: Placement, store: &StoreId, password: &str) -> AclUser {
    let commands = topology::commands_stream(store);
    let events = topology::events_stream(store);
    let line = format!(
        "ACL SETUSER {store} reset on >{password} resetkeys resetchannels -@all {CONNECTION}{cluster} \
         {CONSUME} ~{commands_key} \
         \"(+xadd ~{events_key} ~{dead})\" \
         \"(+set +get +del +pttl ~{heartbeat} ~{summary})\" \
         \"(+sadd ~{registry})\"",
        cluster = placement.topology_commands(),
        commands_key = placement.key(&commands),
        events_key = placement.key(&events),
        dead = placement.key(&topology::dead_letter_stream(&commands)),
        heartbeat = placement.key(&topology::heartbeat_key(store)),
        summary = placement.key(&topology::summary_key(store)),
        registry = placement.key(topology::STORE_REGISTRY),
    );
    AclUser {
        name: store.to_string(),
        password: password.to_owned(),
        line,
    }
}

/// Central's user `name`, with `password`, on one Redis.
pub fn central_user(name: &str, password: &str) -> AclUser {
    central_user_on(Placement::Single, name, password)
}

/// Central's user `name`, with `password`, for keys placed by `placement`.
pub fn central_user_on(placement: Placement, name: &str, password: &str) -> AclUser {
    let any = |suffix: &str| placement.every_store(suffix);
    let line = format!(
        "ACL SETUSER {name} reset on >{password} resetkeys resetchannels -@all {CONNECTION}{cluster} \
         {CONSUME} ~{events} \
         \"(+xadd ~{commands} ~{dead})\" \
         \"(+get +pttl %R~{heartbeat} %R~{summary})\" \
         \"(+smembers %R~{registry})\" \"(+get +set +del %RW~{central_database})\"",
        cluster = placement.topology_commands(),
        events = any("events"),
        commands = any("commands"),
        dead = any("events:dead"),
        heartbeat = any("heartbeat"),
        summary = any("summary"),
        registry = placement.key(topology::STORE_REGISTRY),
        central_database = placement.key(topology::CENTRAL_DATABASE),
    );
    AclUser {
        name: name.to_owned(),
        password: password.to_owned(),
        line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_line_is_the_setuser_line_unquoted() {
        let store = StoreId::parse("store-1").expect("valid");
        let user = store_user(&store, "pw");
        let line = user.file_line();
        assert!(line.starts_with("user store-1 reset on >pw "), "{line}");
        assert!(!line.contains('"'), "{line}");
        assert!(
            line.contains("(+xadd ~stockmesh:{store-1}:events "),
            "{line}"
        );
        assert!(line.contains("~stockmesh:{store-1}:summary)"), "{line}");
    }

    #[test]
    fn an_acl_file_turns_the_default_user_off_and_debug_hides_passwords() {
        let admin = admin_user("admin", "secret-admin");
        let central = central_user("central", "secret-central");
        let file = acl_file(&[admin.clone(), central]);
        let lines: Vec<&str> = file.lines().collect();
        assert!(lines[0].starts_with("user default off "), "{file}");
        assert_eq!(lines[1], "user admin reset on >secret-admin ~* &* +@all");
        assert!(lines[2].starts_with("user central "), "{file}");
        assert!(!format!("{admin:?}").contains("secret"));
    }
}
