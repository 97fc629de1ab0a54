//! Turns a request (`X-Amz-Target` + JSON body) into one typed [`Operation`], dispatches it
//! to its handler and renders the response: the only place that sees HTTP.

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{DdbError, Result};
use crate::ops::Body;
use crate::wire::*;
use crate::DynamoDb;

/// The `X-Amz-Target` prefix of DynamoDB operations.
pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// A parsed DynamoDB request.
#[derive(Debug)]
pub enum Operation {
    CreateTable(Box<CreateTableInput>),
    DeleteTable(TableNameInput),
    DescribeTable(TableNameInput),
    ListTables(ListTablesInput),
    UpdateTable(Box<UpdateTableInput>),
    PutItem(Box<PutItemInput>),
    GetItem(Box<GetItemInput>),
    DeleteItem(Box<DeleteItemInput>),
    UpdateItem(Box<UpdateItemInput>),
    Query(Box<QueryInput>),
    Scan(Box<QueryInput>),
    BatchGetItem(Box<BatchGetInput>),
    BatchWriteItem(Box<BatchWriteInput>),
    TransactWriteItems(Box<TransactWriteInput>),
    TransactGetItems(Box<TransactGetInput>),
    DescribeTimeToLive(TableNameInput),
    UpdateTimeToLive(Box<UpdateTtlInput>),
    TagResource(TagResourceInput),
    UntagResource(UntagResourceInput),
    ListTagsOfResource(ListTagsInput),
    DescribeLimits,
    DescribeEndpoints,
}

/// `missing field `TableName`` → DynamoDB's null-member message.
fn serde_message(e: &serde_json::Error) -> DdbError {
    let text = e.to_string();
    let msg = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    if e.is_syntax() || e.is_eof() {
        return DdbError::Serialization(msg);
    }
    if let Some(field) = msg
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        let mut camel = field.to_string();
        if let Some(first) = camel.get(..1) {
            camel.replace_range(..1, &first.to_ascii_lowercase());
        }
        return DdbError::Validation(format!(
            "1 validation error detected: Value null at '{camel}' failed to satisfy constraint: Member must not be null"
        ));
    }
    if msg.starts_with("invalid type")
        || msg.contains("where not expected")
        || ["String", "Structure", "Map", "Boolean", "List", "Blob"]
            .iter()
            .any(|t| msg.ends_with(&format!("cannot be converted to {t}")))
    {
        return DdbError::Serialization(msg);
    }
    DdbError::Validation(msg)
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    // botocore sends `{}` for operations without members; an empty body means the same.
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| serde_message(&e))
}

impl Operation {
    /// Parses the operation named by `target` (`DynamoDB_20120810.<Op>`) from `body`.
    pub fn parse(target: &str, body: &[u8]) -> Result<Operation> {
        let name = target
            .strip_prefix(TARGET_PREFIX)
            .ok_or_else(|| DdbError::UnknownOperation(target.to_string()))?;
        Ok(match name {
            "CreateTable" => Operation::CreateTable(parse(body)?),
            "DeleteTable" => Operation::DeleteTable(parse(body)?),
            "DescribeTable" => Operation::DescribeTable(parse(body)?),
            "ListTables" => Operation::ListTables(parse(body)?),
            "UpdateTable" => Operation::UpdateTable(parse(body)?),
            "PutItem" => Operation::PutItem(parse(body)?),
            "GetItem" => Operation::GetItem(parse(body)?),
            "DeleteItem" => Operation::DeleteItem(parse(body)?),
            "UpdateItem" => Operation::UpdateItem(parse(body)?),
            "Query" => Operation::Query(parse(body)?),
            "Scan" => Operation::Scan(parse(body)?),
            "BatchGetItem" => Operation::BatchGetItem(parse(body)?),
            "BatchWriteItem" => Operation::BatchWriteItem(parse(body)?),
            "TransactWriteItems" => Operation::TransactWriteItems(parse(body)?),
            "TransactGetItems" => Operation::TransactGetItems(parse(body)?),
            "DescribeTimeToLive" => Operation::DescribeTimeToLive(parse(body)?),
            "UpdateTimeToLive" => Operation::UpdateTimeToLive(parse(body)?),
            "TagResource" => Operation::TagResource(parse(body)?),
            "UntagResource" => Operation::UntagResource(parse(body)?),
            "ListTagsOfResource" => Operation::ListTagsOfResource(parse(body)?),
            "DescribeLimits" => Operation::DescribeLimits,
            "DescribeEndpoints" => Operation::DescribeEndpoints,
            other => return Err(DdbError::UnknownOperation(other.to_string())),
        })
    }
}

