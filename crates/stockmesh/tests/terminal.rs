//! Terminal manners: logs written to a pipe carry no ANSI escape codes.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_stockmesh");

#[test]
fn logs_to_a_pipe_carry_no_ansi_escape_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/s.db", dir.path().display());
    let mut child = Command::new(BIN)
        .args(["store", "--id", "s1", "--standalone"])
        .args(["--listen", "127.0.0.1:0", "--db", &db])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("listening") {
                let _ = tx.send(line);
                break;
            }
        }
    });
    let listening = rx.recv_timeout(Duration::from_secs(60));
    child.kill().expect("kill");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let _ = child.wait();
    let listening =
        listening.unwrap_or_else(|_| panic!("the store never listened; stderr:\n{stderr}"));
    assert!(listening.contains("http://127.0.0.1:"), "{listening}");
    assert!(!stderr.is_empty(), "the store logs something at info");
    assert!(
        !stderr.contains("\x1b["),
        "no ANSI escape codes when stderr is a pipe:\n{stderr:?}"
    );
}
