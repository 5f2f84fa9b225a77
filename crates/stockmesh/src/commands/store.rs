//! `stockmesh store`: one Store node.

use anyhow::Context;
use stockmesh_store::StoreNode;
use tokio::net::TcpListener;

use super::broker;
use crate::cli::StoreArgs;

/// Runs a store until Ctrl-C or SIGTERM.
pub async fn run(args: StoreArgs) -> anyhow::Result<()> {
    let db_url = args
        .db
        .clone()
        .unwrap_or_else(|| format!("sqlite://./data/{}.db", args.id));
    let mut config = broker::store_config(
        args.id.clone(),
        broker::db(db_url, &args.storage),
        &args.bus,
        &args.http,
    )?;
    let broker = if args.standalone {
        None
    } else {
        Some(broker::from_flags(&args.bus)?)
    };
    config.auth = super::auth::verifier(&args.auth)?;
    config.tls = super::auth::tls(&args.tls)?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    super::auth::protect(
        args.listen,
        config.auth.as_deref(),
        args.auth.insecure_no_auth,
    )?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let node = StoreNode::start(config, listener, broker).await?;
    println!("store {} listening on {scheme}://{}", args.id, node.addr());
    crate::shutdown::signal().await;
    node.shutdown().await;
    Ok(())
}
