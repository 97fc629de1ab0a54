//! The single writer thread and its group commit.
//!
//! Every write of the store is a closure sent to this thread together with a oneshot for its
//! reply. The thread takes everything queued (up to [`MAX_BATCH`] ops), runs each op inside its
//! own savepoint of one `BEGIN IMMEDIATE` transaction, commits once (one WAL fsync under
//! `synchronous=FULL`), and only then replies to every caller. An op that fails is rolled back
//! to its savepoint and reports its own error; the others in the batch still commit.
//!
//! Log retention also runs here, after a batch has been answered, so pruning never delays a
//! reply and never contends with another writer.
//!
//! This module knows the tables only through the closures it runs and [`prune_logs`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::{Result, StoreError, StoreOptions};

/// Most ops committed in one transaction; more wait for the next commit.
pub(crate) const MAX_BATCH: usize = 1_000;
/// How often the writer prunes logs even when nothing asks it to.
const PRUNE_INTERVAL: Duration = Duration::from_secs(30);
/// Appended lines after which the writer prunes without waiting for the interval.
const PRUNE_EVERY_LINES: u64 = 10_000;

/// One queued write: run inside the batch transaction, or abandoned if the transaction could
/// not start.
pub(crate) trait WriteJob: Send {
    /// Runs the op; returns whether it succeeded and a completion that sends its reply once
    /// the fate of the commit is known.
    fn run(self: Box<Self>, conn: &Connection, state: &mut WriterState) -> (bool, Completion);
    /// Replies with an error without running the op.
    fn abort(self: Box<Self>, msg: &str);
}

pub(crate) type Job = Box<dyn WriteJob>;
/// Called with the commit's outcome; sends the reply.
pub(crate) type Completion = Box<dyn FnOnce(std::result::Result<(), &str>) + Send>;

fn commit_error(msg: &str) -> StoreError {
    StoreError::Io(std::io::Error::other(format!("commit failed: {msg}")))
}

struct TypedJob<T, F> {
    op: F,
    reply: tokio::sync::oneshot::Sender<Result<T>>,
}

impl<T, F> WriteJob for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &mut WriterState) -> Result<T> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection, state: &mut WriterState) -> (bool, Completion) {
        let TypedJob { op, reply } = *self;
        let outcome = op(conn, state);
        let ok = outcome.is_ok();
        let completion: Completion = Box::new(move |commit| {
            let result = match (outcome, commit) {
                (Err(e), _) => Err(e),
                (Ok(v), Ok(())) => Ok(v),
                (Ok(_), Err(msg)) => Err(commit_error(msg)),
            };
            // The caller may have gone away (a cancelled request); the write stands regardless.
            let _ = reply.send(result);
        });
        (ok, completion)
    }

    fn abort(self: Box<Self>, msg: &str) {
        let _ = self.reply.send(Err(commit_error(msg)));
    }
}

/// Wraps a typed op into a [`Job`] whose reply goes to `reply`.
pub(crate) fn job<T, F>(op: F, reply: tokio::sync::oneshot::Sender<Result<T>>) -> Job
where
    T: Send + 'static,
    F: FnOnce(&Connection, &mut WriterState) -> Result<T> + Send + 'static,
{
    Box::new(TypedJob { op, reply })
}

/// Counters shared between the writer and [`crate::SqliteStore::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub commits: AtomicU64,
    pub ops: AtomicU64,
}

/// What the writer thread remembers between batches (only for log retention).
#[derive(Debug)]
pub(crate) struct WriterState {
    /// Functions that got log lines since the last prune; `None` means "all of them" (after
    /// start, when nothing is known yet).
    touched: Option<HashSet<String>>,
    lines_since_prune: u64,
    last_prune: Instant,
}

impl WriterState {
    /// Notes appended lines so the line-count retention looks at their function.
    pub(crate) fn note_logs<'a>(&mut self, functions: impl Iterator<Item = &'a str>) {
        for f in functions {
            self.lines_since_prune += 1;
            if let Some(set) = &mut self.touched {
                if !set.contains(f) {
                    set.insert(f.to_string());
                }
            }
        }
    }
}

/// A message to the writer thread.
pub(crate) enum Msg {
    Job(Job),
    /// Prune logs of every function after the preceding writes; reply with the lines deleted.
    Prune(tokio::sync::oneshot::Sender<Result<u64>>),
}

