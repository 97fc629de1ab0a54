//! The pool of read-only connections, and the read snapshots they keep open between reads
//! while nothing is committed.
//!
//! Every read runs inside a read transaction (one snapshot for all its statements). Starting
//! and ending a read transaction in WAL mode takes and releases a lock on the WAL index with
//! `fcntl`, two system calls that cost as much as a point read itself. So a connection going
//! back to the pool keeps its transaction open, labelled with the store's commit
//! [generation](Readers::generation), and the next read on it reuses the snapshot if no
//! commit has started since: then the snapshot is exactly what a fresh one would be.
//!
//! **Why reuse is safe.** The writer advances the generation to an odd value before every
//! `COMMIT` and to the next even value after it (see [`Readers::commit`]), before it replies
//! to anyone. A read loads the generation *before* its first statement establishes the
//! snapshot, so a snapshot labelled `g` contains every commit that ended before the
//! generation became `g`. It is reused only while the generation is still exactly `g` (even):
//! no commit has started since, so there is nothing newer to see. Reads that start while a
//! commit is in flight (odd) use a snapshot once and end it.
//!
//! **Why idle snapshots don't pin the WAL.** A snapshot that is no longer current is ended
//! when its connection is next used or returned; the writer also ends the stale snapshots of
//! idle connections before each checkpoint ([`Readers::release_stale`]), so a reader that
//! stays idle never keeps a checkpoint from copying the WAL back or the WAL from starting over.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::Result;

/// Idle read connections kept open; more are opened on demand and closed after use.
const MAX_IDLE: usize = 4;

/// Pooled read-only connections of one database. See the module docs.
pub(crate) struct Readers {
    db_path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Reader>>,
    /// Even while no commit is in flight; odd during one. Only the writer advances it.
    generation: AtomicU64,
}

struct Reader {
    conn: Connection,
    /// The generation the open read transaction was labelled with; `None`: no transaction.
    snapshot: Option<u64>,
}

impl Reader {
    /// Ends the open read transaction, if any. A failure only costs the connection.
    fn end(&mut self) -> bool {
        if self.snapshot.take().is_some() {
            return exec_cached(&self.conn, "COMMIT").is_ok();
        }
        true
    }
}

fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

impl Readers {
    pub(crate) fn new(db_path: PathBuf, busy_timeout: Duration) -> Readers {
        Readers {
            db_path,
            busy_timeout,
            idle: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Reader>> {
        // A panic while holding the lock leaves at worst a connection with an open snapshot.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The store's commit generation (see the module docs).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Runs `op` on a pooled connection, inside a read transaction that is either a fresh
    /// snapshot or a reused one that is still current.
    pub(crate) fn read<T>(&self, op: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let popped = self.idle().pop();
        let mut reader = match popped {
            Some(r) => r,
            None => Reader {
                conn: self.open()?,
                snapshot: None,
            },
        };
        let g = self.generation();
        let current = g.is_multiple_of(2) && reader.snapshot == Some(g);
        if !current {
            if !reader.end() {
                // The connection is in a state we don't know; use a new one.
                reader = Reader {
                    conn: self.open()?,
                    snapshot: None,
                };
            }
            exec_cached(&reader.conn, "BEGIN")?;
            reader.snapshot = Some(g);
        }
        let result = op(&reader.conn);
        // Keep the snapshot only while it is current and the read went well.
        let keep = result.is_ok() && g.is_multiple_of(2) && self.generation() == g;
        if !keep && !reader.end() {
            return result;
        }
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(reader);
        }
        result
    }

    fn open(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.db_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        Ok(conn)
    }

    /// Runs `commit` (a `COMMIT` of the writer) with the generation odd, so no read reuses a
    /// snapshot while the commit is in flight, and every snapshot taken before it is stale
    /// afterwards.
    pub(crate) fn commit<T>(&self, commit: impl FnOnce() -> T) -> T {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let out = commit();
        self.generation.fetch_add(1, Ordering::AcqRel);
        out
    }

    /// Ends the snapshots of idle connections that are no longer current (the writer calls
    /// this before a checkpoint). Returns how many were ended.
    pub(crate) fn release_stale(&self) -> usize {
        let g = self.generation();
        let mut idle = self.idle();
        let before = idle.len();
        let mut ended = 0;
        idle.retain_mut(|r| {
            if r.snapshot.is_some_and(|s| s != g) {
                ended += 1;
                return r.end();
            }
            true
        });
        if idle.len() < before {
            tracing::debug!(
                dropped = before - idle.len(),
                "store: dropped reader connections"
            );
        }
        ended
    }

    /// Closes every idle connection (at shutdown, so the writer's is the last one open).
    pub(crate) fn clear(&self) {
        self.idle().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Connection, Readers) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let w = Connection::open(&path).expect("open");
        w.pragma_update(None, "journal_mode", "WAL").expect("wal");
        w.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);")
            .expect("schema");
        let r = Readers::new(path, Duration::from_secs(1));
        (dir, w, r)
    }

