//! The deployment files under `deploy/` are checked without a container engine or systemd: every
//! command line they give the binary, and every `STOCKMESH_*` variable they set, is run through the
//! real binary's argument parser (`<args> --help` must exit 0).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::Value;

const BIN: &str = env!("CARGO_BIN_EXE_stockmesh");

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn read(name: &str) -> String {
    let path = deploy_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `stockmesh <args> --help` and returns its help text; panics (naming `what`) if clap
/// refuses the arguments.
fn help_of(what: &str, args: &[String], env: &BTreeMap<String, String>) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("--help");
    for (key, _) in std::env::vars() {
        if key.starts_with("STOCKMESH_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env);
    let out = cmd.output().expect("the binary runs");
    assert!(
        out.status.success(),
        "{what}: the binary refuses `{}`:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Maps each environment variable named in a help text to its flag, and whether it takes a value.
fn env_to_flag(help: &str) -> BTreeMap<String, (String, bool)> {
    let mut map = BTreeMap::new();
    let mut current: Option<(String, bool)> = None;
    for line in help.lines() {
        let trimmed = line.trim_start();
        if let Some(pos) = trimmed.find("--")
            && (pos == 0 || trimmed.starts_with('-'))
            && line.starts_with("  ")
        {
            let rest = &trimmed[pos..];
            let flag = rest.split_whitespace().next().unwrap_or(rest).to_owned();
            let takes_value = rest
                .split_whitespace()
                .nth(1)
                .is_some_and(|w| w.starts_with('<'));
            current = Some((flag, takes_value));
        }
        if let (Some(start), Some(flag)) = (line.find("[env: "), current.as_ref()) {
            let name = line[start + 6..]
                .split(['=', ']'])
                .next()
                .unwrap_or_default()
                .to_owned();
            map.insert(name, flag.clone());
        }
    }
    map
}

/// Checks one node's command line and environment: the flags parse, every `STOCKMESH_*`
/// variable is one the subcommand reads, and its value parses when given as the flag.
fn check_node(what: &str, args: &[String], env: &BTreeMap<String, String>) {
    let help = help_of(what, args, env);
    let flags = env_to_flag(&help);
    for (name, value) in env {
        if !name.starts_with("STOCKMESH_") {
            continue;
        }
        let (flag, takes_value) = flags
            .get(name)
            .unwrap_or_else(|| panic!("{what}: `{} --help` reads no variable {name}", args[0]));
        if *takes_value {
            let mut with_flag = args.to_vec();
            with_flag.extend([flag.clone(), value.clone()]);
            help_of(&format!("{what} ({name})"), &with_flag, &BTreeMap::new());
        }
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("not a string: {other:?}"),
            })
            .collect(),
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        other => panic!("not a command or list: {other:?}"),
    }
}

fn environment(value: Option<&Value>) -> BTreeMap<String, String> {
    match value {
        None => BTreeMap::new(),
        Some(Value::Mapping(map)) => map
            .iter()
            .map(|(k, v)| {
                let k = k.as_str().expect("variable name").to_owned();
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => panic!("{k}: not a scalar: {other:?}"),
                };
                (k, v)
            })
            .collect(),
        Some(list) => strings(list)
            .into_iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').expect("K=V");
                (k.to_owned(), v.to_owned())
            })
            .collect(),
    }
}

fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

#[test]
fn every_compose_service_built_from_our_dockerfile_has_a_command_line_the_binary_accepts() {
    let mut compose: Value = serde_norway::from_str(&read("compose.yaml")).expect("valid YAML");
    compose.apply_merge().expect("merge keys resolve");
    let services = compose["services"].as_mapping().expect("services");
    let volumes = compose["volumes"].as_mapping().expect("named volumes");

    let redis = &compose["services"]["redis"];
    assert_eq!(redis["image"].as_str(), Some("redis:7"));
    assert!(
        strings(&redis["command"])
            .windows(2)
            .any(|w| w == ["--appendonly", "yes"]),
        "redis runs with AOF on"
    );

    let mut checked = Vec::new();
    for (name, service) in services {
        let name = name.as_str().expect("service name");
        let ours = service["build"]["dockerfile"].as_str() == Some("deploy/Dockerfile");
        if !ours {
            continue;
        }
        let args = strings(&service["command"]);
        let env = environment(service.get("environment"));
        check_node(name, &args, &env);

        // The layout: listens on all interfaces on its published port, reaches Redis by its
        // service name, keeps its SQLite file in its own named volume.
        let listen = flag_value(&args, "--listen").expect("--listen");
        let port = listen.strip_prefix("0.0.0.0:").expect("listens on 0.0.0.0");
        let published = strings(&service["ports"]);
        assert!(
            published.contains(&format!("{port}:{port}")),
            "{name} publishes {port}"
        );
        assert_eq!(
            flag_value(&args, "--redis"),
            Some("redis://redis:6379"),
            "{name}"
        );
        assert_eq!(
            flag_value(&args, "--db"),
            Some(format!("sqlite:///data/{name}.db").as_str()),
            "{name}"
        );
        let mount = strings(&service["volumes"]);
        let volume = mount
            .iter()
            .find_map(|m| m.strip_suffix(":/data"))
            .unwrap_or_else(|| panic!("{name} mounts a volume on /data"));
        assert!(
            volumes.contains_key(volume),
            "{name}: {volume} is a named volume"
        );
        checked.push(name.to_owned());
    }
    assert_eq!(checked, ["central", "store-1", "store-2"]);
}

/// The `Environment=` assignments and the `ExecStart=` arguments (without the binary) of a unit,
/// with `%i` standing for `instance`.
fn unit(name: &str, instance: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let text = read(name)
        .replace("%i", instance)
        .replace("%H", "host-1")
        .replace("%S", "/var/lib");
    let mut env = BTreeMap::new();
    let mut exec = None;
    for line in text.lines() {
        if let Some(assignments) = line.strip_prefix("Environment=") {
            for kv in assignments.split_whitespace() {
                let (k, v) = kv.split_once('=').expect("K=V");
                env.insert(k.to_owned(), v.to_owned());
            }
        } else if let Some(command) = line.strip_prefix("ExecStart=") {
            assert!(
                !command.contains(['"', '\'', '$']),
                "{name}: keep ExecStart plain"
            );
            exec = Some(
                command
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            );
        }
    }
    let exec = exec.unwrap_or_else(|| panic!("{name} has an ExecStart"));
    assert_eq!(exec[0], "/usr/local/bin/stockmesh", "{name}");
    for option in [
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(text.lines().any(|l| l == option), "{name}: {option}");
    }
    (env, exec[1..].to_vec())
}

#[test]
fn the_systemd_units_start_the_binary_with_a_command_line_it_accepts() {
    let (env, args) = unit("stockmesh-central.service", "");
    assert_eq!(args[0], "central");
    check_node("stockmesh-central.service", &args, &env);

    let (env, args) = unit("stockmesh-store@.service", "store-1");
    assert_eq!(args[..3], ["store", "--id", "store-1"]);
    check_node("stockmesh-store@store-1.service", &args, &env);
}

#[test]
fn the_image_builds_the_one_binary_and_runs_it_as_a_user() {
    let dockerfile = read("Dockerfile");
    for needle in [
        "FROM rust:1 AS builder",
        "cargo build --release --locked -p stockmesh",
        "USER stockmesh",
        "VOLUME [\"/data\"]",
        "EXPOSE 8081 8082",
        "ENTRYPOINT [\"stockmesh\"]",
    ] {
        assert!(dockerfile.contains(needle), "Dockerfile: {needle}");
    }
}
