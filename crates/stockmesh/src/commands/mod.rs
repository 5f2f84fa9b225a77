//! What each subcommand runs.

mod auth;
mod broker;
mod central;
mod listen;
mod store;
mod up;

use stockmesh_process::Launcher;

use crate::cli::Command;

/// Runs `command` until it finishes or the process is told to stop.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Store(args) => store::run(args).await,
        Command::Central(args) => central::run(args).await,
        Command::Up(args) => up::run(args).await,
        Command::Bench(args) => stockmesh_bench::run(args, Launcher::this_binary()?).await,
        Command::Chaos(args) => stockmesh_chaos::run(args, Launcher::this_binary()?).await,
        Command::Auth(command) => auth::run(command),
        Command::RedisAcl(args) => {
            use stockmesh_bus::acl::{Placement, script};
            let placement = if args.cluster {
                Placement::Cluster
            } else {
                Placement::Single
            };
            let script = script::render(placement, &args.central_user, &args.stores);
            write_out(&script)
        }
    }
}

/// Writes `text` to standard output; a reader that went away (`stockmesh redis-acl | head`) is
/// not an error, unlike `print!`, which panics on a closed pipe.
fn write_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}
