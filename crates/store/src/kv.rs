//! Ordered key-value spaces: the storage facility under the tables service.
//!
//! A *space* is a numbered, ordered map from a three-part byte key `(p, s, u)` to a value.
//! Keys order by `p`, then `s`, then `u`, each compared as bytes (memcmp, shorter first), so a
//! caller that encodes its keys order-preservingly gets range scans in its own order. `p`
//! groups rows (a partition), `s` orders rows inside a group, and `u` only makes a key unique
//! where several rows share `(p, s)` (a secondary index). Every row also carries a `weight`
//! (a caller-defined size, summed by [`KvTxn::space_stats`]) and an optional `expires_at`
//! (seconds since the epoch, listed by [`KvTxn::expired`]).
//!
//! All rows live in one SQLite table (`kv`, `WITHOUT ROWID`, primary key
//! `(space, p, s, u)`). Writes run as closures on the store's writer thread
//! ([`SqliteStore::kv_write`]): each closure is one savepoint of a group commit, so a closure
//! can read, decide and write with no other writer in between (conditional writes and
//! multi-row transactions are atomic and isolated), and its changes are durable before the
//! caller hears back. A closure that returns an error is rolled back, alone. Reads
//! ([`SqliteStore::kv_read`]) use the read pool and see only committed data.
//!
//! This module knows nothing of DynamoDB (or any other caller's) encodings.

use std::ops::Bound;

use rusqlite::{params, Connection, OptionalExtension};

use crate::writer::{Completion, WriteJob, WriterState};
use crate::{Result, SqliteStore, StoreError};

/// A stored row's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvValue {
    pub value: Vec<u8>,
    pub weight: i64,
    pub expires_at: Option<i64>,
}

/// A row with its key, as range scans return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvRow {
    pub p: Vec<u8>,
    pub s: Vec<u8>,
    pub u: Vec<u8>,
    pub value: Vec<u8>,
    pub weight: i64,
}

/// A position in a space, for resuming a range scan strictly after (or, backwards, before) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvCursor {
    pub p: Vec<u8>,
    pub s: Vec<u8>,
    pub u: Vec<u8>,
}

/// A range scan of one space: either one partition (`p = Some`) with bounds on `s`, or the
/// whole space in key order.
#[derive(Debug, Clone)]
pub struct KvRange {
    pub space: i64,
    pub p: Option<Vec<u8>>,
    /// Bounds on `s`; used only with `p`.
    pub lower: Bound<Vec<u8>>,
    pub upper: Bound<Vec<u8>>,
    /// Resume strictly after this key (strictly before it when `forward` is false).
    pub after: Option<KvCursor>,
    pub forward: bool,
    pub limit: usize,
}

impl KvRange {
    /// Every row of `space`, forwards.
    pub fn space(space: i64, limit: usize) -> KvRange {
        KvRange {
            space,
            p: None,
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            after: None,
            forward: true,
            limit,
        }
    }

    /// Every row of partition `p` of `space`, forwards.
    pub fn partition(space: i64, p: Vec<u8>, limit: usize) -> KvRange {
        KvRange {
            p: Some(p),
            ..KvRange::space(space, limit)
        }
    }
}

/// Row count and summed weight of a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpaceStats {
    pub rows: u64,
    pub weight: i64,
}

/// Reads and (on the writer thread) writes of key-value spaces on one connection.
pub struct KvTxn<'c> {
    conn: &'c Connection,
}

impl std::fmt::Debug for KvTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvTxn").finish_non_exhaustive()
    }
}

