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
            print!(
                "{}",
                stockmesh_bus::acl::script(&args.central_user, &args.stores)
            );
            Ok(())
        }
    }
}
