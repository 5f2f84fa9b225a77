//! Group commit: one writer task gathers concurrent writes into one SQLite transaction, so that
//! one fsync makes many requests durable.
//!
//! A write is a closure over the writer connection ([`GroupWriter::write`]). It is sent through a
//! bounded channel to the writer task, which runs writes one after another inside one open
//! transaction: each behind a `SAVEPOINT` that marks the state before it, rolled back to when the
//! write fails (its own check refused it, e.g. insufficient stock), so a failing write changes
//! nothing and takes no neighbour with it. The transaction begins with a mark already set (one
//! round trip: `BEGIN` and the first `SAVEPOINT` go together), so a lone write costs the
//! statements of a plain transaction and no more. A write that succeeds needs a new mark for the
//! write after it: one statement list that releases the old mark and sets the new one, so a
//! write costs one round trip to the database beside its own, not the two of a savepoint begun
//! and ended; a write that fails leaves the state of its mark, which serves the next write as it
//! is. Releasing the old mark also checks that the transaction is still the group's: a write
//! that ended it (a stray `COMMIT` or `ROLLBACK`) leaves no mark to release, and the group fails
//! instead of carrying on in a transaction that holds only part of it.
//!
//! The group closes when it holds [`GroupCommit::max_requests`] writes, or when no write is
//! waiting and [`GroupCommit::max_wait`] has passed since the group opened (zero: close as soon
//! as nothing is waiting). Then the transaction commits, and only
//! then is every write of the group answered, successes and refusals alike: no answer reflects a
//! state that might not be durable.
//!
//! If the commit fails, or a failing write broke the whole transaction (SQLite rolls a
//! transaction back on its own after some errors, e.g. a full disk), every write of the group is
//! answered with [`WriteError`] and the connection is replaced: nothing answered as done is lost.
//! A write that panics fails alone, like a refused one. A write whose caller stops waiting
//! before it is done (its task aborted, its client gone) is stopped and rolled back, as a
//! dropped transaction would be; once done, it stands with its group.
//!
//! The writer connection pool stays open to other writers (background workers), which take the
//! connection between groups.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::settings::ConfigError;

/// How writes are gathered into one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommit {
    /// Writes in one transaction at most.
    pub max_requests: usize,
    /// How long an open group waits for more writes when none is queued; zero: the group takes
    /// what is queued (writes that arrived while the previous group was committing) and commits.
    pub max_wait: Duration,
}

impl GroupCommit {
    /// The largest group allowed.
    pub const MAX_REQUESTS: usize = 4096;
    /// The longest wait allowed: longer would only add latency.
    pub const MAX_WAIT: Duration = Duration::from_millis(10);

    /// Checks that a group may hold 1 to [`MAX_REQUESTS`](Self::MAX_REQUESTS) writes and waits at
    /// most [`MAX_WAIT`](Self::MAX_WAIT).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=Self::MAX_REQUESTS).contains(&self.max_requests) {
            return Err(ConfigError::OutOfRange {
                flag: "--group-commit-max",
                value: self.max_requests.to_string(),
                allowed: "from 1 to 4096",
            });
        }
        if self.max_wait > Self::MAX_WAIT {
            return Err(ConfigError::OutOfRange {
                flag: "--group-commit-wait",
                value: format!("{:?}", self.max_wait),
                allowed: "at most 10ms",
            });
        }
        Ok(())
    }

    /// Writes that may wait in the channel for the writer: four groups' worth.
    fn queue(&self) -> usize {
        self.max_requests.saturating_mul(4).max(16)
    }
}

impl Default for GroupCommit {
    /// Up to 64 writes, no waiting beyond what is queued.
    fn default() -> Self {
        Self {
            max_requests: 64,
            max_wait: Duration::ZERO,
        }
    }
}

/// Why a write was not done, apart from its own refusal. Nothing of it is durable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The group's transaction could not begin, commit, or keep its savepoints.
    #[error("the group's transaction failed: {0}")]
    Transaction(Arc<sqlx::Error>),
    /// The write panicked; it was rolled back.
    #[error("the write panicked")]
    Panicked,
    /// The writer task is gone (the node is shutting down).
    #[error("the database writer has stopped")]
    Stopped,
    /// The caller stopped waiting before the write was done; it was rolled back.
    #[error("the caller stopped waiting; the write was rolled back")]
    Abandoned,
}

