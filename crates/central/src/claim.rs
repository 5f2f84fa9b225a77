//! One database behind the `central` consumer group. Replicas share the group's entries: a
//! Central on a *different* database (a typo in `--db`, a forgotten test instance) would take
//! its share of the stores' events and commit them where the other replicas never look. So every
//! Central claims the group on the broker for its database's identity (a random id its
//! migrations made), renews the claim while it runs, and gives it up on a clean stop. A Central
//! that finds another database's claim waits while it could still expire ([`CLAIM_TTL`]): a
//! claim left by Centrals that died (killed -9) lapses and this one joins; a claim that is still
//! renewed after that belongs to running Centrals, and this one refuses to start, saying why.

use std::sync::Arc;
use std::time::Duration;

use stockmesh_bus::{Broker, Database};
use tokio_util::sync::CancellationToken;

/// How long a claim outlives its last renewal.
pub const CLAIM_TTL: Duration = Duration::from_secs(5);

/// How often a waiting Central looks at another database's claim again.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// Why Central refuses to join the consumer group.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to join the consumer group: running Central replicas on this broker use database \
     {theirs} (their claim on the group was renewed for over {} s while this Central waited), and \
     this Central's database is {ours}. A replica on another database would take events from \
     the shared group that the others never see. Point --db at their database, or stop them \
     first if this database is meant to replace theirs", CLAIM_TTL.as_secs() + 1
)]
pub struct OtherDatabase {
    /// This Central's database identity.
    pub ours: String,
    /// The identity the live claim names.
    pub theirs: String,
}

/// This database's identity.
pub async fn identity(db: &Database) -> sqlx::Result<String> {
    crate::repository::identity(&db.reader).await
}

/// Claims the group for `ours`. Another database's claim is waited out for as long as it could
/// lapse (its Centrals may have died); still renewed after that, it is refused. A broker that
/// does not answer is no reason to refuse (Central rides out broker outages): the renewals try
/// again.
pub async fn join(broker: &dyn Broker, ours: &str) -> Result<(), OtherDatabase> {
    let started = tokio::time::Instant::now();
    let mut waiting = false;
    loop {
        match broker.claim_central(ours, CLAIM_TTL).await {
            Ok(None) => return Ok(()),
            Ok(Some(theirs)) if started.elapsed() > CLAIM_TTL + Duration::from_secs(1) => {
                return Err(OtherDatabase {
                    ours: ours.to_owned(),
                    theirs,
                });
            }
            Ok(Some(theirs)) => {
                if !waiting {
                    waiting = true;
                    tracing::warn!(%ours, %theirs, "the consumer group is claimed for another database; waiting to see whether its Centrals still run");
                }
                tokio::time::sleep(LOOK_EVERY).await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot claim the consumer group for this database yet; retrying");
                return Ok(());
            }
        }
    }
}

/// Renews the claim every third of its TTL until `stop`, then gives it up. A renewal that finds
/// another database's claim (this replica was cut off long enough for it to expire) is logged
/// as an error and counted: an operator must look.
pub async fn renew(broker: Arc<dyn Broker>, ours: String, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(CLAIM_TTL / 3) => {}
        }
        match broker.claim_central(&ours, CLAIM_TTL).await {
            Ok(None) => {}
            Ok(Some(theirs)) => {
                metrics::counter!("stockmesh_central_database_conflicts_total").increment(1);
                tracing::error!(%ours, %theirs, "another database claimed the consumer group: two Centrals on different databases share it");
            }
            Err(error) => {
                tracing::debug!(%error, "cannot renew the consumer group claim; retrying")
            }
        }
    }
    if let Err(error) = broker.release_central(&ours).await {
        tracing::debug!(%error, "cannot give up the consumer group claim; it expires by itself");
    }
}