    fn value(r: &Readers) -> i64 {
        r.read(|c| Ok(c.query_row("SELECT sum(v) FROM t", [], |row| row.get(0))?))
            .expect("read")
    }

    fn write(w: &Connection, r: &Readers, v: i64) {
        w.execute_batch("BEGIN IMMEDIATE").expect("begin");
        w.execute("INSERT INTO t VALUES (?1)", [v]).expect("insert");
        r.commit(|| w.execute_batch("COMMIT")).expect("commit");
    }

    #[test]
    fn snapshots_are_reused_until_a_commit() {
        let (_dir, w, r) = setup();
        assert_eq!(value(&r), 1);
        assert_eq!(r.idle()[0].snapshot, Some(0));
        // Reused: still the same labelled snapshot.
        assert_eq!(value(&r), 1);
        assert_eq!(r.idle().len(), 1);
        write(&w, &r, 10);
        assert_eq!(r.generation(), 2);
        // Every read after the commit sees it.
        assert_eq!(value(&r), 11);
        assert_eq!(r.idle()[0].snapshot, Some(2));
    }

    #[test]
    fn a_commit_during_a_read_is_seen_by_the_next_read() {
        let (_dir, w, r) = setup();
        let inside = r
            .read(|c| {
                // The write lands while this read's snapshot is open.
                let before: i64 = c.query_row("SELECT sum(v) FROM t", [], |row| row.get(0))?;
                write(&w, &r, 5);
                let after: i64 = c.query_row("SELECT sum(v) FROM t", [], |row| row.get(0))?;
                Ok((before, after))
            })
            .expect("read");
        // One read is one snapshot...
        assert_eq!(inside, (1, 1));
        // ...which is not kept, since a commit happened during it.
        assert!(r.idle().iter().all(|x| x.snapshot.is_none()));
        assert_eq!(value(&r), 6);
    }

    #[test]
    fn stale_idle_snapshots_are_released_for_checkpoints() {
        let (_dir, w, r) = setup();
        assert_eq!(value(&r), 1);
        write(&w, &r, 2);
        // The idle reader's snapshot would keep the checkpoint from finishing.
        assert_eq!(r.release_stale(), 1);
        assert!(r.idle()[0].snapshot.is_none());
        let (busy, log, done): (i64, i64, i64) = w
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .expect("checkpoint");
        assert_eq!(busy, 0);
        assert_eq!(log, done, "every WAL frame copied back");
        assert_eq!(value(&r), 3);
    }

    #[test]
    fn a_failed_read_does_not_keep_its_snapshot() {
        let (_dir, _w, r) = setup();
        let e = r.read(|c| Ok(c.query_row("SELECT nope FROM t", [], |row| row.get::<_, i64>(0))?));
        assert!(e.is_err());
        assert!(r.idle().iter().all(|x| x.snapshot.is_none()));
        assert_eq!(value(&r), 1);
    }
}
