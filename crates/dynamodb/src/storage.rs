//! The storage interface of the tables service ([`TableStore`]) and the backend-independent
//! rules every backend applies inside its write transactions ([`plan`]).
//!
//! A backend persists table metas, items and index entries, and keeps the metas cached in
//! memory. Writes arrive as [`WriteOp`]s, each with its condition; a backend runs a group of
//! them in one isolated transaction: read the current items, call [`plan`] for each (which
//! evaluates conditions and applies updates), and either write all results or none. So there
//! is no check-then-write race, whatever the number of concurrent clients.
//!
//! [`crate::sqlite_store`] implements this on `gust_store`'s ordered key-value spaces; a
//! cluster backend (e.g. PostgreSQL) would implement the same trait.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use gust_store::{KvCursor, KvRange, KvRow};

use crate::catalog::TableMeta;
use crate::error::{CancellationReason, DdbError, Result};
use crate::expr::{Condition, UpdateExpr};
use crate::keys::PrimaryKey;
use crate::types::{item_size, AttributeValue, Item};

/// DynamoDB's item size limit.
pub const MAX_ITEM_SIZE: usize = 400 * 1024;

/// What a write does to its item.
#[derive(Debug)]
pub enum WriteAction {
    Put(Item),
    Delete,
    Update(UpdateExpr),
    /// `TransactWriteItems`' `ConditionCheck`: the condition only.
    Check,
    /// Deletes the item only if its TTL attribute is at or before `now` (epoch seconds).
    Expire {
        now: i64,
    },
}

/// One item write with its condition.
#[derive(Debug)]
pub struct WriteOp {
    /// The table as the request saw it; the backend refuses the op if the table was
    /// deleted (or re-created) since.
    pub table: Arc<TableMeta>,
    pub key: PrimaryKey,
    /// The key attributes (an update of a missing item starts from them).
    pub key_item: Item,
    pub action: WriteAction,
    pub condition: Option<Condition>,
    /// Report the item's previous version in [`WriteOutcome::old`].
    pub want_old: bool,
    /// Report the item's new version in [`WriteOutcome::new`].
    pub want_new: bool,
    /// `ReturnValuesOnConditionCheckFailure = ALL_OLD`.
    pub old_on_failure: bool,
}

/// How a group of writes is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// One op; a failed condition is `ConditionalCheckFailedException`.
    Single,
    /// All or nothing; any failure is `TransactionCanceledException` with a reason per op.
    Transaction,
}

/// What one committed write did.
#[derive(Debug, Clone, Default)]
pub struct WriteOutcome {
    pub old: Option<Item>,
    pub new: Option<Item>,
    /// Sizes of the previous and new versions (0 when absent), for capacity.
    pub old_size: usize,
    pub new_size: usize,
    /// Index name → (global, bytes written) for each index entry written or deleted.
    pub index_writes: BTreeMap<String, (bool, usize)>,
}

/// A stored item as reads return it: its DynamoDB JSON and its size.
#[derive(Debug, Clone)]
pub struct StoredItem {
    pub json: Vec<u8>,
    pub size: usize,
}

/// Row counts and sizes per space.
pub type SpaceCounts = BTreeMap<i64, (u64, i64)>;

/// Persistence of tables, items and indexes.
#[async_trait]
pub trait TableStore: Send + Sync {
    /// The cached meta of a table.
    fn table(&self, name: &str) -> Option<Arc<TableMeta>>;
    /// Names of all tables, sorted.
    fn table_names(&self) -> Vec<String>;
    /// Creates a table (allocating its spaces and id); `ResourceInUseException` if the name
    /// is taken.
    async fn create_table(&self, meta: TableMeta) -> Result<Arc<TableMeta>>;
    /// Deletes a table with its items and indexes; returns the deleted meta.
    async fn delete_table(&self, name: &str) -> Result<Arc<TableMeta>>;
    /// Replaces a table's meta. New indexes (space 0) get a space and are back-filled from
    /// the items; indexes that disappeared are dropped; a changed TTL attribute re-derives
    /// every item's expiry.
    async fn update_table(&self, meta: TableMeta) -> Result<Arc<TableMeta>>;
    /// Row counts and sizes of spaces (for `DescribeTable`).
    async fn counts(&self, spaces: Vec<i64>) -> Result<SpaceCounts>;
    /// One item by primary key.
    async fn get(&self, table: &TableMeta, key: &PrimaryKey) -> Result<Option<StoredItem>>;
    /// Raw rows of a table or index space.
    async fn range(&self, range: KvRange) -> Result<Vec<KvRow>>;
    /// Runs writes in one isolated transaction (see [`WriteMode`]).
    async fn write(&self, ops: Vec<WriteOp>, mode: WriteMode) -> Result<Vec<WriteOutcome>>;
    /// Keys of items of `table` whose TTL is at or before `now`.
    async fn expired(&self, table: &TableMeta, now: i64, limit: usize) -> Result<Vec<KvCursor>>;
}

