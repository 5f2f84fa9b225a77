//! `stockmesh up`: Central and N stores in one process, over the best broker at hand.

use std::net::SocketAddr;

use anyhow::Context;
use stockmesh_central::CentralNode;
use stockmesh_core::StoreId;
use stockmesh_store::StoreNode;
use tokio::net::TcpListener;

use super::broker;
use crate::cli::UpArgs;

async fn bind(host: std::net::IpAddr, port: u16) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::new(host, port);
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (is another stockmesh running?)"))
}

fn port_of(base: u16, offset: u16) -> anyhow::Result<u16> {
    if base == 0 {
        return Ok(0);
    }
    base.checked_add(offset)
        .context("--port plus --stores runs past port 65535")
}

/// Runs the cluster until Ctrl-C or SIGTERM.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    broker::create_private_dir(&args.data_dir)?;
    let (broker, redis_process, broker_line) =
        broker::choose_for_up(&args.bus, &args.data_dir).await?;
    println!("{broker_line}");

    let db_url = |name: &str| format!("sqlite://{}", args.data_dir.join(name).display());
    let central_config = broker::central_config(
        broker::db(db_url("central.db"), &args.storage),
        &args.bus,
        &args.purchase,
        &args.http,
    )?;
    let central = CentralNode::start(
        central_config,
        bind(args.host, args.port).await?,
        broker.clone(),
    )
    .await?;
    println!("central   http://{}", central.addr());

    let mut stores = Vec::new();
    for i in 1..=args.stores {
        let id = StoreId::parse(format!("store-{i}"))?;
        let config = broker::store_config(
            id.clone(),
            broker::db(db_url(&format!("{id}.db")), &args.storage),
            &args.bus,
            &args.http,
        )?;
        let listener = bind(args.host, port_of(args.port, i)?).await?;
        let node = StoreNode::start(config, listener, Some(broker.clone())).await?;
        println!("{:<9} http://{}", id.as_str(), node.addr());
        stores.push(node);
    }
    println!("ready; Ctrl-C stops everything");

    crate::shutdown::signal().await;
    for store in stores {
        store.shutdown().await;
    }
    central.shutdown().await;
    drop(redis_process);
    Ok(())
}
