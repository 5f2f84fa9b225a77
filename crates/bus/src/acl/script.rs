//! What `stockmesh redis-acl` prints: Central's user and one user per store, each with a fresh
//! password, as commented `ACL SETUSER` lines to feed to `redis-cli`, for one Redis or for every
//! node of a Redis Cluster.

use stockmesh_core::StoreId;

use super::{DEFAULT_USER_OFF, Placement, central_user_on, password, store_user_on};

/// The script for keys placed by `placement`: Central's user `central_name` first, then one
/// user per store, each line preceded by the flag that node runs with.
pub fn render(placement: Placement, central_name: &str, stores: &[StoreId]) -> String {
    let default_off = DEFAULT_USER_OFF.replacen("user ", "ACL SETUSER ", 1);
    let mut out = match placement {
        Placement::Single => format!(
            "# stockmesh least-privilege Redis users; run: redis-cli < this-file\n\
             # Then turn the default user off, keeping its permissions (a Redis replaying its\n\
             # append-only file checks MULTI/EXEC against it: redis/redis#14541):\n\
             # {default_off}\n"
        ),
        Placement::Cluster => format!(
            "# stockmesh least-privilege Redis users for a Redis Cluster (partitioned keys).\n\
             # Redis does not share users between cluster nodes: run this on EVERY node, masters\n\
             # and replicas (a promoted replica must know them too):\n\
             #   for node in HOST1:PORT HOST2:PORT ...; do\n\
             #     redis-cli -h ${{node%:*}} -p ${{node#*:}} < this-file; done\n\
             # Keep them across restarts: ACL SAVE on each node when it has an aclfile, else\n\
             # CONFIG REWRITE. Then turn the default user off on every node, keeping its\n\
             # permissions (a Redis replaying its append-only file checks MULTI/EXEC against\n\
             # it: redis/redis#14541):\n\
             # {default_off}\n"
        ),
    };
    let central = central_user_on(placement, central_name, &password());
    let users = std::iter::once(("Central".to_owned(), central)).chain(
        stores
            .iter()
            .map(|s| (s.to_string(), store_user_on(placement, s, &password()))),
    );
    for (who, user) in users {
        let flag = match placement {
            Placement::Single => format!("--redis {}", user.url("HOST:PORT")),
            // Every seed carries the same user: the cluster client logs in with it everywhere.
            Placement::Cluster => format!(
                "--redis-cluster {},{},...",
                user.url("HOST1:PORT"),
                user.url("HOST2:PORT")
            ),
        };
        out.push_str(&format!("# {who}: {flag}\n{}\n", user.line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores() -> [StoreId; 2] {
        [
            StoreId::parse("s1").expect("id"),
            StoreId::parse("s2").expect("id"),
        ]
    }

    fn setuser_lines(script: &str) -> Vec<&str> {
        script
            .lines()
            .filter(|l| l.starts_with("ACL SETUSER"))
            .collect()
    }

    #[test]
    fn the_script_has_one_user_per_store_and_central_each_with_its_own_password() {
        let script = render(Placement::Single, "central", &stores());
        let users = setuser_lines(&script);
        assert_eq!(users.len(), 3, "{script}");
        assert!(users[0].starts_with("ACL SETUSER central "), "{script}");
        assert!(users[2].starts_with("ACL SETUSER s2 "), "{script}");
        let urls: std::collections::HashSet<_> =
            script.lines().filter(|l| l.contains("--redis")).collect();
        assert_eq!(urls.len(), 3, "fresh passwords: {script}");
    }

    #[test]
    fn the_cluster_script_names_partitioned_keys_and_every_node() {
        let script = render(Placement::Cluster, "central", &stores());
        assert!(script.contains("EVERY node"), "{script}");
        let users = setuser_lines(&script);
        assert_eq!(users.len(), 3, "{script}");
        let s1_events = crate::topology::cluster_key("stockmesh:{s1}:events");
        assert!(s1_events.starts_with("stockmesh:{p"), "{s1_events}");
        assert!(users[1].contains(&format!("~{s1_events} ")), "{}", users[1]);
        assert!(
            !users[1].contains("{s1}"),
            "no single-Redis key: {}",
            users[1]
        );
        assert!(
            users[0].contains("~stockmesh:{p[0-9][0-9]}:*:events "),
            "{}",
            users[0]
        );
        for user in &users {
            assert!(user.contains("+cluster|slots"), "{user}");
        }
        assert!(script.contains("--redis-cluster redis://s2:"), "{script}");
    }
}