/// The writer loop; returns when every sender is gone and the queue is drained.
pub(crate) fn run(
    conn: Connection,
    rx: Receiver<Msg>,
    counters: Arc<Counters>,
    opts: StoreOptions,
) {
    let mut state = WriterState {
        touched: None,
        lines_since_prune: 0,
        last_prune: Instant::now(),
    };
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut prune_requests = Vec::new();
    loop {
        let wait = PRUNE_INTERVAL.saturating_sub(state.last_prune.elapsed());
        match rx.recv_timeout(wait) {
            Ok(Msg::Job(j)) => batch.push(j),
            Ok(Msg::Prune(reply)) => prune_requests.push(reply),
            Err(RecvTimeoutError::Timeout) => {
                let _ = prune(&conn, &mut state, &opts, false);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // A prune request ends the batch, so it sees every write queued before it.
        while prune_requests.is_empty() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => batch.push(j),
                Ok(Msg::Prune(reply)) => prune_requests.push(reply),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&conn, &mut state, &mut batch, &counters);
        }
        if !prune_requests.is_empty() {
            let result = prune(&conn, &mut state, &opts, true);
            for reply in prune_requests.drain(..) {
                let reply_result = match &result {
                    Ok(n) => Ok(*n),
                    Err(e) => Err(StoreError::Io(std::io::Error::other(format!(
                        "pruning logs: {e}"
                    )))),
                };
                let _ = reply.send(reply_result);
            }
        } else if state.lines_since_prune >= PRUNE_EVERY_LINES
            || state.last_prune.elapsed() >= PRUNE_INTERVAL
        {
            let _ = prune(&conn, &mut state, &opts, false);
        }
    }
    tracing::debug!("store writer stopped");
}

fn commit_batch(
    conn: &Connection,
    state: &mut WriterState,
    batch: &mut Vec<Job>,
    counters: &Counters,
) {
    let n = batch.len();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let msg = e.to_string();
        tracing::error!(error = %msg, ops = n, "store: cannot begin transaction");
        for j in batch.drain(..) {
            j.abort(&msg);
        }
        return;
    }
    let mut completions = Vec::with_capacity(n);
    for j in batch.drain(..) {
        completions.push(run_in_savepoint(conn, j, state));
    }
    let commit = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
    match &commit {
        Ok(()) => {
            counters.commits.fetch_add(1, Ordering::Relaxed);
            counters.ops.fetch_add(n as u64, Ordering::Relaxed);
        }
        Err(msg) => {
            tracing::error!(error = %msg, ops = n, "store: commit failed");
            if let Err(e) = conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "store: rollback failed");
            }
        }
    }
    let commit = commit.as_ref().map(|_| ()).map_err(String::as_str);
    for done in completions {
        done(commit);
    }
}

/// Runs one job between `SAVEPOINT` and `RELEASE`, so its failure undoes only its own changes.
fn run_in_savepoint(conn: &Connection, j: Job, state: &mut WriterState) -> Completion {
    if let Err(e) = conn
        .prepare_cached("SAVEPOINT op")
        .and_then(|mut s| s.execute([]))
    {
        let msg = e.to_string();
        j.abort(&msg);
        return Box::new(|_| {});
    }
    let (ok, done) = j.run(conn, state);
    let end = if ok {
        "RELEASE op"
    } else {
        "ROLLBACK TO op; RELEASE op"
    };
    if let Err(e) = conn.execute_batch(end) {
        tracing::error!(error = %e, "store: ending savepoint failed");
    }
    done
}

/// Deletes log lines beyond the per-function line limit and older than the age limit, for
/// the functions that got lines since the last pass (or all of them).
fn prune(
    conn: &Connection,
    state: &mut WriterState,
    opts: &StoreOptions,
    all: bool,
) -> Result<u64> {
    let started = Instant::now();
    let touched = state.touched.replace(HashSet::new()).filter(|_| !all);
    state.lines_since_prune = 0;
    state.last_prune = Instant::now();
    let result = prune_logs(conn, touched, opts);
    match &result {
        Ok(deleted) => {
            tracing::debug!(
                deleted,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "pruned logs"
            );
        }
        Err(e) => tracing::warn!(error = %e, "store: log pruning failed"),
    }
    result
}

/// One retention pass in its own transaction; returns the number of deleted lines.
fn prune_logs(
    conn: &Connection,
    touched: Option<HashSet<String>>,
    opts: &StoreOptions,
) -> Result<u64> {
    let functions: Vec<String> = match touched {
        Some(set) => set.into_iter().collect(),
        None => {
            let mut stmt = conn.prepare("SELECT DISTINCT function FROM logs")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        }
    };
    let keep = i64::try_from(opts.log_retention_lines).unwrap_or(i64::MAX);
    let cutoff = gust_model::now_ms().saturating_sub(opts.log_retention_ms);
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> Result<u64> {
        let mut deleted = 0u64;
        let mut by_count = conn.prepare_cached(
            "DELETE FROM logs WHERE function = ?1 AND seq <= \
             (SELECT seq FROM logs WHERE function = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
        )?;
        for f in &functions {
            deleted += by_count.execute(rusqlite::params![f, keep])? as u64;
        }
        deleted += conn
            .prepare_cached("DELETE FROM logs WHERE ts_ms < ?1")?
            .execute([cutoff])? as u64;
        Ok(deleted)
    })();
    match result {
        Ok(n) => {
            conn.execute_batch("COMMIT")?;
            Ok(n)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
