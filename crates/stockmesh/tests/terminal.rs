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

#[test]
fn a_reader_that_stops_early_does_not_make_the_printer_panic() {
    // The reading end is closed before the child starts: its first write meets a closed pipe.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = Command::new(BIN)
        .args(["redis-acl", "--stores", "store-1,store-2"])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
}
