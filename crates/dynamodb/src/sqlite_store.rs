//! [`TableStore`] on `gust_store`'s ordered key-value spaces (SQLite, group commit).
//!
//! Layout: table metas are rows of the catalog space [`CATALOG_SPACE`] keyed by table name;
//! every table and every secondary index has its own space (numbers from the store's
//! `space` counter). Items are stored as their DynamoDB JSON with their size as the row
//! weight and their TTL as the row expiry; index entries hold the projected item.
//!
//! Every write is one closure on the store's writer thread, so reading the current item,
//! evaluating the condition, writing the item and its index entries happen with no other
//! writer in between, and are durable before the caller is answered. The meta cache is
//! updated on the writer thread too, and write closures take the table's meta from it when
//! they run: a write queued before an index was added is back-filled by it, and one queued
//! after sees the index.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use gust_store::{KvAbort, KvCursor, KvRange, KvRow, KvTxn, KvValue, SqliteStore, StoreError};

use crate::catalog::{TableMeta, META_VERSION};
use crate::error::{table_not_found_named, DdbError, Result};
use crate::keys::{index_key, project_for_index, PrimaryKey};
use crate::storage::{
    error_of, plan, reason_of, ttl_of, Next, OpFailure, SpaceCounts, StoredItem, TableStore,
    WriteAction, WriteMode, WriteOp, WriteOutcome,
};
use crate::types::{item_size, Item};

/// The space of table metas (negative numbers are never allocated by the counter).
pub const CATALOG_SPACE: i64 = -1;
/// The store counter that numbers spaces.
const SPACE_COUNTER: &str = "space";
/// Rows per chunk when back-filling an index or re-deriving expiries.
const CHUNK: usize = 1_000;

type Catalog = Arc<RwLock<HashMap<String, Arc<TableMeta>>>>;

/// The SQLite-backed table store.
#[derive(Clone)]
pub struct SqliteTableStore {
    store: SqliteStore,
    catalog: Catalog,
}

impl std::fmt::Debug for SqliteTableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTableStore").finish_non_exhaustive()
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn decode_item(bytes: &[u8]) -> std::result::Result<Item, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt("stored item", e))
}

fn encode<T: serde::Serialize>(v: &T) -> std::result::Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| corrupt("encoding", e))
}

fn read_catalog(txn: &KvTxn<'_>) -> std::result::Result<Vec<TableMeta>, StoreError> {
    let mut out = Vec::new();
    let mut after: Option<KvCursor> = None;
    loop {
        let mut range = KvRange::space(CATALOG_SPACE, CHUNK);
        range.after = after.take();
        let rows = txn.range(&range)?;
        let done = rows.len() < CHUNK;
        for row in &rows {
            let meta: TableMeta =
                serde_json::from_slice(&row.value).map_err(|e| corrupt("table meta", e))?;
            if meta.version > META_VERSION {
                return Err(StoreError::Corrupt(format!(
                    "table {}: meta version {} is newer than this build supports ({META_VERSION})",
                    meta.name, meta.version
                )));
            }
            out.push(meta);
        }
        match rows.last() {
            Some(last) if !done => {
                after = Some(KvCursor {
                    p: last.p.clone(),
                    s: last.s.clone(),
                    u: last.u.clone(),
                })
            }
            _ => break,
        }
    }
    Ok(out)
}

fn put_meta(txn: &KvTxn<'_>, meta: &TableMeta) -> std::result::Result<(), StoreError> {
    txn.put(
        CATALOG_SPACE,
        meta.name.as_bytes(),
        b"",
        b"",
        &KvValue {
            value: encode(meta)?,
            weight: 0,
            expires_at: None,
        },
    )
}

impl SqliteTableStore {
    /// Loads the catalog of `store`.
    pub async fn open(store: SqliteStore) -> Result<SqliteTableStore> {
        let metas = store.kv_read(read_catalog).await?;
        let map = metas
            .into_iter()
            .map(|m| (m.name.clone(), Arc::new(m)))
            .collect();
        Ok(SqliteTableStore {
            store,
            catalog: Arc::new(RwLock::new(map)),
        })
    }

