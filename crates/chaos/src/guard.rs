//! Proof that a secured run's cluster really is guarded, so that its invariants holding says
//! something about a deployment with tokens and Redis ACL users: checked once the cluster runs
//! and again after the broker's losses and restarts (the users must have survived them).
//!
//! - Central refuses a request without a token: 401 with `WWW-Authenticate: Bearer`.
//! - A store's token is refused elsewhere: 403 at another store (at Central with one store).
//! - Redis refuses a connection without credentials (`NOAUTH`: the default user is off).
//! - Store-1's Redis user may not append to another store's events stream (to its own commands
//!   stream with one store): `NOPERM`.

use reqwest::{Method, StatusCode, header};
use stockmesh_bus::broker::{Broker, Outgoing};
use stockmesh_bus::{RedisBroker, RedisConfig, topology};

use super::access::Caller;
use super::cluster::{ChaosCluster, store_id};

/// Checks every guard; returns one line per guard proven, or why one is open.
pub async fn check(cluster: &ChaosCluster) -> anyhow::Result<Vec<String>> {
    let Some(secured) = &cluster.secured else {
        anyhow::bail!("the run is not secured (--no-auth)");
    };
    let mut proven = Vec::new();

    let url = format!("{}/stores", cluster.central_url());
    let response = reqwest::Client::new().get(&url).send().await?;
    let challenge = response.headers().get(header::WWW_AUTHENTICATE).cloned();
    anyhow::ensure!(
        response.status() == StatusCode::UNAUTHORIZED && challenge.is_some(),
        "GET {url} without a token answered {} (challenge {challenge:?}), not 401 with \
         WWW-Authenticate",
        response.status()
    );
    proven.push("GET /stores at Central without a token: 401".to_owned());

    let url = match cluster.store_urls.get(1) {
        Some(other) => format!("{other}/inventory"),
        None => format!("{}/inventory", cluster.central_url()),
    };
    let status = cluster
        .request(Caller::Store(1), Method::GET, &url)
        .send()
        .await?
        .status();
    anyhow::ensure!(
        status == StatusCode::FORBIDDEN,
        "GET {url} with store-1's token answered {status}, not 403"
    );
    proven.push(format!("store-1's token on {url}: 403"));

    let address = cluster.redis_address().await;
    let anonymous = RedisBroker::new(RedisConfig::new(format!("redis://{address}")))?;
    match anonymous.ping().await {
        Err(error) if error.to_string().to_uppercase().contains("NOAUTH") => {
            proven.push("Redis without credentials: NOAUTH".to_owned());
        }
        other => anyhow::bail!("Redis answered PING without credentials with {other:?}"),
    }

    let store1 = cluster.broker_as(&secured.stores[0]).await?;
    let stream = match cluster.store_urls.len() {
        1 => topology::commands_stream(&store_id(1)),
        _ => topology::events_stream(&store_id(2)),
    };
    let forged = Outgoing {
        stream: &stream,
        event_type: "INVENTORY_ITEM_UPDATED",
        data: "{}",
    };
    match store1.publish(&[forged], 1000).await {
        Err(error) if error.to_string().to_uppercase().contains("NOPERM") => {
            proven.push(format!("XADD to {stream} as store-1's Redis user: NOPERM"));
        }
        other => anyhow::bail!("XADD to {stream} as store-1's Redis user gave {other:?}"),
    }
    Ok(proven)
}
