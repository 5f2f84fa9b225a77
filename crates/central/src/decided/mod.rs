//! Store-decided requests: Central's half of every flow in which Central asks and the owning store
//! decides (DESIGN §7). Today remote purchases use it; a new flow implements [`Request`] for its
//! record and adds its events and routes.
//!
//! [`Coordinator::submit`] records the request `PENDING` together with its outbox command in one
//! transaction (the next group commit: concurrent requests share its fsync, and a request whose
//! insert fails is rolled back alone), then waits (up to the wait limit) for the store's reply; the events handler
//! resolves the record from the reply and [`Coordinator::wake`]s the waiting request after its
//! commit. Past the limit the caller answers 202 with a status resource. An `Idempotency-Key`
//! makes a retry return the first request ([`Coordinator::replay`]), whichever request won the
//! race to record it.
//!
//! A command or its reply may be lost (a broker that restarted empty, a failover). The
//! [`Resender`] sends the command of every request still pending after a while again, same
//! request id, to stores that are online: before the deadline the store may still decide it;
//! after it, the store refuses an undecided request as expired and tells a decided one again
//! from its record. So Central asks instead of guessing, no request stays pending while its
//! store can answer, and none is decided twice.

mod announce;
mod records;
mod resend;
mod waiters;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{AnyConnection, AnyPool};
use stockmesh_bus::{Database, Outbox, OutboxSignal, topology};
use stockmesh_core::{Envelope, RequestId, StoreId};
use stockmesh_http::IdempotencyKey;

pub(crate) use self::records::{Stored, find};
pub(crate) use self::resend::Resender;
use self::waiters::Waiters;
use crate::error::CentralError;

/// A store-decided request as Central records it (where: [`Stored`]).
#[async_trait]
pub(crate) trait Request: Stored + Clone + Send + Sync + 'static {
    /// Its id: the store decides each id once; waiters are woken by it.
    fn request_id(&self) -> RequestId;

    /// The store that decides it.
    fn store_id(&self) -> &StoreId;

    /// Whether the store's decision is still awaited.
    fn is_pending(&self) -> bool;

    /// What the client asked for, to tell a genuine retry from a reused key.
    fn fingerprint(&self) -> String;

    /// The command that asks the store to decide it.
    fn command(&self) -> Envelope;

    /// Inserts the record; a unique violation means its idempotency key is taken.
    async fn insert(
        &self,
        tx: &mut AnyConnection,
        key: Option<&IdempotencyKey>,
    ) -> sqlx::Result<()>;
}

/// Records requests with their commands, waits for and wakes on the stores' decisions.
#[derive(Debug, Clone)]
pub(crate) struct Coordinator {
    db: Database,
    waiters: Arc<Waiters>,
    outbox: OutboxSignal,
    /// How long a request waits for the store before its caller answers 202.
    wait: Duration,
}

impl Coordinator {
    /// A coordinator over `db` that wakes `outbox` after recording a command.
    pub fn new(db: Database, outbox: OutboxSignal, wait: Duration) -> Self {
        Self {
            db,
            waiters: Arc::new(Waiters::default()),
            outbox,
            wait,
        }
    }

    /// The request first made under `key`, once decided or after waiting up to the limit;
    /// `None` when the key is unused. A key first used for a different request is refused.
    pub async fn replay<R: Request>(
        &self,
        key: &IdempotencyKey,
        fingerprint: &str,
    ) -> Result<Option<R>, CentralError> {
        let Some(first) = records::find_by_key::<R>(&self.db.reader, key).await? else {
            return Ok(None);
        };
        if first.fingerprint() != fingerprint {
            return Err(CentralError::IdempotencyMismatch(first.fingerprint()));
        }
        if !first.is_pending() {
            return Ok(Some(first));
        }
        let id = first.request_id();
        let reply = self.waiters.register(id);
        // The decision may have landed between the read above and registering: look again.
        let current: R = self
            .find(id)
            .await?
            .ok_or(CentralError::Invariant("a recorded request vanished"))?;
        if !current.is_pending() {
            drop(reply);
            self.waiters.forget_abandoned(id);
            return Ok(Some(current));
        }
        self.await_decision(id, reply).await.map(Some)
    }

