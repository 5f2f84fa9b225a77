//! Which Central replica does the work that must happen once, not once per replica: anti-entropy
//! (snapshot requests and repairs), re-sending the commands of long-pending requests, and
//! expiring overdue purchases.
//!
//! On PostgreSQL the replica holding a session-level advisory lock leads
//! (`pg_try_advisory_lock`, on a connection of its own). PostgreSQL releases the lock when that
//! session ends, so a replica that dies (even killed -9) hands over: another takes the lock at
//! its next try, within about a second ([`TRY_EVERY`]). A leader checks its session every try;
//! if the session is gone it stops leading at once. Between a leader's session dying and the
//! leader noticing, two replicas may briefly both lead: every once-only task is idempotent
//! (conditional updates, requests decided once by id), so that costs duplicates, never
//! correctness. On SQLite there is one replica, which always leads.
//!
//! Store registration needs no leader: its `INSERT … ON CONFLICT DO NOTHING` lets exactly one
//! replica record a new store and ask it for a snapshot.

use std::future::Future;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The advisory lock's key: "stockmesh" in ASCII, read as a number.
const LOCK_KEY: i64 = 0x73_746f_636b_6d65;

/// How often a follower tries to take the lead, and a leader checks that it still holds it.
pub const TRY_EVERY: Duration = Duration::from_secs(1);

/// Whether this replica leads, as it changes.
#[derive(Debug, Clone)]
pub struct Leadership {
    leading: watch::Receiver<bool>,
    /// The sender of a replica that always leads, kept so that the channel stays open.
    _always: Option<std::sync::Arc<watch::Sender<bool>>>,
}

impl Leadership {
    /// A replica alone on its database: it always leads.
    pub fn always() -> Self {
        let (tx, leading) = watch::channel(true);
        Self {
            leading,
            _always: Some(std::sync::Arc::new(tx)),
        }
    }

    /// A replica that competes for the lead on the PostgreSQL database at `url`, and the worker
    /// that does so until its token fires (spawn it).
    pub fn compete(
        url: String,
    ) -> (
        Self,
        impl FnOnce(CancellationToken) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    ) {
        let (tx, leading) = watch::channel(false);
        let leadership = Self {
            leading,
            _always: None,
        };
        let worker =
            move |stop: CancellationToken| -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
                Box::pin(hold(url, tx, stop))
            };
        (leadership, worker)
    }

    /// Whether this replica leads now.
    pub fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// Runs `work` while this replica leads: started on taking the lead, stopped (its token
    /// cancelled, then awaited) on losing it, started again on taking it back; until `stop`.
    pub async fn lead<F, Fut>(mut self, stop: CancellationToken, work: F)
    where
        F: Fn(CancellationToken) -> Fut,
        Fut: Future<Output = ()>,
    {
        loop {
            loop {
                let leading = *self.leading.borrow_and_update();
                if leading {
                    break;
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    changed = self.leading.changed() => if changed.is_err() { return },
                }
            }
            let term = stop.child_token();
            let running = work(term.clone());
            tokio::pin!(running);
            loop {
                tokio::select! {
                    () = &mut running => return,
                    changed = self.leading.changed() => {
                        let leading = changed.is_ok() && *self.leading.borrow_and_update();
                        if !leading {
                            term.cancel();
                            running.await;
                            break;
                        }
                    }
                }
            }
            if stop.is_cancelled() {
                return;
            }
        }
    }
}

/// Holds (or tries to take) the lock at `url`, telling `leading`, until `stop`.
async fn hold(url: String, leading: watch::Sender<bool>, stop: CancellationToken) {
    let mut session: Option<PgConnection> = None;
    loop {
        let held = *leading.borrow();
        let now_leading = match session.as_mut() {
            None => match PgConnection::connect(&url).await {
                Ok(conn) => {
                    session = Some(conn);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot reach the database to compete for the lead");
                    false
                }
            },
            Some(conn) if held => match sqlx::query("SELECT 1").execute(&mut *conn).await {
                Ok(_) => true,
                Err(error) => {
                    tracing::warn!(%error, "lost the session holding the lead");
                    session = None;
                    false
                }
            },
            Some(conn) => {
                match sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                    .bind(LOCK_KEY)
                    .fetch_one(&mut *conn)
                    .await
                {
                    Ok(taken) => taken,
                    Err(error) => {
                        tracing::warn!(%error, "cannot try for the lead");
                        session = None;
                        false
                    }
                }
            }
        };
        if now_leading != held {
            if now_leading {
                tracing::info!("this replica leads: it runs the once-only work");
            } else {
                tracing::warn!("this replica no longer leads");
            }
            leading.send_replace(now_leading);
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(TRY_EVERY) => {}
        }
    }
    leading.send_replace(false);
    if let Some(conn) = session {
        // Closing the session releases the lock for the next replica at once.
        let _ = conn.close().await;
    }
}