    fn set_cached(catalog: &Catalog, meta: Arc<TableMeta>) {
        catalog
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(meta.name.clone(), meta);
    }

    fn cached(catalog: &Catalog, name: &str) -> Option<Arc<TableMeta>> {
        catalog
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }
}

/// Writes the index entries of an item change for every index of `table`.
fn maintain_indexes(
    txn: &KvTxn<'_>,
    table: &TableMeta,
    key: &PrimaryKey,
    old: Option<&Item>,
    new: Option<&Item>,
    out: &mut BTreeMap<String, (bool, usize)>,
) -> std::result::Result<(), StoreError> {
    if table.indexes.is_empty() {
        return Ok(());
    }
    let u = key.unique_suffix();
    for idx in &table.indexes {
        // Type errors were refused before; a stored item that no longer fits is skipped.
        let old_key = old.and_then(|i| index_key(idx, i).ok().flatten());
        let new_entry = match new {
            Some(item) => index_key(idx, item)
                .ok()
                .flatten()
                .map(|k| (k, project_for_index(table, idx, item))),
            None => None,
        };
        if let Some((p, s)) = &old_key {
            let replaced = new_entry
                .as_ref()
                .is_some_and(|((np, ns), _)| np == p && ns == s);
            if !replaced {
                txn.delete(idx.space, p, s, &u)?;
                let e = out.entry(idx.name.clone()).or_insert((idx.global, 0));
                e.1 += 1;
            }
        }
        if let Some(((p, s), projected)) = new_entry {
            let size = item_size(&projected);
            txn.put(
                idx.space,
                &p,
                &s,
                &u,
                &KvValue {
                    value: encode(&projected)?,
                    weight: size as i64,
                    expires_at: None,
                },
            )?;
            let e = out.entry(idx.name.clone()).or_insert((idx.global, 0));
            e.1 += size.max(1);
        }
    }
    Ok(())
}

/// Writes one planned item change (and its index entries).
fn apply(
    txn: &KvTxn<'_>,
    table: &TableMeta,
    key: &PrimaryKey,
    old: Option<&Item>,
    old_size: usize,
    next: &Next,
    outcome: &mut WriteOutcome,
) -> std::result::Result<(), StoreError> {
    match next {
        Next::Unchanged => {}
        Next::Delete => {
            // `old` is absent for blind deletes of tables without indexes: delete anyway.
            txn.delete(table.space, &key.p, &key.s, b"")?;
            if old.is_some() {
                maintain_indexes(txn, table, key, old, None, &mut outcome.index_writes)?;
            }
        }
        Next::Put(item) => {
            let size = item_size(item);
            outcome.new_size = size;
            txn.put(
                table.space,
                &key.p,
                &key.s,
                b"",
                &KvValue {
                    value: encode(item)?,
                    weight: size as i64,
                    expires_at: ttl_of(table, item),
                },
            )?;
            maintain_indexes(txn, table, key, old, Some(item), &mut outcome.index_writes)?;
        }
    }
    outcome.old_size = old_size;
    Ok(())
}