impl WriteError {
    fn transaction(error: sqlx::Error) -> Self {
        WriteError::Transaction(Arc::new(error))
    }
}

/// Delivers a write's answer once its group's fate is known.
type Answer = Box<dyn FnOnce(Result<(), WriteError>) + Send>;

/// A write with its types erased.
trait Job: Send {
    /// Runs the write on `conn`; says whether it succeeded, and keeps its answer for after the
    /// commit.
    fn run<'c>(self: Box<Self>, conn: &'c mut AnyConnection) -> BoxFuture<'c, (bool, Answer)>;

    /// Answers the write with `error` without running it.
    fn refuse(self: Box<Self>, error: WriteError);
}

/// A write and where its answer goes.
struct Write<F, T, E> {
    work: F,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Job for Write<F, T, E>
where
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<WriteError> + Send + 'static,
{
    fn run<'c>(self: Box<Self>, conn: &'c mut AnyConnection) -> BoxFuture<'c, (bool, Answer)> {
        let Write { work, mut reply } = *self;
        Box::pin(async move {
            let work = AssertUnwindSafe(async move { work(conn).await }).catch_unwind();
            // A caller that stops waiting (its task aborted, its client gone) takes its write
            // with it, as a dropped transaction would: the write is stopped and rolled back.
            let result = if reply.is_closed() {
                Err(E::from(WriteError::Abandoned))
            } else {
                tokio::select! {
                    ran = work => ran.unwrap_or_else(|_| {
                        tracing::error!("a write panicked; rolled back");
                        Err(E::from(WriteError::Panicked))
                    }),
                    () = reply.closed() => Err(E::from(WriteError::Abandoned)),
                }
            };
            let ok = result.is_ok();
            let answer: Answer = Box::new(move |group| {
                let outcome = match (result, group) {
                    (Ok(_), Err(error)) => Err(E::from(error)),
                    (result, _) => result,
                };
                // The caller may have gone since (its client hung up); the write stands.
                let _ = reply.send(outcome);
            });
            (ok, answer)
        })
    }

    fn refuse(self: Box<Self>, error: WriteError) {
        let _ = self.reply.send(Err(E::from(error)));
    }
}

/// The handle writes are sent through; cheap to clone. The writer task ends when every handle is
/// dropped.
#[derive(Clone)]
pub struct GroupWriter {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl std::fmt::Debug for GroupWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupWriter")
            .field("queued", &(self.jobs.max_capacity() - self.jobs.capacity()))
            .finish()
    }
}

impl GroupWriter {
    /// Starts the writer task over `pool` (the single writer connection).
    pub fn spawn(pool: AnyPool, config: GroupCommit) -> Self {
        let (jobs, receiver) = mpsc::channel(config.queue());
        tokio::spawn(run(receiver, pool, config));
        Self { jobs }
    }

    /// Runs `work` in the next group and returns its result once the group's transaction is
    /// durable. An `Err` from `work` rolls back its own changes only; a failure of the group
    /// (see [`WriteError`]) fails it with `E::from`. `work` must neither commit nor roll back.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<WriteError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Write { work, reply });
        self.jobs
            .send(job)
            .await
            .map_err(|_| E::from(WriteError::Stopped))?;
        answer
            .await
            .unwrap_or_else(|_| Err(E::from(WriteError::Stopped)))
    }
}

/// The writer task: one group after another until every handle is dropped.
async fn run(mut jobs: mpsc::Receiver<Box<dyn Job>>, pool: AnyPool, config: GroupCommit) {
    while let Some(first) = jobs.recv().await {
        let deadline = tokio::time::Instant::now() + config.max_wait;
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::error!(%error, "cannot take the writer connection");
                first.refuse(WriteError::transaction(error));
                continue;
            }
        };
        let group = Group {
            jobs: &mut jobs,
            config,
            deadline,
        };
        group.commit(first, &mut conn).await;
    }
}

/// One group being gathered.
struct Group<'a> {
    jobs: &'a mut mpsc::Receiver<Box<dyn Job>>,
    config: GroupCommit,
    deadline: tokio::time::Instant,
}