/// Why one op of a group did not apply.
#[derive(Debug)]
pub enum OpFailure {
    /// Its condition was false; the old item if `ReturnValuesOnConditionCheckFailure` asked.
    Condition(Option<Item>),
    /// The op is invalid against the current item (e.g. an update's operand types).
    Validation(String),
    /// The table is gone.
    NoTable,
}

/// The result of applying one op to the current version of its item.
#[derive(Debug)]
pub struct Planned {
    /// The item's next version; `None` deletes it (or leaves it absent). `Unchanged` ops
    /// (`Check`, an `Expire` of a live item) write nothing.
    pub next: Next,
    pub old: Option<Item>,
}

/// What a planned op writes.
#[derive(Debug)]
pub enum Next {
    Unchanged,
    Delete,
    Put(Item),
}

/// Applies `op` to `old` (the item's current version): evaluates the condition, then the
/// action. Pure: backends call it inside their transaction.
pub fn plan(
    op: &WriteOp,
    table: &TableMeta,
    old: Option<Item>,
) -> std::result::Result<Planned, OpFailure> {
    if let Some(cond) = &op.condition {
        let empty = Item::new();
        let subject = old.as_ref().unwrap_or(&empty);
        match cond.eval(subject) {
            Ok(true) => {}
            Ok(false) => {
                return Err(OpFailure::Condition(if op.old_on_failure {
                    old
                } else {
                    None
                }));
            }
            Err(e) => return Err(OpFailure::Validation(DdbError::from(e).to_string())),
        }
    }
    let next = match &op.action {
        WriteAction::Put(item) => Next::Put(item.clone()),
        WriteAction::Delete => Next::Delete,
        WriteAction::Check => Next::Unchanged,
        WriteAction::Expire { now } => match &old {
            Some(item) if ttl_of(table, item).is_some_and(|t| t <= *now) => Next::Delete,
            _ => Next::Unchanged,
        },
        WriteAction::Update(update) => {
            let mut item = old.clone().unwrap_or_else(|| op.key_item.clone());
            update
                .apply(&mut item)
                .map_err(|e| OpFailure::Validation(DdbError::from(e).to_string()))?;
            if item_size(&item) > MAX_ITEM_SIZE {
                return Err(OpFailure::Validation(
                    "Item size to update has exceeded the maximum allowed size".into(),
                ));
            }
            for name in table.key.names() {
                if !item.contains_key(name) {
                    return Err(OpFailure::Validation(format!(
                        "One or more parameter values were invalid: Missing the key {name} in the item"
                    )));
                }
            }
            // Index key attributes must keep valid types.
            for idx in &table.indexes {
                if let Err(e) = crate::keys::index_key(idx, &item) {
                    return Err(OpFailure::Validation(e.to_string()));
                }
            }
            Next::Put(item)
        }
    };
    Ok(Planned { next, old })
}

/// The failure of one op as a transaction's cancellation reason.
pub fn reason_of(f: OpFailure) -> CancellationReason {
    match f {
        OpFailure::Condition(item) => CancellationReason {
            code: "ConditionalCheckFailed",
            message: Some("The conditional request failed".into()),
            item,
        },
        OpFailure::Validation(msg) => CancellationReason {
            code: "ValidationError",
            message: Some(msg),
            item: None,
        },
        OpFailure::NoTable => CancellationReason {
            code: "ValidationError",
            message: Some("Requested resource not found".into()),
            item: None,
        },
    }
}

/// The failure of a single (non-transactional) write as its error.
pub fn error_of(f: OpFailure) -> DdbError {
    match f {
        OpFailure::Condition(item) => DdbError::ConditionalCheckFailed {
            item: item.map(Box::new),
        },
        OpFailure::Validation(msg) => DdbError::Validation(msg),
        OpFailure::NoTable => crate::error::table_not_found(),
    }
}

/// The item's expiry (epoch seconds) under the table's TTL setting: its TTL attribute when
/// that is a number.
pub fn ttl_of(table: &TableMeta, item: &Item) -> Option<i64> {
    let attr = table.ttl_attribute.as_ref()?;
    match item.get(attr)? {
        AttributeValue::N(n) => {
            let text = n.to_string();
            let whole = text.split(['.', 'e', 'E']).next().unwrap_or("");
            if text.contains(['e', 'E']) {
                text.parse::<f64>().ok().map(|f| f as i64)
            } else {
                whole.parse::<i64>().ok()
            }
        }
        _ => None,
    }
}