fn sql_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl<'c> KvTxn<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        KvTxn { conn }
    }

    /// The row at `(p, s, u)`.
    pub fn get(&self, space: i64, p: &[u8], s: &[u8], u: &[u8]) -> Result<Option<KvValue>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT value, weight, expires_at FROM kv WHERE space = ?1 AND p = ?2 AND s = ?3 AND u = ?4",
            )?
            .query_row(params![space, p, s, u], |r| {
                Ok(KvValue {
                    value: r.get(0)?,
                    weight: r.get(1)?,
                    expires_at: r.get(2)?,
                })
            })
            .optional()?)
    }

    /// The weight of the row at `(p, s, u)`, without reading its value.
    pub fn weight(&self, space: i64, p: &[u8], s: &[u8], u: &[u8]) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT weight FROM kv WHERE space = ?1 AND p = ?2 AND s = ?3 AND u = ?4",
            )?
            .query_row(params![space, p, s, u], |r| r.get(0))
            .optional()?)
    }

    /// Inserts or replaces the row at `(p, s, u)`.
    pub fn put(&self, space: i64, p: &[u8], s: &[u8], u: &[u8], value: &KvValue) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO kv (space, p, s, u, value, weight, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                space,
                p,
                s,
                u,
                value.value,
                value.weight,
                value.expires_at
            ])?;
        Ok(())
    }

    /// Deletes the row at `(p, s, u)`; returns whether there was one.
    pub fn delete(&self, space: i64, p: &[u8], s: &[u8], u: &[u8]) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM kv WHERE space = ?1 AND p = ?2 AND s = ?3 AND u = ?4")?
            .execute(params![space, p, s, u])?;
        Ok(n > 0)
    }

    /// Deletes every row of a space; returns how many.
    pub fn delete_space(&self, space: i64) -> Result<u64> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM kv WHERE space = ?1")?
            .execute([space])?;
        Ok(n as u64)
    }

    /// Rows in `range`, in its direction, at most `range.limit`.
    pub fn range(&self, range: &KvRange) -> Result<Vec<KvRow>> {
        let mut sql = String::from("SELECT p, s, u, value, weight FROM kv WHERE space = ?");
        let mut args: Vec<rusqlite::types::Value> = vec![range.space.into()];
        let gt = if range.forward { ">" } else { "<" };
        if let Some(p) = &range.p {
            sql.push_str(" AND p = ?");
            args.push(p.clone().into());
            match &range.lower {
                Bound::Included(b) => {
                    sql.push_str(" AND s >= ?");
                    args.push(b.clone().into());
                }
                Bound::Excluded(b) => {
                    sql.push_str(" AND s > ?");
                    args.push(b.clone().into());
                }
                Bound::Unbounded => {}
            }
            match &range.upper {
                Bound::Included(b) => {
                    sql.push_str(" AND s <= ?");
                    args.push(b.clone().into());
                }
                Bound::Excluded(b) => {
                    sql.push_str(" AND s < ?");
                    args.push(b.clone().into());
                }
                Bound::Unbounded => {}
            }
            if let Some(c) = &range.after {
                // Row values compare lexicographically and can use the primary key index.
                sql.push_str(&format!(" AND (s, u) {gt} (?, ?)"));
                args.push(c.s.clone().into());
                args.push(c.u.clone().into());
            }
            let dir = if range.forward { "ASC" } else { "DESC" };
            sql.push_str(&format!(" ORDER BY s {dir}, u {dir}"));
        } else {
            if let Some(c) = &range.after {
                sql.push_str(&format!(" AND (p, s, u) {gt} (?, ?, ?)"));
                args.push(c.p.clone().into());
                args.push(c.s.clone().into());
                args.push(c.u.clone().into());
            }
            let dir = if range.forward { "ASC" } else { "DESC" };
            sql.push_str(&format!(" ORDER BY p {dir}, s {dir}, u {dir}"));
        }
        sql.push_str(" LIMIT ?");
        args.push(sql_i64(range.limit).into());
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok(KvRow {
                p: r.get(0)?,
                s: r.get(1)?,
                u: r.get(2)?,
                value: r.get(3)?,
                weight: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Number of rows and summed weight of a space.
    pub fn space_stats(&self, space: i64) -> Result<SpaceStats> {
        Ok(self
            .conn
            .prepare_cached("SELECT COUNT(*), COALESCE(SUM(weight), 0) FROM kv WHERE space = ?1")?
            .query_row([space], |r| {
                Ok(SpaceStats {
                    rows: r.get::<_, i64>(0)?.max(0) as u64,
                    weight: r.get(1)?,
                })
            })?)
    }

    /// Keys of rows of `space` whose `expires_at` is at or before `now`, oldest first.
    pub fn expired(&self, space: i64, now: i64, limit: usize) -> Result<Vec<KvCursor>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT p, s, u FROM kv WHERE space = ?1 AND expires_at IS NOT NULL \
             AND expires_at <= ?2 ORDER BY expires_at LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![space, now, sql_i64(limit)], |r| {
            Ok(KvCursor {
                p: r.get(0)?,
                s: r.get(1)?,
                u: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Sets `expires_at` of an existing row (e.g. after the caller's expiry rule changed).
    pub fn set_expiry(
        &self,
        space: i64,
        p: &[u8],
        s: &[u8],
        u: &[u8],
        expires_at: Option<i64>,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE kv SET expires_at = ?5 WHERE space = ?1 AND p = ?2 AND s = ?3 AND u = ?4",
            )?
            .execute(params![space, p, s, u, expires_at])?;
        Ok(())
    }

    /// The next value of the named counter, starting at 1; durable with the closure's commit.
    pub fn next_id(&self, counter: &str) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO kv_counters (name, value) VALUES (?1, 1) \
                 ON CONFLICT (name) DO UPDATE SET value = value + 1",
            )?
            .execute([counter])?;
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM kv_counters WHERE name = ?1")?
            .query_row([counter], |r| r.get(0))?)
    }
}

/// A write closure on the writer thread whose own error (`Ok(Err(_))`) also rolls back its
/// savepoint, so callers can abort with domain errors (a failed condition) and leave nothing
/// behind.
struct KvJob<T, E, F> {
    op: F,
    reply: tokio::sync::oneshot::Sender<Result<std::result::Result<T, E>>>,
}

impl<T, E, F> WriteJob for KvJob<T, E, F>
where
    T: Send + 'static,
    E: Send + 'static,
    F: FnOnce(&KvTxn<'_>) -> std::result::Result<T, KvAbort<E>> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection, _state: &mut WriterState) -> (bool, Completion) {
        let KvJob { op, reply } = *self;
        let outcome = match op(&KvTxn::new(conn)) {
            Ok(v) => Ok(Ok(v)),
            Err(KvAbort::Caller(e)) => Ok(Err(e)),
            Err(KvAbort::Store(e)) => Err(e),
        };
        let ok = matches!(outcome, Ok(Ok(_)));
        let completion: Completion = Box::new(move |commit| {
            let result = match (outcome, commit) {
                // A rolled-back op does not depend on the commit.
                (Ok(Err(e)), _) => Ok(Err(e)),
                (Err(e), _) => Err(e),
                (Ok(Ok(v)), Ok(())) => Ok(Ok(v)),
                (Ok(Ok(_)), Err(msg)) => Err(StoreError::Io(std::io::Error::other(format!(
                    "commit failed: {msg}"
                )))),
            };
            let _ = reply.send(result);
        });
        (ok, completion)
    }

    fn abort(self: Box<Self>, msg: &str) {
        let _ = self
            .reply
            .send(Err(StoreError::Io(std::io::Error::other(format!(
                "commit failed: {msg}"
            )))));
    }
}

/// Why a write closure stopped: a storage failure, or the caller's own decision (rolled back
/// and handed back as `Ok(Err(e))`).
#[derive(Debug)]
pub enum KvAbort<E> {
    Store(StoreError),
    Caller(E),
}

impl<E> From<StoreError> for KvAbort<E> {
    fn from(e: StoreError) -> Self {
        KvAbort::Store(e)
    }
}

impl<E> From<rusqlite::Error> for KvAbort<E> {
    fn from(e: rusqlite::Error) -> Self {
        KvAbort::Store(StoreError::Sqlite(e))
    }
}

impl SqliteStore {
    /// Runs `op` on the writer thread as one savepoint of a group commit and returns once
    /// its changes are durable. `op` returning `Err(KvAbort::Caller(e))` rolls its changes
    /// back and yields `Ok(Err(e))`; a storage failure yields `Err`.
    pub async fn kv_write<T, E, F>(&self, op: F) -> Result<std::result::Result<T, E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&KvTxn<'_>) -> std::result::Result<T, KvAbort<E>> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Box::new(KvJob { op, reply: tx }))?;
        self.wait_reply(rx).await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `op` on a pooled read connection (committed data only) on the blocking pool.
    pub async fn kv_read<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&KvTxn<'_>) -> Result<T> + Send + 'static,
    {
        self.read(move |conn| op(&KvTxn::new(conn))).await
    }

    /// Runs `op` on a pooled read connection on the calling thread. For short point reads
    /// on a hot path, where handing the work to another thread costs more than the read;
    /// it blocks the caller for the duration of `op`.
    pub fn kv_read_now<T, F>(&self, op: F) -> Result<T>
    where
        F: FnOnce(&KvTxn<'_>) -> Result<T>,
    {
        self.read_now(move |conn| op(&KvTxn::new(conn)))
    }
}
