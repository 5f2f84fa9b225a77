//! `stockmesh up`: Central and N stores in one process, over the best broker at hand.

use std::net::SocketAddr;

use anyhow::Context;
use stockmesh_bus::local::local_broker;
use stockmesh_central::CentralNode;
use stockmesh_core::StoreId;
use stockmesh_http::auth::Role;
use stockmesh_http::auth::keys::local_key_pair;
use stockmesh_process::private::create_private_dir;
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
    create_private_dir(&args.data_dir)?;
    let issuer = if args.auth {
        let (issuer, verifier, key) = local_key_pair(&args.data_dir.join("keys"), "up")?;
        println!(
            "auth: bearer tokens required (signing key {})",
            key.display()
        );
        Some((issuer, std::sync::Arc::new(verifier)))
    } else {
        if !args.host.is_loopback() {
            anyhow::bail!(
                "refusing to serve {} without authentication: add --auth, or use 127.0.0.1",
                args.host
            );
        }
        println!(
            "auth: OFF (local cluster on {}; every route is open; --auth requires tokens)",
            args.host
        );
        None
    };
    let verifier = issuer.as_ref().map(|(_, verifier)| verifier.clone());
    let redis = broker::redis_config(stockmesh_bus::local::DEFAULT_REDIS, &args.bus)?;
    let local = match &args.bus.redis_cluster {
        Some(seeds) => stockmesh_bus::local::LocalBroker {
            broker: broker::from_flags(&args.bus)?,
            server: None,
            description: format!(
                "broker: Redis Cluster at {} (from --redis-cluster)",
                stockmesh_bus::broker::redact_url(seeds)
            ),
        },
        None => local_broker(args.bus.redis.as_deref(), redis, &args.data_dir).await?,
    };
    println!("{}", local.description);
    let broker = local.broker.clone();

    let db_url = |name: &str| format!("sqlite://{}", args.data_dir.join(name).display());
    let mut central_config = broker::central_config(
        broker::db(db_url("central.db"), &args.storage),
        &args.bus,
        &args.purchase,
        &args.http,
    )?;
    central_config.auth = verifier.clone();
    central_config.stores = (1..=args.stores)
        .map(|i| StoreId::parse(format!("store-{i}")))
        .collect::<Result<_, _>>()?;
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
        let mut config = broker::store_config(
            id.clone(),
            broker::db(db_url(&format!("{id}.db")), &args.storage),
            &args.bus,
            &args.http,
        )?;
        config.auth = verifier.clone();
        let listener = bind(args.host, port_of(args.port, i)?).await?;
        let node = StoreNode::start(config, listener, Some(broker.clone())).await?;
        println!("{:<9} http://{}", id.as_str(), node.addr());
        stores.push(node);
    }
    if let Some((issuer, _)) = &issuer {
        let day = std::time::Duration::from_secs(86_400);
        println!(
            "admin token (24h):   {}",
            issuer.issue("up-admin", Role::Admin, None, day)?
        );
        for i in 1..=args.stores {
            let id = format!("store-{i}");
            println!(
                "{id} token (24h): {}",
                issuer.issue(&id, Role::Store, Some(&id), day)?
            );
        }
    }
    println!("ready; Ctrl-C stops everything");

    stockmesh_process::shutdown::signal().await;
    for store in stores {
        store.shutdown().await;
    }
    central.shutdown().await;
    drop(local);
    Ok(())
}
