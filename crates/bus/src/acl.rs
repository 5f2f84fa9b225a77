//! Least-privilege Redis users: one per store, one for Central, as `ACL SETUSER` lines.
//!
//! A store's user may only touch its own keys: append to its events stream (and its commands'
//! dead letters), read/ack/claim its commands stream (never append to it), set and withdraw its
//! heartbeat, and add itself to the registry. Central's user reads every events stream and
//! appends commands; it reads heartbeats and the registry. Each user has
//! `resetkeys resetchannels -@all` first, so nothing else is allowed; per-command key sets use
//! Redis 7 selectors (`(...)`).

use stockmesh_core::StoreId;

use crate::topology;

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

/// One user: its name, password and `ACL SETUSER` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclUser {
    /// The user name (the store id, or `central`).
    pub name: String,
    /// Its password.
    pub password: String,
    /// `ACL SETUSER …`.
    pub line: String,
}

impl AclUser {
    /// The Redis URL for this user at `host:port`.
    pub fn url(&self, host_port: &str) -> String {
        format!("redis://{}:{}@{host_port}", self.name, self.password)
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

/// The user of `store`, with `password`.
pub fn store_user(store: &StoreId, password: &str) -> AclUser {
    let commands = topology::commands_stream(store);
    let events = topology::events_stream(store);
    let line = format!(
        "ACL SETUSER {store} reset on >{password} resetkeys resetchannels -@all {CONNECTION} \
         {CONSUME} ~{commands} \
         \"(+xadd ~{events} ~{dead})\" \
         \"(+set +get +del +pttl ~{heartbeat})\" \
         \"(+sadd ~{registry})\"",
        dead = topology::dead_letter_stream(&commands),
        heartbeat = topology::heartbeat_key(store),
        registry = topology::STORE_REGISTRY,
    );
    AclUser {
        name: store.to_string(),
        password: password.to_owned(),
        line,
    }
}

/// Central's user `name`, with `password`.
pub fn central_user(name: &str, password: &str) -> AclUser {
    let p = topology::PREFIX;
    let line = format!(
        "ACL SETUSER {name} reset on >{password} resetkeys resetchannels -@all {CONNECTION} \
         {CONSUME} ~{p}:{{*}}:events \
         \"(+xadd ~{p}:{{*}}:commands ~{p}:{{*}}:events:dead)\" \
         \"(+get +pttl %R~{p}:{{*}}:heartbeat)\" \
         \"(+smembers %R~{registry})\"",
        registry = topology::STORE_REGISTRY,
    );
    AclUser {
        name: name.to_owned(),
        password: password.to_owned(),
        line,
    }
}

/// What `stockmesh redis-acl` prints: Central's user and one user per store, each with a fresh
/// password, as commented `ACL SETUSER` lines to feed to `redis-cli`.
pub fn script(central_name: &str, stores: &[StoreId]) -> String {
    let mut out = String::from(
        "# stockmesh least-privilege Redis users; run: redis-cli < this-file\n\
         # Then turn the default user off: ACL SETUSER default off\n",
    );
    let central = central_user(central_name, &password());
    let users = std::iter::once(("Central".to_owned(), central)).chain(
        stores
            .iter()
            .map(|s| (s.to_string(), store_user(s, &password()))),
    );
    for (who, user) in users {
        out.push_str(&format!(
            "# {who}: --redis {}\n{}\n",
            user.url("HOST:PORT"),
            user.line
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_has_one_user_per_store_and_central_each_with_its_own_password() {
        let stores = [
            StoreId::parse("s1").expect("id"),
            StoreId::parse("s2").expect("id"),
        ];
        let script = script("central", &stores);
        let users: Vec<_> = script
            .lines()
            .filter(|l| l.starts_with("ACL SETUSER"))
            .collect();
        assert_eq!(users.len(), 3, "{script}");
        assert!(users[0].starts_with("ACL SETUSER central "), "{script}");
        assert!(users[2].starts_with("ACL SETUSER s2 "), "{script}");
        let urls: std::collections::HashSet<_> =
            script.lines().filter(|l| l.contains("--redis")).collect();
        assert_eq!(urls.len(), 3, "fresh passwords: {script}");
    }
}
