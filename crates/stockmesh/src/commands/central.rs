//! `stockmesh central`: one Central node.

use anyhow::Context;
use stockmesh_central::CentralNode;
use tokio::net::TcpListener;

use super::broker;
use crate::cli::CentralArgs;

/// Runs Central until Ctrl-C or SIGTERM.
pub async fn run(args: CentralArgs) -> anyhow::Result<()> {
    let mut config = broker::central_config(
        broker::db(args.db.clone(), &args.storage),
        &args.bus,
        &args.purchase,
        &args.http,
    )?;
    config.consumer_name = args.consumer_name.clone();
    config.stores = args.stores.clone();
    let broker = broker::from_flags(&args.bus)?;
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
    let node = CentralNode::start(config, listener, broker).await?;
    println!("central listening on {scheme}://{}", node.addr());
    crate::shutdown::signal().await;
    node.shutdown().await;
    Ok(())
}