    /// Records `request` (pending) and its command in one transaction, then waits up to the
    /// limit for the store's decision; returns the record as it then stands.
    pub async fn submit<R: Request>(
        &self,
        request: R,
        key: Option<&IdempotencyKey>,
    ) -> Result<R, CentralError> {
        let id = request.request_id();
        let reply = self.waiters.register(id);
        let command = request.command();
        let recorded = {
            let (request, key, command) = (request.clone(), key.cloned(), command.clone());
            self.db
                .write(move |conn| {
                    Box::pin(async move {
                        request
                            .insert(conn, key.as_ref())
                            .await
                            .map_err(Recording::Insert)?;
                        Outbox::append(
                            conn,
                            &topology::commands_stream(request.store_id()),
                            &command,
                        )
                        .await
                        .map_err(|e| Recording::Failed(e.into()))
                    })
                })
                .await
        };
        if let Err(failure) = recorded {
            drop(reply);
            self.waiters.forget_abandoned(id);
            return match failure {
                Recording::Insert(error) => self.lost_race(error, key, &request).await,
                Recording::Failed(error) => Err(error),
            };
        }
        self.outbox.notify();
        tracing::debug!(request = %id, r#type = command.event.type_name(), "request sent to the store");
        self.await_decision(id, reply).await
    }

    /// Records a request Central refused by itself, only under a key, so that a retry answers
    /// the same; returns the record.
    pub async fn refuse<R: Request>(
        &self,
        refused: R,
        key: Option<&IdempotencyKey>,
    ) -> Result<R, CentralError> {
        let Some(key) = key else {
            return Ok(refused);
        };
        let recorded = {
            let (record, key) = (refused.clone(), key.clone());
            self.db
                .write(move |conn| {
                    Box::pin(async move {
                        record
                            .insert(conn, Some(&key))
                            .await
                            .map_err(Recording::Insert)
                    })
                })
                .await
        };
        match recorded {
            Ok(()) => Ok(refused),
            Err(Recording::Insert(error)) => self.lost_race(error, Some(key), &refused).await,
            Err(Recording::Failed(error)) => Err(error),
        }
    }

    /// After an insert failed: if another request with the same key won the race to record
    /// it, answer as its retry; otherwise the failure stands.
    async fn lost_race<R: Request>(
        &self,
        error: sqlx::Error,
        key: Option<&IdempotencyKey>,
        request: &R,
    ) -> Result<R, CentralError> {
        let Some(key) = key.filter(|_| is_unique_violation(&error)) else {
            return Err(error.into());
        };
        self.replay(key, &request.fingerprint())
            .await?
            .ok_or(CentralError::IdempotencyKeyInFlight)
    }

    /// Sends the commands of `requests` again, in one transaction.
    pub async fn resend<R: Request>(&self, requests: &[R]) -> Result<(), CentralError> {
        if requests.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.writer.begin().await?;
        for request in requests {
            let command = request.command();
            Outbox::append(
                &mut tx,
                &topology::commands_stream(request.store_id()),
                &command,
            )
            .await?;
        }
        tx.commit().await?;
        self.outbox.notify();
        Ok(())
    }

    /// The database's reader pool.
    fn reader(&self) -> &AnyPool {
        &self.db.reader
    }

    /// One request by id.
    pub async fn find<R: Request>(&self, id: RequestId) -> Result<Option<R>, CentralError> {
        Ok(records::find::<R>(&self.db.reader, id).await?)
    }

    /// Tells every replica sharing the database that `decided` are decided, inside the
    /// transaction that decides them ([`announce`]): a request waiting in another replica
    /// answers as soon as this one commits. Nothing to tell on SQLite (one replica).
    pub async fn announce(
        &self,
        tx: &mut AnyConnection,
        decided: &[RequestId],
    ) -> sqlx::Result<()> {
        if self.db.engine() == stockmesh_bus::Engine::Postgres {
            announce::notify(tx, decided).await?;
        }
        Ok(())
    }

    /// Wakes this replica's requests whose decisions other replicas announce, until `stop`
    /// (PostgreSQL only: `LISTEN`, see [`announce`]).
    pub async fn listen(self, url: String, stop: tokio_util::sync::CancellationToken) {
        announce::listen(&url, &self.waiters, stop).await;
    }

    /// Wakes the requests waiting for `decided` (their decisions are committed). A decision may
    /// have queued its flow's next command ([`send_next`]), so the relay is woken too.
    pub fn wake(&self, decided: impl IntoIterator<Item = RequestId>) {
        let mut any = false;
        for id in decided {
            self.waiters.wake(id);
            any = true;
        }
        if any {
            self.outbox.notify();
        }
    }

    /// Waits (up to the limit) for the store's decision, then reads the record. `reply` must
    /// have been registered before the decision could be applied (before the request was
    /// recorded, or before a read that found it pending), so that no wake is missed.
    async fn await_decision<R: Request>(
        &self,
        id: RequestId,
        reply: tokio::sync::oneshot::Receiver<()>,
    ) -> Result<R, CentralError> {
        if tokio::time::timeout(self.wait, reply).await.is_err() {
            self.waiters.forget_abandoned(id);
        }
        self.find(id)
            .await?
            .ok_or(CentralError::Invariant("a recorded request vanished"))
    }
}

/// Queues the next step of a flow whose store reply is not final (a transfer: the sending store
/// shipped, now the receiving store must receive), in the caller's transaction: the one that
/// applies the reply. The consumer applies each reply once (inbox), so the next command is queued
/// once; the store it goes to decides it once by its request id.
pub(crate) async fn send_next(tx: &mut AnyConnection, command: &Envelope) -> sqlx::Result<()> {
    Outbox::append(tx, &topology::commands_stream(&command.store_id), command).await
}

/// Why recording a request in a group commit failed.
enum Recording {
    /// Its insert failed (a unique violation: its idempotency key is taken); rolled back alone.
    Insert(sqlx::Error),
    /// Anything else: its command's append, or the group's transaction.
    Failed(CentralError),
}

impl From<stockmesh_bus::WriteError> for Recording {
    fn from(error: stockmesh_bus::WriteError) -> Self {
        Recording::Failed(error.into())
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}
