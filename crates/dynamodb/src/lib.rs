//! The DynamoDB-compatible tables service (JSON 1.0, `X-Amz-Target: DynamoDB_20120810.*`).
//!
//! botocore's `dynamodb/2012-08-10/service-2.json` is the specification of shapes and error
//! codes; messages are DynamoDB's own. Layers, top to bottom:
//!
//! - [`request`]: `X-Amz-Target` + body → one typed [`request::Operation`]; responses carry
//!   `x-amz-crc32` (CRC-32 by `crc32fast`);
//! - `ops`: one handler per operation (tables, items, query/scan, batches and transactions);
//! - [`catalog`]: table metadata, its validation and `TableDescription`; [`keys`]: key
//!   extraction and encodings; [`capacity`]: consumed capacity units;
//! - [`types`] and [`expr`]: attribute values and expressions (pure);
//! - [`storage`]: the [`storage::TableStore`] trait and the write rules every backend applies
//!   inside its transactions; [`sqlite_store`]: the backend on `gust_store`'s ordered
//!   key-value spaces (group commit, so an acknowledged write is durable).
//!
//! Conditional writes and transactions are evaluated inside the store's write transaction,
//! so they are atomic and isolated. Tables are `ACTIVE` immediately. The TTL sweeper
//! ([`spawn_ttl_sweeper`]) deletes expired items in the background; until then they are
//! still returned, as DynamoDB does.
//!
//! This crate does not verify signatures (the server verifies SigV4 before it hands a request
//! to [`DynamoDb::handle`], or puts its middleware in front of [`router`]) and does not choose
//! a backend (the server does).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

pub mod capacity;
pub mod catalog;
pub mod error;
pub mod expr;
pub mod keys;
mod ops;
pub mod request;
pub mod sqlite_store;
pub mod storage;
pub mod types;
pub mod wire;

pub use error::DdbError;
pub use request::TARGET_PREFIX;
pub use sqlite_store::SqliteTableStore;
pub use storage::TableStore;

/// The tables service: its store and settings. Shared by the router and the TTL sweeper.
pub struct DynamoDb {
    pub(crate) store: Arc<dyn TableStore>,
    /// Region reported in ARNs.
    pub(crate) region: String,
    /// Serializes table operations (create, delete, update, TTL, tags) so their
    /// read-modify-write of a table's meta never interleaves.
    pub(crate) ddl: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for DynamoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoDb")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl DynamoDb {
    pub fn new(store: Arc<dyn TableStore>, region: &str) -> DynamoDb {
        DynamoDb {
            store,
            region: region.to_string(),
            ddl: tokio::sync::Mutex::new(()),
        }
    }

    /// Deletes the expired items of every table with TTL enabled, `batch` at a time per
    /// table; returns how many were deleted.
    pub async fn sweep_expired(&self, batch: usize) -> error::Result<usize> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut deleted = 0;
        for name in self.store.table_names() {
            let Some(table) = self.store.table(&name) else {
                continue;
            };
            if table.ttl_attribute.is_none() {
                continue;
            }
            let keys = self.store.expired(&table, now, batch).await?;
            if keys.is_empty() {
                continue;
            }
            let ops: Vec<storage::WriteOp> = keys
                .into_iter()
                .map(|k| storage::WriteOp {
                    table: table.clone(),
                    key: keys::PrimaryKey { p: k.p, s: k.s },
                    key_item: types::Item::new(),
                    action: storage::WriteAction::Expire { now },
                    condition: None,
                    want_old: false,
                    want_new: false,
                    old_on_failure: false,
                })
                .collect();
            let n = ops.len();
            match self.store.write(ops, storage::WriteMode::Single).await {
                Ok(_) => deleted += n,
                // The table was deleted meanwhile: nothing left to expire.
                Err(DdbError::ResourceNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }
}

/// The DynamoDB API as an axum router: `POST /`, for requests whose `X-Amz-Target` starts
/// with [`TARGET_PREFIX`] (the server routes by target). A server that already dispatches by
/// target can call [`DynamoDb::serve`] directly instead.
pub fn router(state: Arc<DynamoDb>) -> Router {
    Router::new().route("/", post(handler)).with_state(state)
}

async fn handler(State(state): State<Arc<DynamoDb>>, req: Request) -> Response {
    state.serve(req).await
}

impl DynamoDb {
    /// Serves one DynamoDB request (`POST /` with a [`TARGET_PREFIX`] target): the request id
    /// comes from the [`gust_aws::auth::RequestId`] extension (or is made here), the body is
    /// read (at most [`gust_aws::auth::MAX_BODY`]; the SigV4 middleware has buffered it).
    pub async fn serve(&self, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let id = match parts.extensions.get::<gust_aws::auth::RequestId>() {
            Some(id) => id.0.clone(),
            None => gust_aws::request_id(),
        };
        match axum::body::to_bytes(body, gust_aws::auth::MAX_BODY).await {
            Ok(body) => self.handle(&parts.headers, body, id).await,
            Err(e) => {
                tracing::debug!(error = %e, "reading a dynamodb request body failed");
                gust_aws::AwsError::new(
                    413,
                    "RequestEntityTooLargeException",
                    "Request body could not be read or is too large",
                )
                .with_protocol(gust_aws::Protocol::Json10)
                .with_request_id(id)
                .into_response()
            }
        }
    }
}

/// Runs [`DynamoDb::sweep_expired`] every `interval` until `stop` turns true.
pub fn spawn_ttl_sweeper(
    state: Arc<DynamoDb>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
            }
            if *stop.borrow() {
                break;
            }
            loop {
                match state.sweep_expired(1_000).await {
                    Ok(n) if n > 0 => {
                        tracing::debug!(deleted = n, "ttl sweeper deleted expired items");
                        if *stop.borrow() {
                            break;
                        }
                    }
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "ttl sweep failed");
                        break;
                    }
                }
            }
        }
        tracing::debug!("ttl sweeper stopped");
    })
}
