//! What each subcommand runs.

use anyhow::Context;
use stockmesh_bus::DbConfig;
use stockmesh_store::{StoreConfig, StoreNode};
use tokio::net::TcpListener;

use crate::cli::{Command, StoreArgs};

/// Runs `command` until it finishes or the process is told to stop.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Store(args) => run_store(args).await,
    }
}

async fn run_store(args: StoreArgs) -> anyhow::Result<()> {
    let db_url = args
        .db
        .unwrap_or_else(|| format!("sqlite://./data/{}.db", args.id));
    let config = StoreConfig::new(
        args.id,
        DbConfig {
            durability: args.storage.durability,
            ..DbConfig::new(db_url)
        },
    );
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let node = StoreNode::start(config, listener, None).await?;
    println!(
        "store {} listening on http://{}",
        node.service().id(),
        node.addr()
    );
    crate::shutdown::signal().await;
    node.shutdown().await;
    Ok(())
}
