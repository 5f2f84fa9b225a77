//! The fault suite in its bounded configuration: a fixed seed, then a random one (printed, so a
//! failure can be replayed with `stockmesh chaos --seed N`). Each run starts its own cluster of
//! processes over a private redis-server and fails on any violated invariant. The cluster is
//! secured (bearer tokens, Redis ACL users), and each run must show it guarded before the workload
//! and after the broker's losses, so the invariants cannot hold on an open cluster by default.

const BIN: &str = env!("CARGO_BIN_EXE_stockmesh");

fn chaos(seed: u64) {
    println!("chaos run with seed {seed} (replay: stockmesh chaos --seed {seed} --duration 40s)");
    let out = std::process::Command::new(BIN)
        .args(["chaos", "--seed", &seed.to_string(), "--duration", "40s"])
        .env("RUST_LOG", "error")
        .output()
        .expect("the chaos runner starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "chaos found violations (seed {seed}):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all invariants hold"), "{stdout}");
    assert!(
        stdout.contains("secured (bearer tokens, Redis ACL users)"),
        "{stdout}"
    );
    for when in ["at start", "after the losses"] {
        for guard in [
            "GET /stores at Central without a token: 401",
            "store-1's token on ",
            "Redis without credentials: NOAUTH",
            "as store-1's Redis user: NOPERM",
        ] {
            let prefix = format!("guarded {when}: ");
            assert!(
                stdout
                    .lines()
                    .any(|l| l.contains(&prefix) && l.contains(guard)),
                "not shown guarded {when} ({guard}):\n{stdout}"
            );
        }
    }
}

#[test]
fn the_invariants_hold_under_faults_for_a_fixed_and_a_random_seed() {
    chaos(20_261_124);
    chaos(rand_seed());
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}
