//! `stockmesh central`: one Central node.

use stockmesh_central::CentralNode;

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
    let listening = super::listen::listen(args.listen, &args.auth, &args.tls).await?;
    let scheme = listening.scheme();
    (config.auth, config.tls) = (listening.auth, listening.tls);
    let node = CentralNode::start(config, listening.listener, broker).await?;
    println!("central listening on {scheme}://{}", node.addr());
    stockmesh_process::shutdown::signal().await;
    node.shutdown().await;
    Ok(())
}