impl DynamoDb {
    /// Runs one operation.
    pub async fn dispatch(&self, op: Operation) -> Result<Body> {
        match op {
            Operation::CreateTable(i) => self.create_table(*i).await,
            Operation::DeleteTable(i) => self.delete_table(i).await,
            Operation::DescribeTable(i) => self.describe_table(i).await,
            Operation::ListTables(i) => self.list_tables(i),
            Operation::UpdateTable(i) => self.update_table(*i).await,
            Operation::PutItem(i) => self.put_item(*i).await,
            Operation::GetItem(i) => self.get_item(*i).await,
            Operation::DeleteItem(i) => self.delete_item(*i).await,
            Operation::UpdateItem(i) => self.update_item(*i).await,
            Operation::Query(i) => self.query(*i).await,
            Operation::Scan(i) => self.scan(*i).await,
            Operation::BatchGetItem(i) => self.batch_get(*i).await,
            Operation::BatchWriteItem(i) => self.batch_write(*i).await,
            Operation::TransactWriteItems(i) => self.transact_write(*i).await,
            Operation::TransactGetItems(i) => self.transact_get(*i).await,
            Operation::DescribeTimeToLive(i) => self.describe_ttl(i),
            Operation::UpdateTimeToLive(i) => self.update_ttl(*i).await,
            Operation::TagResource(i) => self.tag_resource(i).await,
            Operation::UntagResource(i) => self.untag_resource(i).await,
            Operation::ListTagsOfResource(i) => self.list_tags(i),
            Operation::DescribeLimits => Ok(serde_json::to_vec(&serde_json::json!({
                "AccountMaxReadCapacityUnits": 80000,
                "AccountMaxWriteCapacityUnits": 80000,
                "TableMaxReadCapacityUnits": 40000,
                "TableMaxWriteCapacityUnits": 40000
            }))
            .unwrap_or_default()),
            Operation::DescribeEndpoints => Ok(serde_json::to_vec(&serde_json::json!({
                "Endpoints": [{"Address": "localhost", "CachePeriodInMinutes": 1440}]
            }))
            .unwrap_or_default()),
        }
    }

    /// Parses, runs and renders one request.
    pub async fn handle(&self, headers: &HeaderMap, body: Bytes, request_id: String) -> Response {
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let result = match Operation::parse(target, &body) {
            Ok(op) => self.dispatch(op).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(body) => respond(StatusCode::OK, body, request_id),
            Err(e) => {
                tracing::debug!(code = e.code(), error = %e, target, "dynamodb request failed");
                let err = e.to_aws().with_request_id(request_id.clone());
                let body = err.body(&request_id).into_bytes();
                respond(err.status, body, request_id)
            }
        }
    }
}

const CRC32_HEADER: HeaderName = HeaderName::from_static("x-amz-crc32");
const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static(gust_aws::REQUEST_ID_HEADER);

/// A JSON 1.0 response with its request id and CRC32 (botocore checks `x-amz-crc32`).
fn respond(status: StatusCode, body: Body, request_id: String) -> Response {
    let crc = crc32fast::hash(&body);
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    // The id's own bytes become the header value (no copy).
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(request_id)) {
        h.insert(REQUEST_ID_HEADER, v);
    }
    h.insert(CRC32_HEADER, HeaderValue::from(crc));
    resp
}
