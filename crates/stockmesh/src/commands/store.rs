//! `stockmesh store`: one Store node.

use stockmesh_store::StoreNode;

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
    let broker = (!args.standalone)
        .then(|| broker::from_flags(&args.bus))
        .transpose()?;
    let listening = super::listen::listen(args.listen, &args.auth, &args.tls).await?;
    let scheme = listening.scheme();
    (config.auth, config.tls) = (listening.auth, listening.tls);
    let node = StoreNode::start(config, listening.listener, broker).await?;
    println!("store {} listening on {scheme}://{}", args.id, node.addr());
    stockmesh_process::shutdown::signal().await;
    node.shutdown().await;
    Ok(())
}
