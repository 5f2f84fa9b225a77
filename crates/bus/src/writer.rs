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
//! A write whose first statement can carry that move ([`GroupWriter::write_leading`], e.g. a
//! till sale, the store's hottest write) saves the round trip: it is handed a [`Mark`] and sends
//! its first statement as [`Mark::first`] gives it, the move in front. The mark alternates
//! between two savepoint names, so a move that was owed and never made cannot pass unnoticed:
//! undoing to, or releasing, the name it would have set finds no such savepoint, and the group
//! fails whole rather than undo a neighbour. A leading write that fails having sent nothing
//! (its caller gone before it ran) leaves nothing to undo.
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

mod mark;

pub use mark::{Leading, Mark};
use mark::{Position, STATEMENTS};

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
    /// A leading write failed without sending its first statement through its [`Mark`]; its
    /// group was rolled back whole, since it could not be undone alone.
    #[error("a leading write failed before its first statement carried the mark")]
    Unmarked,
}

impl WriteError {
    fn transaction(error: sqlx::Error) -> Self {
        WriteError::Transaction(Arc::new(error))
    }
}

/// Delivers a write's answer once its group's fate is known.
type Answer = Box<dyn FnOnce(Result<(), WriteError>) + Send>;

/// How a write ran, for the group.
struct Ran {
    /// It succeeded.
    ok: bool,
    /// It reached its work (it may have sent statements).
    started: bool,
    /// Its answer, delivered after the commit.
    answer: Answer,
}

/// A write with its types erased.
trait Job: Send {
    /// Whether the write carries an owed move of the mark in its first statement.
    fn leads(&self) -> bool;

    /// Runs the write on `conn`, handing it `mark`; keeps its answer for after the commit.
    fn run<'c>(
        self: Box<Self>,
        conn: &'c mut AnyConnection,
        mark: &'c mut Mark,
    ) -> BoxFuture<'c, Ran>;

    /// Answers the write with `error` without running it.
    fn refuse(self: Box<Self>, error: WriteError);
}

/// A write and where its answer goes.
struct Write<F, T, E> {
    work: F,
    leads: bool,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Job for Write<F, T, E>
where
    F: for<'c> FnOnce(&'c mut AnyConnection, &'c mut Mark) -> BoxFuture<'c, Result<T, E>>
        + Send
        + 'static,
    T: Send + 'static,
    E: From<WriteError> + Send + 'static,
{
    fn leads(&self) -> bool {
        self.leads
    }

    fn run<'c>(
        self: Box<Self>,
        conn: &'c mut AnyConnection,
        mark: &'c mut Mark,
    ) -> BoxFuture<'c, Ran> {
        let Write {
            work, mut reply, ..
        } = *self;
        Box::pin(async move {
            // A caller that stops waiting (its task aborted, its client gone) takes its write
            // with it, as a dropped transaction would: the write is stopped and rolled back.
            let started = !reply.is_closed();
            let work = AssertUnwindSafe(async move { work(conn, mark).await }).catch_unwind();
            let result = if !started {
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
            Ran {
                ok,
                started,
                answer,
            }
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
        self.submit(false, move |conn, _mark| work(conn)).await
    }

    /// As [`write`](Self::write), for a write whose first statement carries the move of the
    /// group's mark that may be owed before it, one round trip fewer: `work` must send
    /// [`Mark::first`]'s text before any other statement.
    pub async fn write_leading<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection, &'c mut Mark) -> BoxFuture<'c, Result<T, E>>
            + Send
            + 'static,
        T: Send + 'static,
        E: From<WriteError> + Send + 'static,
    {
        self.submit(true, work).await
    }

    /// Queues `work` for the writer task and waits for its answer.
    async fn submit<T, E, F>(&self, leads: bool, work: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection, &'c mut Mark) -> BoxFuture<'c, Result<T, E>>
            + Send
            + 'static,
        T: Send + 'static,
        E: From<WriteError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Write { work, leads, reply });
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

/// How a write ended inside the group.
enum Outcome {
    /// Done, or refused and rolled back to its mark.
    Kept(Answer),
    /// It failed and could not be undone alone: the group's transaction is unusable.
    Broke(Answer, WriteError),
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
        let mut mark = Position::START;
        while let Some(job) = next.take() {
            match run_one(&mut tx, job, &mut mark).await {
                Outcome::Kept(answer) => answers.push(answer),
                Outcome::Broke(answer, error) => {
                    answers.push(answer);
                    return Err(error);
                }
                Outcome::Unrun(job, error) => {
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
    match conn.begin_with(STATEMENTS.begin.as_str()).await {
        Ok(tx) => Ok((tx, job)),
        Err(error) => {
            let error = WriteError::transaction(error);
            job.refuse(error.clone());
            Err(error)
        }
    }
}

/// Runs one write of `tx` behind the mark, moved first if it does not hold the present state
/// (by the writer, or by the write itself if it leads), and rolled back to if the write fails;
/// updates `mark`.
async fn run_one(tx: &mut AnyConnection, job: Box<dyn Job>, mark: &mut Position) -> Outcome {
    let owed = mark.owed();
    let leads = job.leads();
    let mut handed = Mark::owing(owed.filter(|_| leads));
    if let Some(to) = owed
        && !leads
    {
        let moved = sqlx::raw_sql(STATEMENTS.moves[to].as_str());
        if let Err(error) = moved.execute(&mut *tx).await {
            return Outcome::Unrun(job, error);
        }
        mark.move_to(to);
    }
    let ran = job.run(&mut *tx, &mut handed).await;
    if let Some(to) = owed
        && leads
        && handed.handed_over()
    {
        // The write took the move in front of its first statement.
        mark.move_to(to);
    }
    if ran.ok {
        mark.holds = false;
        return Outcome::Kept(ran.answer);
    }
    if !ran.started {
        // It sent nothing: there is nothing to undo.
        return Outcome::Kept(ran.answer);
    }
    if !mark.holds {
        // A leading write failed without taking the move owed to it: whatever it changed has
        // no mark of its own to be undone to, and the mark there is would undo a neighbour.
        return Outcome::Broke(ran.answer, WriteError::Unmarked);
    }
    match sqlx::raw_sql(STATEMENTS.undo[mark.at].as_str())
        .execute(&mut *tx)
        .await
    {
        Ok(_) => Outcome::Kept(ran.answer),
        Err(error) => Outcome::Broke(ran.answer, WriteError::transaction(error)),
    }
}