/// Runs a group of writes inside the writer's transaction.
fn run_writes(
    txn: &KvTxn<'_>,
    catalog: &Catalog,
    ops: Vec<WriteOp>,
    mode: WriteMode,
) -> std::result::Result<Vec<WriteOutcome>, KvAbort<DdbError>> {
    // Plan everything first: a transaction either applies every op or none.
    let mut planned = Vec::with_capacity(ops.len());
    let mut failures: Vec<Option<OpFailure>> = Vec::with_capacity(ops.len());
    let mut any_failed = false;
    for op in &ops {
        let current = SqliteTableStore::cached(catalog, &op.table.name)
            .filter(|t| t.table_id == op.table.table_id);
        let Some(table) = current else {
            failures.push(Some(OpFailure::NoTable));
            planned.push(None);
            any_failed = true;
            continue;
        };
        // A blind put or delete needs only the old size (for capacity), not the old item.
        let needs_old = op.condition.is_some()
            || op.want_old
            || op.old_on_failure
            || !table.indexes.is_empty()
            || !matches!(op.action, WriteAction::Put(_) | WriteAction::Delete);
        let (old, old_size) = if needs_old {
            match txn.get(table.space, &op.key.p, &op.key.s, b"")? {
                Some(v) => (Some(decode_item(&v.value)?), v.weight.max(0) as usize),
                None => (None, 0),
            }
        } else {
            let w = txn.weight(table.space, &op.key.p, &op.key.s, b"")?;
            (None, w.unwrap_or(0).max(0) as usize)
        };
        match plan(op, &table, old) {
            Ok(p) => {
                failures.push(None);
                planned.push(Some((table, p, old_size)));
            }
            Err(f) => {
                any_failed = true;
                failures.push(Some(f));
                planned.push(None);
            }
        }
    }
    if any_failed {
        return Err(KvAbort::Caller(match mode {
            WriteMode::Single => match failures.into_iter().flatten().next() {
                Some(f) => error_of(f),
                None => DdbError::Internal("write failed without a reason".into()),
            },
            WriteMode::Transaction => DdbError::TransactionCanceled {
                reasons: failures
                    .into_iter()
                    .map(|f| match f {
                        Some(f) => reason_of(f),
                        None => crate::error::CancellationReason::none(),
                    })
                    .collect(),
            },
        }));
    }
    let mut outcomes = Vec::with_capacity(ops.len());
    for (op, p) in ops.iter().zip(planned) {
        let Some((table, p, old_size)) = p else {
            continue;
        };
        let mut outcome = WriteOutcome::default();
        apply(
            txn,
            &table,
            &op.key,
            p.old.as_ref(),
            old_size,
            &p.next,
            &mut outcome,
        )?;
        if op.want_new {
            outcome.new = match &p.next {
                Next::Put(item) => Some(item.clone()),
                Next::Unchanged => p.old.clone(),
                Next::Delete => None,
            };
        }
        if op.want_old {
            outcome.old = p.old;
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Fills a new index's space from the table's items.
fn backfill(
    txn: &KvTxn<'_>,
    table: &TableMeta,
    index_names: &HashSet<String>,
) -> std::result::Result<(), StoreError> {
    let mut after: Option<KvCursor> = None;
    loop {
        let mut range = KvRange::space(table.space, CHUNK);
        range.after = after.take();
        let rows = txn.range(&range)?;
        for row in &rows {
            let item = decode_item(&row.value)?;
            let key = PrimaryKey {
                p: row.p.clone(),
                s: row.s.clone(),
            };
            let u = key.unique_suffix();
            for idx in table
                .indexes
                .iter()
                .filter(|i| index_names.contains(&i.name))
            {
                if let Ok(Some((p, s))) = index_key(idx, &item) {
                    let projected = project_for_index(table, idx, &item);
                    txn.put(
                        idx.space,
                        &p,
                        &s,
                        &u,
                        &KvValue {
                            value: encode(&projected)?,
                            weight: item_size(&projected) as i64,
                            expires_at: None,
                        },
                    )?;
                }
            }
        }
        match rows.last() {
            Some(last) if rows.len() == CHUNK => {
                after = Some(KvCursor {
                    p: last.p.clone(),
                    s: last.s.clone(),
                    u: last.u.clone(),
                })
            }
            _ => return Ok(()),
        }
    }
}

/// Re-derives every item's expiry after the TTL attribute changed.
fn rederive_expiry(txn: &KvTxn<'_>, table: &TableMeta) -> std::result::Result<(), StoreError> {
    let mut after: Option<KvCursor> = None;
    loop {
        let mut range = KvRange::space(table.space, CHUNK);
        range.after = after.take();
        let rows = txn.range(&range)?;
        for row in &rows {
            let item = decode_item(&row.value)?;
            txn.set_expiry(table.space, &row.p, &row.s, &row.u, ttl_of(table, &item))?;
        }
        match rows.last() {
            Some(last) if rows.len() == CHUNK => {
                after = Some(KvCursor {
                    p: last.p.clone(),
                    s: last.s.clone(),
                    u: last.u.clone(),
                })
            }
            _ => return Ok(()),
        }
    }
}

#[async_trait]
impl TableStore for SqliteTableStore {
    fn table(&self, name: &str) -> Option<Arc<TableMeta>> {
        Self::cached(&self.catalog, name)
    }

    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .catalog
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    async fn create_table(&self, mut meta: TableMeta) -> Result<Arc<TableMeta>> {
        let catalog = self.catalog.clone();
        self.store
            .kv_write(move |txn| {
                if Self::cached(&catalog, &meta.name).is_some() {
                    return Err(KvAbort::Caller(DdbError::ResourceInUse(format!(
                        "Table already exists: {}",
                        meta.name
                    ))));
                }
                meta.space = txn.next_id(SPACE_COUNTER)?;
                for idx in &mut meta.indexes {
                    idx.space = txn.next_id(SPACE_COUNTER)?;
                }
                put_meta(txn, &meta)?;
                let meta = Arc::new(meta);
                Self::set_cached(&catalog, meta.clone());
                Ok(meta)
            })
            .await?
    }

    async fn delete_table(&self, name: &str) -> Result<Arc<TableMeta>> {
        let catalog = self.catalog.clone();
        let name = name.to_string();
        self.store
            .kv_write(move |txn| {
                let Some(meta) = Self::cached(&catalog, &name) else {
                    return Err(KvAbort::Caller(table_not_found_named(&name)));
                };
                txn.delete_space(meta.space)?;
                for idx in &meta.indexes {
                    txn.delete_space(idx.space)?;
                }
                txn.delete(CATALOG_SPACE, name.as_bytes(), b"", b"")?;
                catalog
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&name);
                Ok(meta)
            })
            .await?
    }

    async fn update_table(&self, mut meta: TableMeta) -> Result<Arc<TableMeta>> {
        let catalog = self.catalog.clone();
        self.store
            .kv_write(move |txn| {
                let Some(current) =
                    Self::cached(&catalog, &meta.name).filter(|t| t.table_id == meta.table_id)
                else {
                    return Err(KvAbort::Caller(table_not_found_named(&meta.name)));
                };
                let mut added = HashSet::new();
                for idx in &mut meta.indexes {
                    if idx.space == 0 {
                        idx.space = txn.next_id(SPACE_COUNTER)?;
                        added.insert(idx.name.clone());
                    }
                }
                for old in &current.indexes {
                    if !meta.indexes.iter().any(|i| i.space == old.space) {
                        txn.delete_space(old.space)?;
                    }
                }
                if !added.is_empty() {
                    backfill(txn, &meta, &added)?;
                }
                if meta.ttl_attribute != current.ttl_attribute {
                    rederive_expiry(txn, &meta)?;
                }
                put_meta(txn, &meta)?;
                let meta = Arc::new(meta);
                Self::set_cached(&catalog, meta.clone());
                Ok(meta)
            })
            .await?
    }

    async fn counts(&self, spaces: Vec<i64>) -> Result<SpaceCounts> {
        Ok(self
            .store
            .kv_read(move |txn| {
                let mut out = BTreeMap::new();
                for s in spaces {
                    let st = txn.space_stats(s)?;
                    out.insert(s, (st.rows, st.weight));
                }
                Ok(out)
            })
            .await?)
    }

    async fn get(&self, table: &TableMeta, key: &PrimaryKey) -> Result<Option<StoredItem>> {
        // A point read of an indexed row takes microseconds: cheaper on this thread than a
        // hand-off to the blocking pool.
        let row = self
            .store
            .kv_read_now(|txn| txn.get(table.space, &key.p, &key.s, b""))?;
        Ok(row.map(|v| StoredItem {
            json: v.value,
            size: v.weight.max(0) as usize,
        }))
    }

    async fn range(&self, range: KvRange) -> Result<Vec<KvRow>> {
        Ok(self.store.kv_read(move |txn| txn.range(&range)).await?)
    }

    async fn write(&self, ops: Vec<WriteOp>, mode: WriteMode) -> Result<Vec<WriteOutcome>> {
        let catalog = self.catalog.clone();
        self.store
            .kv_write(move |txn| run_writes(txn, &catalog, ops, mode))
            .await?
    }

    async fn expired(&self, table: &TableMeta, now: i64, limit: usize) -> Result<Vec<KvCursor>> {
        let space = table.space;
        Ok(self
            .store
            .kv_read(move |txn| txn.expired(space, now, limit))
            .await?)
    }
}