/// Begins the group's transaction and sets the first mark (PostgreSQL and SQLite alike run a
/// statement list sent at once).
const BEGIN: &str = "BEGIN; SAVEPOINT stockmesh_write";
/// Moves the mark past a write that succeeded; fails if the mark is gone (the transaction ended).
const MARK: &str = "RELEASE SAVEPOINT stockmesh_write; SAVEPOINT stockmesh_write";
/// Undoes everything since the mark, which stays and still marks that state.
const UNDO: &str = "ROLLBACK TO SAVEPOINT stockmesh_write";

/// How a write ended inside the group.
enum Ran {
    /// Done, or refused and rolled back to its mark.
    Kept(Answer),
    /// It failed and its mark could not be rolled back to: the group's transaction is unusable.
    Broke(Answer, sqlx::Error),
    /// Its mark could not be set: the group's transaction is unusable.
    Unrun(Box<dyn Job>, sqlx::Error),
}

impl Group<'_> {
    /// Runs `first` and the writes that follow in one transaction on `conn`, commits, answers.
    async fn commit(mut self, first: Box<dyn Job>, conn: &mut PoolConnection<Any>) {
        let mut answers: Vec<Answer> = Vec::new();
        let outcome = self.run_jobs(first, conn, &mut answers).await;
        metrics::histogram!("stockmesh_write_group_size").record(answers.len() as f64);
        if let Err(error) = &outcome {
            tracing::error!(%error, writes = answers.len(), "group commit failed; every write of the group is refused");
            // The connection may hold a transaction SQLite already ended: use a fresh one.
            conn.close_on_drop();
        }
        for answer in answers {
            answer(outcome.clone());
        }
    }

    /// Runs the group inside one transaction and commits it.
    async fn run_jobs(
        &mut self,
        first: Box<dyn Job>,
        conn: &mut AnyConnection,
        answers: &mut Vec<Answer>,
    ) -> Result<(), WriteError> {
        let (mut tx, first) = begin_for(conn, first).await?;
        let mut next = Some(first);
        // Whether the mark holds the transaction's present state (nothing has succeeded since it
        // was set, or since the last failure was rolled back to it).
        let mut marked = true;
        while let Some(job) = next.take() {
            match run_one(&mut tx, job, &mut marked).await {
                Ran::Kept(answer) => answers.push(answer),
                Ran::Broke(answer, error) => {
                    answers.push(answer);
                    return Err(WriteError::transaction(error));
                }
                Ran::Unrun(job, error) => {
                    let error = WriteError::transaction(error);
                    job.refuse(error.clone());
                    return Err(error);
                }
            }
            if answers.len() < self.config.max_requests {
                next = self.next_job().await;
            }
        }
        tx.commit().await.map_err(WriteError::transaction)
    }

    /// The next write for this group: one already queued, else one arriving before the deadline.
    async fn next_job(&mut self) -> Option<Box<dyn Job>> {
        match self.jobs.try_recv() {
            Ok(job) => Some(job),
            Err(_) if self.config.max_wait.is_zero() => None,
            Err(_) => tokio::time::timeout_at(self.deadline, self.jobs.recv())
                .await
                .ok()
                .flatten(),
        }
    }
}

/// Begins a transaction on `conn` for `job`, its first write, with the mark set; if it cannot,
/// refuses `job`.
async fn begin_for(
    conn: &mut AnyConnection,
    job: Box<dyn Job>,
) -> Result<(sqlx::Transaction<'_, Any>, Box<dyn Job>), WriteError> {
    match conn.begin_with(BEGIN).await {
        Ok(tx) => Ok((tx, job)),
        Err(error) => {
            let error = WriteError::transaction(error);
            job.refuse(error.clone());
            Err(error)
        }
    }
}

/// Runs one write of `tx` behind the mark (moved first unless `marked` says it holds the present
/// state), rolled back to if the write fails; updates `marked`.
async fn run_one(tx: &mut AnyConnection, job: Box<dyn Job>, marked: &mut bool) -> Ran {
    if !*marked && let Err(error) = sqlx::raw_sql(MARK).execute(&mut *tx).await {
        return Ran::Unrun(job, error);
    }
    let (ok, answer) = job.run(&mut *tx).await;
    *marked = !ok;
    if ok {
        return Ran::Kept(answer);
    }
    match sqlx::raw_sql(UNDO).execute(&mut *tx).await {
        Ok(_) => Ran::Kept(answer),
        Err(error) => Ran::Broke(answer, error),
    }
}
