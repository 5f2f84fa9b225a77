//! What each subcommand runs.

pub mod auth;
mod broker;
mod central;
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
            use stockmesh_bus::acl;
            println!("# stockmesh least-privilege Redis users; run: redis-cli < this-file");
            println!(
                "# Then turn the default user off, keeping its permissions (a Redis replaying its \
                 append-only file checks MULTI/EXEC against it: redis/redis#14541):"
            );
            println!(
                "# {}",
                acl::DEFAULT_USER_OFF.replacen("user ", "ACL SETUSER ", 1)
            );
            let central = acl::central_user(&args.central_user, &acl::password());
            println!("# Central: --redis {}", central.url("HOST:PORT"));
            println!("{}", central.line);
            for store in &args.stores {
                let user = acl::store_user(store, &acl::password());
                println!("# {store}: --redis {}", user.url("HOST:PORT"));
                println!("{}", user.line);
            }
            Ok(())
        }
    }
}
