//! The DynamoDB API through its router (no socket) against a real `SqliteStore` in a
//! temporary directory: every operation, and the errors DynamoDB words for common mistakes.

use std::sync::Arc;

use axum::body::Body;
use axum::Router;
use gust_dynamodb::{router, DynamoDb, SqliteTableStore};
use gust_store::{SqliteStore, StoreOptions};
use http::Request;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Harness {
    app: Router,
    state: Arc<DynamoDb>,
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path(), StoreOptions::default()).expect("open store");
    let tables = SqliteTableStore::open(store.clone()).await.expect("tables");
    let state = Arc::new(DynamoDb::new(Arc::new(tables), "us-east-1"));
    Harness {
        app: router(state.clone()),
        state,
        store,
        _dir: dir,
    }
}

/// A response: status, `__type` short code (errors) and body.
#[derive(Debug)]
struct Resp {
    status: u16,
    body: Value,
}

impl Resp {
    fn ok(self) -> Value {
        assert_eq!(self.status, 200, "expected success, got {:?}", self.body);
        self.body
    }

    fn err(&self) -> (&str, &str) {
        assert_eq!(self.status, 400, "expected an error, got {:?}", self.body);
        let t = self.body["__type"].as_str().unwrap_or("");
        (
            t.rsplit('#').next().unwrap_or(t),
            self.body["message"].as_str().unwrap_or(""),
        )
    }
}

impl Harness {
    async fn call(&self, op: &str, body: Value) -> Resp {
        let req = Request::post("/")
            .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
            .header("content-type", "application/x-amz-json-1.0")
            .body(Body::from(body.to_string()))
            .expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let crc = resp
            .headers()
            .get("x-amz-crc32")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
            .expect("x-amz-crc32 header");
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        assert_eq!(crc, crc32fast::hash(&bytes));
        let body = serde_json::from_slice(&bytes).expect("json body");
        Resp { status, body }
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        self.call(op, body).await.ok()
    }

    async fn err(&self, op: &str, body: Value) -> (String, String) {
        let r = self.call(op, body).await;
        let (c, m) = r.err();
        (c.to_string(), m.to_string())
    }

    /// A table with `pk` (S) and optionally `sk` (N or S).
    async fn table(&self, name: &str, sk: Option<&str>) {
        let mut defs = vec![json!({"AttributeName": "pk", "AttributeType": "S"})];
        let mut keys = vec![json!({"AttributeName": "pk", "KeyType": "HASH"})];
        if let Some(t) = sk {
            defs.push(json!({"AttributeName": "sk", "AttributeType": t}));
            keys.push(json!({"AttributeName": "sk", "KeyType": "RANGE"}));
        }
        self.ok(
            "CreateTable",
            json!({"TableName": name, "AttributeDefinitions": defs, "KeySchema": keys, "BillingMode": "PAY_PER_REQUEST"}),
        )
        .await;
    }
}

fn s(v: &str) -> Value {
    json!({ "S": v })
}

fn n(v: &str) -> Value {
    json!({ "N": v })
}

#[tokio::test]
async fn table_lifecycle() {
    let h = harness().await;
    let created = h
        .ok(
            "CreateTable",
            json!({
                "TableName": "users",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
                "Tags": [{"Key": "team", "Value": "a"}]
            }),
        )
        .await;
    let d = &created["TableDescription"];
    assert_eq!(d["TableStatus"], "ACTIVE");
    assert_eq!(
        d["TableArn"],
        "arn:aws:dynamodb:us-east-1:000000000000:table/users"
    );
    assert_eq!(d["ProvisionedThroughput"]["ReadCapacityUnits"], 5);

    let (code, msg) = h
        .err(
            "CreateTable",
            json!({
                "TableName": "users",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST"
            }),
        )
        .await;
    assert_eq!(code, "ResourceInUseException");
    assert_eq!(msg, "Table already exists: users");

    h.ok(
        "PutItem",
        json!({"TableName": "users", "Item": {"pk": s("a"), "v": n("1")}}),
    )
    .await;
    let desc = h.ok("DescribeTable", json!({"TableName": "users"})).await;
    assert_eq!(desc["Table"]["ItemCount"], 1);
    assert!(desc["Table"]["TableSizeBytes"].as_i64().unwrap_or(0) > 0);
    assert_eq!(desc["Table"]["KeySchema"][0]["AttributeName"], "pk");

    for name in ["t-b", "t-a", "t-c"] {
        h.table(name, None).await;
    }
    let page = h.ok("ListTables", json!({"Limit": 2})).await;
    assert_eq!(page["TableNames"], json!(["t-a", "t-b"]));
    assert_eq!(page["LastEvaluatedTableName"], "t-b");
    let page = h
        .ok("ListTables", json!({"ExclusiveStartTableName": "t-b"}))
        .await;
    assert_eq!(page["TableNames"], json!(["t-c", "users"]));
    assert!(page.get("LastEvaluatedTableName").is_none());

    let deleted = h.ok("DeleteTable", json!({"TableName": "users"})).await;
    assert_eq!(deleted["TableDescription"]["TableStatus"], "DELETING");
    let (code, msg) = h.err("DescribeTable", json!({"TableName": "users"})).await;
    assert_eq!(code, "ResourceNotFoundException");
    assert_eq!(msg, "Requested resource not found: Table: users not found");
    let (code, msg) = h
        .err(
            "GetItem",
            json!({"TableName": "users", "Key": {"pk": s("a")}}),
        )
        .await;
    assert_eq!(code, "ResourceNotFoundException");
    assert_eq!(msg, "Requested resource not found");
    // A re-created table starts empty.
    h.table("users", None).await;
    let got = h
        .ok(
            "GetItem",
            json!({"TableName": "users", "Key": {"pk": s("a")}}),
        )
        .await;
    assert!(got.get("Item").is_none());
}

#[tokio::test]
async fn create_table_validation() {
    let h = harness().await;
    let cases = [
        (
            json!({"TableName": "tb1", "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                   "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}),
            "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [id], AttributeDefinitions: [pk]",
        ),
        (
            json!({"TableName": "tb1", "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "x", "AttributeType": "S"}],
                   "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}),
            "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ),
        (
            json!({"TableName": "tb1", "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                   "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}),
            "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
        ),
        (
            json!({"TableName": "x", "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                   "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST"}),
            "1 validation error detected: Value 'x' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3",
        ),
        (
            json!({"TableName": "tb1", "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                   "KeySchema": [{"AttributeName": "pk", "KeyType": "RANGE"}], "BillingMode": "PAY_PER_REQUEST"}),
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ),
        (
            json!({"TableName": "tb1", "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "l", "AttributeType": "S"}],
                   "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST",
                   "LocalSecondaryIndexes": [{"IndexName": "lsi", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}], "Projection": {"ProjectionType": "ALL"}}]}),
            "One or more parameter values were invalid: Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
        ),
    ];
    for (body, want) in cases {
        let (code, msg) = h.err("CreateTable", body).await;
        assert_eq!(code, "ValidationException");
        assert_eq!(msg, want);
    }
}

#[tokio::test]
async fn put_get_delete_and_key_errors() {
    let h = harness().await;
    h.table("items", Some("N")).await;
    let item = json!({"pk": s("a"), "sk": n("1"), "name": s("x"), "tags": {"SS": ["b", "a"]},
                      "m": {"M": {"n": {"L": [{"BOOL": true}, {"NULL": true}, {"B": "AAE="}]}}}});
    let put = h
        .ok("PutItem", json!({"TableName": "items", "Item": item}))
        .await;
    assert_eq!(put, json!({}));
    let got = h
        .ok(
            "GetItem",
            json!({"TableName": "items", "Key": {"pk": s("a"), "sk": n("1")}, "ReturnConsumedCapacity": "TOTAL"}),
        )
        .await;
    assert_eq!(got["Item"]["name"], s("x"));
    assert_eq!(got["Item"]["tags"], json!({"SS": ["a", "b"]}));
    assert_eq!(got["ConsumedCapacity"]["CapacityUnits"], 0.5);
    let got = h
        .ok(
            "GetItem",
            json!({"TableName": "items", "Key": {"pk": s("a"), "sk": n("1")}, "ProjectionExpression": "#n, m.n[0]",
                   "ExpressionAttributeNames": {"#n": "name"}, "ConsistentRead": true}),
        )
        .await;
    assert_eq!(
        got["Item"],
        json!({"name": s("x"), "m": {"M": {"n": {"L": [{"BOOL": true}]}}}})
    );

    // ReturnValues ALL_OLD on overwrite and delete.
    let put = h
        .ok(
            "PutItem",
            json!({"TableName": "items", "Item": {"pk": s("a"), "sk": n("1"), "v": n("2")}, "ReturnValues": "ALL_OLD"}),
        )
        .await;
    assert_eq!(put["Attributes"]["name"], s("x"));
    let del = h
        .ok(
            "DeleteItem",
            json!({"TableName": "items", "Key": {"pk": s("a"), "sk": n("1")}, "ReturnValues": "ALL_OLD"}),
        )
        .await;
    assert_eq!(del["Attributes"]["v"], n("2"));
    let got = h
        .ok(
            "GetItem",
            json!({"TableName": "items", "Key": {"pk": s("a"), "sk": n("1")}}),
        )
        .await;
    assert_eq!(got, json!({}));

    let errors = [
        (
            "PutItem",
            json!({"TableName": "items", "Item": {"sk": n("1")}}),
            "One or more parameter values were invalid: Missing the key pk in the item",
        ),
        (
            "PutItem",
            json!({"TableName": "items", "Item": {"pk": n("1"), "sk": n("1")}}),
            "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
        ),
        (
            "PutItem",
            json!({"TableName": "items", "Item": {"pk": s(""), "sk": n("1")}}),
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk",
        ),
        (
            "GetItem",
            json!({"TableName": "items", "Key": {"pk": s("a")}}),
            "The provided key element does not match the schema",
        ),
        (
            "GetItem",
            json!({"TableName": "items", "Key": {"pk": s("a"), "sk": s("1")}}),
            "The provided key element does not match the schema",
        ),
        (
            "PutItem",
            json!({"TableName": "items", "Item": {"pk": s("a"), "sk": n("1")}, "ReturnValues": "ALL_NEW"}),
            "Return values set to invalid value",
        ),
        (
            "GetItem",
            json!({"TableName": "items", "Key": {"pk": {"S": "a", "N": "1"}, "sk": n("1")}}),
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
        ),
        (
            "GetItem",
            json!({"TableName": "items", "Key": {"pk": {}, "sk": n("1")}}),
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
        ),
        (
            "GetItem",
            json!({"TableName": "items", "Key": {"pk": {"S": null, "Q": "x"}, "sk": n("1")}}),
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
        ),
        (
            "GetItem",
            json!({"TableName": "items", "Key": {"pk": s("a"), "sk": n("1e999")}}),
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
        ),
    ];
    for (op, body, want) in errors {
        let (code, msg) = h.err(op, body).await;
        assert_eq!(code, "ValidationException", "{op}");
        assert_eq!(msg, want);
    }

    let big = "x".repeat(400 * 1024);
    let (code, msg) = h
        .err(
            "PutItem",
            json!({"TableName": "items", "Item": {"pk": s("a"), "sk": n("1"), "big": s(&big)}}),
        )
        .await;
    assert_eq!(code, "ValidationException");
    assert_eq!(msg, "Item size has exceeded the maximum allowed size");
}

#[tokio::test]
async fn conditional_writes() {
    let h = harness().await;
    h.table("cnd", None).await;
    let put = json!({"TableName": "cnd", "Item": {"pk": s("a"), "v": n("1")},
                     "ConditionExpression": "attribute_not_exists(pk)"});
    h.ok("PutItem", put.clone()).await;
    let (code, msg) = h.err("PutItem", put).await;
    assert_eq!(code, "ConditionalCheckFailedException");
    assert_eq!(msg, "The conditional request failed");

    let r = h
        .call(
            "UpdateItem",
            json!({"TableName": "cnd", "Key": {"pk": s("a")}, "UpdateExpression": "SET v = :two",
                   "ConditionExpression": "v = :zero",
                   "ExpressionAttributeValues": {":two": n("2"), ":zero": n("0")},
                   "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}),
        )
        .await;
    assert_eq!(r.err().0, "ConditionalCheckFailedException");
    assert_eq!(r.body["Item"], json!({"pk": s("a"), "v": n("1")}));

    // Legacy Expected.
    let (code, _) = h
        .err(
            "DeleteItem",
            json!({"TableName": "cnd", "Key": {"pk": s("a")},
                   "Expected": {"v": {"Value": n("5")}}}),
        )
        .await;
    assert_eq!(code, "ConditionalCheckFailedException");
    h.ok(
        "DeleteItem",
        json!({"TableName": "cnd", "Key": {"pk": s("a")}, "Expected": {"v": {"Value": n("1")}}}),
    )
    .await;

    let (code, msg) = h
        .err(
            "PutItem",
            json!({"TableName": "cnd", "Item": {"pk": s("a")}, "ConditionExpression": "attribute_exists(pk)",
                   "ExpressionAttributeValues": {":unused": n("1")}}),
        )
        .await;
    assert_eq!(code, "ValidationException");
    assert_eq!(
        msg,
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}"
    );
}

#[tokio::test]
async fn update_item_return_values_and_errors() {
    let h = harness().await;
    h.table("upd", None).await;
    let r = h
        .ok(
            "UpdateItem",
            json!({"TableName": "upd", "Key": {"pk": s("a")},
                   "UpdateExpression": "SET c = if_not_exists(c, :zero) + :one, l = list_append(if_not_exists(l, :empty), :l) ADD s :s",
                   "ExpressionAttributeValues": {":zero": n("0"), ":one": n("1"), ":empty": {"L": []}, ":l": {"L": [s("x")]}, ":s": {"SS": ["q"]}},
                   "ReturnValues": "ALL_NEW"}),
        )
        .await;
    assert_eq!(
        r["Attributes"],
        json!({"pk": s("a"), "c": n("1"), "l": {"L": [s("x")]}, "s": {"SS": ["q"]}})
    );
    let r = h
        .ok(
            "UpdateItem",
            json!({"TableName": "upd", "Key": {"pk": s("a")}, "UpdateExpression": "SET c = c + :one REMOVE l",
                   "ExpressionAttributeValues": {":one": n("1")}, "ReturnValues": "UPDATED_OLD"}),
        )
        .await;
    assert_eq!(r["Attributes"], json!({"c": n("1"), "l": {"L": [s("x")]}}));
    let r = h
        .ok(
            "UpdateItem",
            json!({"TableName": "upd", "Key": {"pk": s("a")}, "UpdateExpression": "SET c = c + :one",
                   "ExpressionAttributeValues": {":one": n("1")}, "ReturnValues": "UPDATED_NEW"}),
        )
        .await;
    assert_eq!(r["Attributes"], json!({"c": n("3")}));
    // Legacy AttributeUpdates.
    let r = h
        .ok(
            "UpdateItem",
            json!({"TableName": "upd", "Key": {"pk": s("a")},
                   "AttributeUpdates": {"c": {"Action": "ADD", "Value": n("10")}}, "ReturnValues": "ALL_OLD"}),
        )
        .await;
    assert_eq!(r["Attributes"]["c"], n("3"));

    let (code, msg) = h
        .err(
            "UpdateItem",
            json!({"TableName": "upd", "Key": {"pk": s("a")}, "UpdateExpression": "SET pk = :v",
                   "ExpressionAttributeValues": {":v": s("b")}}),
        )
        .await;
    assert_eq!(code, "ValidationException");
    assert_eq!(
        msg,
        "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key"
    );
    let (code, _) = h
        .err(
            "UpdateItem",
            json!({"TableName": "upd", "Key": {"pk": s("a")}, "UpdateExpression": "SET c = c + :s",
                   "ExpressionAttributeValues": {":s": s("x")}}),
        )
        .await;
    assert_eq!(code, "ValidationException");
}

async fn fill(h: &Harness, table: &str, pk: &str, count: usize) {
    for i in 0..count {
        h.ok(
            "PutItem",
            json!({"TableName": table, "Item": {"pk": s(pk), "sk": n(&i.to_string()), "odd": {"BOOL": i % 2 == 1}, "pad": s(&"p".repeat(10))}}),
        )
        .await;
    }
}

#[tokio::test]
async fn query_ranges_order_limits_and_filters() {
    let h = harness().await;
    h.table("qry", Some("N")).await;
    fill(&h, "qry", "a", 20).await;
    fill(&h, "qry", "b", 3).await;

    let r = h
        .ok(
            "Query",
            json!({"TableName": "qry", "KeyConditionExpression": "pk = :p AND sk BETWEEN :lo AND :hi",
                   "ExpressionAttributeValues": {":p": s("a"), ":lo": n("5"), ":hi": n("14")}}),
        )
        .await;
    assert_eq!(r["Count"], 10);
    assert_eq!(r["Items"][0]["sk"], n("5"));
    assert_eq!(r["Items"][9]["sk"], n("14"));

    let r = h
        .ok(
            "Query",
            json!({"TableName": "qry", "KeyConditionExpression": "pk = :p", "ScanIndexForward": false, "Limit": 3,
                   "ExpressionAttributeValues": {":p": s("a")}}),
        )
        .await;
    let sks: Vec<&Value> = r["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["sk"])
        .collect();
    assert_eq!(sks, vec![&n("19"), &n("18"), &n("17")]);
    assert_eq!(r["LastEvaluatedKey"], json!({"pk": s("a"), "sk": n("17")}));
    let r = h
        .ok(
            "Query",
            json!({"TableName": "qry", "KeyConditionExpression": "pk = :p", "ScanIndexForward": false, "Limit": 3,
                   "ExclusiveStartKey": {"pk": s("a"), "sk": n("17")},
                   "ExpressionAttributeValues": {":p": s("a")}}),
        )
        .await;
    assert_eq!(r["Items"][0]["sk"], n("16"));

    // Filter after limit: 6 read, only odd kept.
    let r = h
        .ok(
            "Query",
            json!({"TableName": "qry", "KeyConditionExpression": "pk = :p", "Limit": 6,
                   "FilterExpression": "odd = :t", "ProjectionExpression": "sk",
                   "ExpressionAttributeValues": {":p": s("a"), ":t": {"BOOL": true}}}),
        )
        .await;
    assert_eq!(r["Count"], 3);
    assert_eq!(r["ScannedCount"], 6);
    assert_eq!(r["Items"][0], json!({"sk": n("1")}));

    let r = h
        .ok(
            "Query",
            json!({"TableName": "qry", "KeyConditionExpression": "pk = :p AND sk < :x", "Select": "COUNT",
                   "ExpressionAttributeValues": {":p": s("a"), ":x": n("4")}}),
        )
        .await;
    assert_eq!(r["Count"], 4);
    assert!(r.get("Items").is_none());

    // Legacy KeyConditions.
    let r = h
        .ok(
            "Query",
            json!({"TableName": "qry", "KeyConditions": {
                "pk": {"AttributeValueList": [s("b")], "ComparisonOperator": "EQ"},
                "sk": {"AttributeValueList": [n("1")], "ComparisonOperator": "GE"}}}),
        )
        .await;
    assert_eq!(r["Count"], 2);

    let (code, msg) = h
        .err(
            "Query",
            json!({"TableName": "qry", "KeyConditionExpression": "pk = :p",
                   "ExpressionAttributeValues": {":p": n("1")}}),
        )
        .await;
    assert_eq!(code, "ValidationException");
    assert_eq!(
        msg,
        "One or more parameter values were invalid: Condition parameter type does not match schema type"
    );
}

#[tokio::test]
async fn begins_with_and_string_sort_keys() {
    let h = harness().await;
    h.table("bwt", Some("S")).await;
    for sk in ["a", "ab", "abc", "abd", "b", "ab\u{ff}"] {
        h.ok(
            "PutItem",
            json!({"TableName": "bwt", "Item": {"pk": s("p"), "sk": s(sk)}}),
        )
        .await;
    }
    let r = h
        .ok(
            "Query",
            json!({"TableName": "bwt", "KeyConditionExpression": "pk = :p AND begins_with(sk, :pre)",
                   "ScanIndexForward": false,
                   "ExpressionAttributeValues": {":p": s("p"), ":pre": s("ab")}}),
        )
        .await;
    let sks: Vec<&str> = r["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sk"]["S"].as_str().unwrap())
        .collect();
    assert_eq!(sks, vec!["ab\u{ff}", "abd", "abc", "ab"]);
}

#[tokio::test]
async fn page_limit_is_one_megabyte() {
    let h = harness().await;
    h.table("big", Some("N")).await;
    let pad = "z".repeat(100 * 1024);
    for i in 0..15 {
        h.ok(
            "PutItem",
            json!({"TableName": "big", "Item": {"pk": s("a"), "sk": n(&i.to_string()), "pad": s(&pad)}}),
        )
        .await;
    }
    let r = h
        .ok(
            "Query",
            json!({"TableName": "big", "KeyConditionExpression": "pk = :p",
                   "ExpressionAttributeValues": {":p": s("a")}}),
        )
        .await;
    let count = r["Count"].as_u64().unwrap();
    assert!(count > 5 && count < 15, "count {count}");
    assert!(r.get("LastEvaluatedKey").is_some());
    let r2 = h
        .ok(
            "Scan",
            json!({"TableName": "big", "ExclusiveStartKey": r["LastEvaluatedKey"].clone()}),
        )
        .await;
    assert_eq!(r2["Count"].as_u64().unwrap() + count, 15);
}

#[tokio::test]
async fn scan_parallel_segments_cover_the_table_once() {
    let h = harness().await;
    h.table("scn", None).await;
    for i in 0..50 {
        h.ok("PutItem", json!({"TableName": "scn", "Item": {"pk": s(&format!("k{i}")), "n": n(&i.to_string())}}))
            .await;
    }
    let mut seen = std::collections::BTreeSet::new();
    for seg in 0..4 {
        let mut start: Option<Value> = None;
        loop {
            let mut body =
                json!({"TableName": "scn", "Segment": seg, "TotalSegments": 4, "Limit": 7});
            if let Some(k) = start.take() {
                body["ExclusiveStartKey"] = k;
            }
            let r = h.ok("Scan", body).await;
            for item in r["Items"].as_array().unwrap() {
                assert!(seen.insert(item["pk"]["S"].as_str().unwrap().to_string()));
            }
            match r.get("LastEvaluatedKey") {
                Some(k) => start = Some(k.clone()),
                None => break,
            }
        }
    }
    assert_eq!(seen.len(), 50);
    let r = h
        .ok(
            "Scan",
            json!({"TableName": "scn", "FilterExpression": "n >= :x", "ExpressionAttributeValues": {":x": n("45")}}),
        )
        .await;
    assert_eq!(r["Count"], 5);
    assert_eq!(r["ScannedCount"], 50);
    let (code, msg) = h
        .err(
            "Scan",
            json!({"TableName": "scn", "Segment": 4, "TotalSegments": 4}),
        )
        .await;
    assert_eq!(code, "ValidationException");
    assert_eq!(
        msg,
        "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: 4 is not less than TotalSegments: 4"
    );
}

#[tokio::test]
async fn secondary_indexes() {
    let h = harness().await;
    h.ok(
        "CreateTable",
        json!({
            "TableName": "orders",
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "status", "AttributeType": "S"}, {"AttributeName": "total", "AttributeType": "N"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "LocalSecondaryIndexes": [{"IndexName": "by_total", "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "total", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"}}],
            "GlobalSecondaryIndexes": [{"IndexName": "by_status", "KeySchema": [
                {"AttributeName": "status", "KeyType": "HASH"}, {"AttributeName": "total", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]}}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    )
    .await;
    for (sk, status, total) in [
        ("o1", "open", "30"),
        ("o2", "open", "10"),
        ("o3", "done", "20"),
    ] {
        h.ok(
            "PutItem",
            json!({"TableName": "orders", "Item": {"pk": s("u1"), "sk": s(sk), "status": s(status), "total": n(total), "note": s("n"), "secret": s("x")}}),
        )
        .await;
    }
    // Sparse: no status, not in the GSI.
    h.ok(
        "PutItem",
        json!({"TableName": "orders", "Item": {"pk": s("u1"), "sk": s("o4"), "total": n("5")}}),
    )
    .await;
    let r = h
        .ok(
            "Query",
            json!({"TableName": "orders", "IndexName": "by_status", "KeyConditionExpression": "#s = :s",
                   "ExpressionAttributeNames": {"#s": "status"}, "ExpressionAttributeValues": {":s": s("open")}}),
        )
        .await;
    assert_eq!(r["Count"], 2);
    assert_eq!(r["Items"][0]["sk"], s("o2"));
    assert_eq!(r["Items"][0]["note"], s("n"));
    assert!(r["Items"][0].get("secret").is_none());
    // Moving an item between GSI partitions.
    h.ok(
        "UpdateItem",
        json!({"TableName": "orders", "Key": {"pk": s("u1"), "sk": s("o2")}, "UpdateExpression": "SET #s = :d",
               "ExpressionAttributeNames": {"#s": "status"}, "ExpressionAttributeValues": {":d": s("done")}}),
    )
    .await;
    let r = h
        .ok(
            "Query",
            json!({"TableName": "orders", "IndexName": "by_status", "KeyConditionExpression": "#s = :s",
                   "ExpressionAttributeNames": {"#s": "status"}, "ExpressionAttributeValues": {":s": s("done")},
                   "Limit": 1}),
        )
        .await;
    assert_eq!(r["Items"][0]["sk"], s("o2"));
    assert_eq!(
        r["LastEvaluatedKey"],
        json!({"pk": s("u1"), "sk": s("o2"), "status": s("done"), "total": n("10")})
    );
    let r2 = h
        .ok(
            "Query",
            json!({"TableName": "orders", "IndexName": "by_status", "KeyConditionExpression": "#s = :s",
                   "ExpressionAttributeNames": {"#s": "status"}, "ExpressionAttributeValues": {":s": s("done")},
                   "ExclusiveStartKey": r["LastEvaluatedKey"].clone()}),
        )
        .await;
    assert_eq!(r2["Count"], 1);
    assert_eq!(r2["Items"][0]["sk"], s("o3"));

    // LSI, ordered by total, with all attributes fetched from the table.
    let r = h
        .ok(
            "Query",
            json!({"TableName": "orders", "IndexName": "by_total", "KeyConditionExpression": "pk = :p AND #t > :t", "ExpressionAttributeNames": {"#t": "total"},
                   "ExpressionAttributeValues": {":p": s("u1"), ":t": n("5")}, "Select": "ALL_ATTRIBUTES"}),
        )
        .await;
    let totals: Vec<&Value> = r["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["total"])
        .collect();
    assert_eq!(totals, vec![&n("10"), &n("20"), &n("30")]);
    assert_eq!(r["Items"][0]["secret"], s("x"));

    let (code, msg) = h
        .err(
            "Query",
            json!({"TableName": "orders", "IndexName": "by_status", "ConsistentRead": true,
                   "KeyConditionExpression": "#s = :s", "ExpressionAttributeNames": {"#s": "status"},
                   "ExpressionAttributeValues": {":s": s("done")}}),
        )
        .await;
    assert_eq!(code, "ValidationException");
    assert_eq!(
        msg,
        "Consistent reads are not supported on global secondary indexes"
    );
    let (code, _) = h
        .err(
            "PutItem",
            json!({"TableName": "orders", "Item": {"pk": s("u1"), "sk": s("o9"), "status": n("1")}}),
        )
        .await;
    assert_eq!(code, "ValidationException");

    // UpdateTable: add a GSI (back-filled), then remove it.
    let r = h
        .ok(
            "UpdateTable",
            json!({"TableName": "orders",
                   "AttributeDefinitions": [{"AttributeName": "sk", "AttributeType": "S"}],
                   "GlobalSecondaryIndexUpdates": [{"Create": {"IndexName": "by_sk", "KeySchema": [{"AttributeName": "sk", "KeyType": "HASH"}],
                                                               "Projection": {"ProjectionType": "ALL"}}}]}),
        )
        .await;
    let gsis = r["TableDescription"]["GlobalSecondaryIndexes"]
        .as_array()
        .unwrap();
    assert_eq!(gsis.len(), 2);
    assert!(gsis.iter().all(|g| g["IndexStatus"] == "ACTIVE"));
    let q = h
        .ok(
            "Query",
            json!({"TableName": "orders", "IndexName": "by_sk", "KeyConditionExpression": "sk = :k",
                   "ExpressionAttributeValues": {":k": s("o4")}}),
        )
        .await;
    assert_eq!(q["Items"][0]["total"], n("5"));
    h.ok(
        "UpdateTable",
        json!({"TableName": "orders", "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "by_sk"}}]}),
    )
    .await;
    let (code, msg) = h
        .err(
            "Query",
            json!({"TableName": "orders", "IndexName": "by_sk", "KeyConditionExpression": "sk = :k",
                   "ExpressionAttributeValues": {":k": s("o4")}}),
        )
        .await;
    assert_eq!(code, "ValidationException");
    assert_eq!(msg, "The table does not have the specified index: by_sk");
}

#[tokio::test]
async fn batches() {
    let h = harness().await;
    h.table("bt1", None).await;
    h.table("bt2", None).await;
    let puts: Vec<Value> = (0..20)
        .map(|i| json!({"PutRequest": {"Item": {"pk": s(&format!("k{i}")), "v": n(&i.to_string())}}}))
        .collect();
    let r = h
        .ok(
            "BatchWriteItem",
            json!({"RequestItems": {"bt1": puts, "bt2": [{"PutRequest": {"Item": {"pk": s("x")}}}]},
                   "ReturnConsumedCapacity": "TOTAL"}),
        )
        .await;
    assert_eq!(r["UnprocessedItems"], json!({}));
    assert_eq!(r["ConsumedCapacity"].as_array().unwrap().len(), 2);
    let r = h
        .ok(
            "BatchGetItem",
            json!({"RequestItems": {
                "bt1": {"Keys": [{"pk": s("k1")}, {"pk": s("k2")}, {"pk": s("missing")}], "ProjectionExpression": "v"},
                "bt2": {"Keys": [{"pk": s("x")}]}}}),
        )
        .await;
    assert_eq!(r["Responses"]["bt1"].as_array().unwrap().len(), 2);
    assert_eq!(r["Responses"]["bt2"][0]["pk"], s("x"));
    assert_eq!(r["UnprocessedKeys"], json!({}));

    let too_many: Vec<Value> = (0..26)
        .map(|i| json!({"DeleteRequest": {"Key": {"pk": s(&format!("k{i}"))}}}))
        .collect();
    let (code, _) = h
        .err("BatchWriteItem", json!({"RequestItems": {"bt1": too_many}}))
        .await;
    assert_eq!(code, "ValidationException");
    let (code, msg) = h
        .err(
            "BatchWriteItem",
            json!({"RequestItems": {"bt1": [{"DeleteRequest": {"Key": {"pk": s("a")}}}, {"PutRequest": {"Item": {"pk": s("a")}}}]}}),
        )
        .await;
    assert_eq!(code, "ValidationException");
    assert_eq!(msg, "Provided list of item keys contains duplicates");
    let keys: Vec<Value> = (0..101)
        .map(|i| json!({"pk": s(&format!("k{i}"))}))
        .collect();
    let (code, msg) = h
        .err(
            "BatchGetItem",
            json!({"RequestItems": {"bt1": {"Keys": keys}}}),
        )
        .await;
    assert_eq!(code, "ValidationException");
    assert_eq!(msg, "Too many items requested for the BatchGetItem call");
}

#[tokio::test]
async fn transactions() {
    let h = harness().await;
    h.table("acct", None).await;
    h.ok(
        "PutItem",
        json!({"TableName": "acct", "Item": {"pk": s("a"), "bal": n("100")}}),
    )
    .await;
    h.ok(
        "PutItem",
        json!({"TableName": "acct", "Item": {"pk": s("b"), "bal": n("0")}}),
    )
    .await;
    let transfer = |amount: &str| {
        json!({"TransactItems": [
            {"Update": {"TableName": "acct", "Key": {"pk": s("a")}, "UpdateExpression": "SET bal = bal - :x",
                        "ConditionExpression": "bal >= :x", "ExpressionAttributeValues": {":x": n(amount)},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            {"Update": {"TableName": "acct", "Key": {"pk": s("b")}, "UpdateExpression": "SET bal = bal + :x",
                        "ExpressionAttributeValues": {":x": n(amount)}}}
        ], "ReturnConsumedCapacity": "TOTAL"})
    };
    let r = h.ok("TransactWriteItems", transfer("60")).await;
    assert_eq!(r["ConsumedCapacity"][0]["CapacityUnits"], 4.0);
    let r = h.call("TransactWriteItems", transfer("60")).await;
    assert_eq!(r.err().0, "TransactionCanceledException");
    assert_eq!(
        r.body["message"],
        "Transaction cancelled, please refer cancellation reasons for specific reasons [ConditionalCheckFailed, None]"
    );
    let reasons = r.body["CancellationReasons"].as_array().unwrap();
    assert_eq!(reasons[0]["Code"], "ConditionalCheckFailed");
    assert_eq!(reasons[0]["Item"]["bal"], n("40"));
    assert_eq!(reasons[1]["Code"], "None");
    // Nothing of the cancelled transaction was applied.
    let r = h
        .ok(
            "TransactGetItems",
            json!({"TransactItems": [
                {"Get": {"TableName": "acct", "Key": {"pk": s("a")}}},
                {"Get": {"TableName": "acct", "Key": {"pk": s("b")}, "ProjectionExpression": "bal"}},
                {"Get": {"TableName": "acct", "Key": {"pk": s("zz")}}}]}),
        )
        .await;
    assert_eq!(r["Responses"][0]["Item"]["bal"], n("40"));
    assert_eq!(r["Responses"][1]["Item"], json!({"bal": n("60")}));
    assert_eq!(r["Responses"][2], json!({}));

    let (code, msg) = h
        .err(
            "TransactWriteItems",
            json!({"TransactItems": [
                {"Delete": {"TableName": "acct", "Key": {"pk": s("a")}}},
                {"ConditionCheck": {"TableName": "acct", "Key": {"pk": s("a")}, "ConditionExpression": "attribute_exists(pk)"}}]}),
        )
        .await;
    assert_eq!(code, "ValidationException");
    assert_eq!(
        msg,
        "Transaction request cannot include multiple operations on one item"
    );
    let (code, _) = h
        .err(
            "TransactWriteItems",
            json!({"TransactItems": [{"Put": {"TableName": "nope", "Item": {"pk": s("a")}}}]}),
        )
        .await;
    assert_eq!(code, "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conditional_increments_lose_nothing() {
    let h = Arc::new(harness().await);
    h.table("ctr", None).await;
    h.ok(
        "PutItem",
        json!({"TableName": "ctr", "Item": {"pk": s("c"), "n": n("0")}}),
    )
    .await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < 25 {
                // Optimistic concurrency: read, then write only if unchanged.
                let got = h
                    .ok("GetItem", json!({"TableName": "ctr", "Key": {"pk": s("c")}}))
                    .await;
                let cur: i64 = got["Item"]["n"]["N"].as_str().unwrap().parse().unwrap();
                let r = h
                    .call(
                        "UpdateItem",
                        json!({"TableName": "ctr", "Key": {"pk": s("c")}, "UpdateExpression": "SET n = :new",
                               "ConditionExpression": "n = :old",
                               "ExpressionAttributeValues": {":new": n(&(cur + 1).to_string()), ":old": n(&cur.to_string())}}),
                    )
                    .await;
                if r.status == 200 {
                    done += 1;
                } else {
                    assert_eq!(r.err().0, "ConditionalCheckFailedException");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let got = h
        .ok(
            "GetItem",
            json!({"TableName": "ctr", "Key": {"pk": s("c")}}),
        )
        .await;
    assert_eq!(got["Item"]["n"], n("200"));
    assert!(h.store.stats().commits < h.store.stats().ops);
}

#[tokio::test]
async fn ttl_and_tags() {
    let h = harness().await;
    h.table("ttl", None).await;
    let d = h
        .ok("DescribeTimeToLive", json!({"TableName": "ttl"}))
        .await;
    assert_eq!(d["TimeToLiveDescription"]["TimeToLiveStatus"], "DISABLED");
    let past = "1000";
    let future = "99999999999";
    h.ok(
        "PutItem",
        json!({"TableName": "ttl", "Item": {"pk": s("old"), "exp": n(past)}}),
    )
    .await;
    h.ok(
        "PutItem",
        json!({"TableName": "ttl", "Item": {"pk": s("new"), "exp": n(future)}}),
    )
    .await;
    h.ok(
        "PutItem",
        json!({"TableName": "ttl", "Item": {"pk": s("none")}}),
    )
    .await;
    let r = h
        .ok(
            "UpdateTimeToLive",
            json!({"TableName": "ttl", "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "exp"}}),
        )
        .await;
    assert_eq!(r["TimeToLiveSpecification"]["AttributeName"], "exp");
    let (code, msg) = h
        .err(
            "UpdateTimeToLive",
            json!({"TableName": "ttl", "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "exp"}}),
        )
        .await;
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("ValidationException", "TimeToLive is already enabled")
    );
    // Expired but not yet swept: still returned, as DynamoDB does.
    let got = h
        .ok(
            "GetItem",
            json!({"TableName": "ttl", "Key": {"pk": s("old")}}),
        )
        .await;
    assert!(got.get("Item").is_some());
    assert_eq!(h.state.sweep_expired(100).await.expect("sweep"), 1);
    let scan = h.ok("Scan", json!({"TableName": "ttl"})).await;
    assert_eq!(scan["Count"], 2);
    h.ok(
        "PutItem",
        json!({"TableName": "ttl", "Item": {"pk": s("old2"), "exp": n("5.5")}}),
    )
    .await;
    assert_eq!(h.state.sweep_expired(100).await.expect("sweep"), 1);

    let arn = "arn:aws:dynamodb:us-east-1:000000000000:table/ttl";
    h.ok(
        "TagResource",
        json!({"ResourceArn": arn, "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}),
    )
    .await;
    h.ok(
        "UntagResource",
        json!({"ResourceArn": arn, "TagKeys": ["a"]}),
    )
    .await;
    let tags = h
        .ok("ListTagsOfResource", json!({"ResourceArn": arn}))
        .await;
    assert_eq!(tags["Tags"], json!([{"Key": "b", "Value": "2"}]));
    let (code, _) = h
        .err(
            "ListTagsOfResource",
            json!({"ResourceArn": "arn:aws:dynamodb:us-east-1:000000000000:table/nope"}),
        )
        .await;
    assert_eq!(code, "ResourceNotFoundException");
}

#[tokio::test]
async fn protocol_errors() {
    let h = harness().await;
    let r = h.call("Frobnicate", json!({})).await;
    assert_eq!(r.err().0, "UnknownOperationException");
    let (code, msg) = h.err("DescribeTable", json!({})).await;
    assert_eq!(code, "ValidationException");
    assert_eq!(
        msg,
        "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null"
    );
    h.table("prt", None).await;
    let (code, _) = h
        .err(
            "PutItem",
            json!({"TableName": "prt", "Item": {"pk": {"S": 5}}}),
        )
        .await;
    assert_eq!(code, "SerializationException");
    for (key, want) in [
        (json!({"pk": "a"}), "cannot be converted to Structure"),
        (json!({"pk": 5}), "cannot be converted to Structure"),
        (
            json!({"pk": [s("a")]}),
            "Start of list found where not expected",
        ),
        (json!({"pk": {"S": 5}}), "cannot be converted to String"),
        (
            json!({"pk": {"S": {}}}),
            "Start of structure or map found where not expected",
        ),
    ] {
        let (code, msg) = h
            .err("GetItem", json!({"TableName": "prt", "Key": key}))
            .await;
        assert_eq!(code, "SerializationException", "{key}");
        assert!(msg.ends_with(want), "{key}: {msg}");
    }
    let (code, _) = h
        .err(
            "PutItem",
            json!({"TableName": "prt", "Item": {"pk": s("a"), "n": n("abc")}}),
        )
        .await;
    assert_eq!(code, "ValidationException");
    let r = h
        .ok(
            "PutItem",
            json!({"TableName": "prt", "Item": {"pk": s("a"), "n": n("12345678901234567890123456789012345678")},
                   "ReturnConsumedCapacity": "INDEXES"}),
        )
        .await;
    assert_eq!(r["ConsumedCapacity"]["Table"]["CapacityUnits"], 1.0);
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = SqliteStore::open(dir.path(), StoreOptions::default()).expect("open");
        let tables = SqliteTableStore::open(store.clone()).await.expect("tables");
        let h = Harness {
            app: router(Arc::new(DynamoDb::new(Arc::new(tables), "us-east-1"))),
            state: Arc::new(DynamoDb::new(
                Arc::new(SqliteTableStore::open(store.clone()).await.expect("t")),
                "us-east-1",
            )),
            store: store.clone(),
            _dir: tempfile::tempdir().expect("unused"),
        };
        h.table("keep", None).await;
        h.ok(
            "PutItem",
            json!({"TableName": "keep", "Item": {"pk": s("a")}}),
        )
        .await;
        store.close();
    }
    let store = SqliteStore::open(dir.path(), StoreOptions::default()).expect("reopen");
    let tables = SqliteTableStore::open(store.clone()).await.expect("tables");
    let app = router(Arc::new(DynamoDb::new(Arc::new(tables), "us-east-1")));
    let h = Harness {
        app,
        state: Arc::new(DynamoDb::new(
            Arc::new(SqliteTableStore::open(store.clone()).await.expect("t")),
            "us-east-1",
        )),
        store,
        _dir: tempfile::tempdir().expect("unused"),
    };
    let got = h
        .ok(
            "GetItem",
            json!({"TableName": "keep", "Key": {"pk": s("a")}}),
        )
        .await;
    assert_eq!(got["Item"]["pk"], s("a"));
}

/// In-process cost of the hot paths (router, parsing, store), without HTTP or SigV4:
/// `cargo test --release -p gust-dynamodb --test api -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn hot_path_throughput() {
    let h = Arc::new(harness().await);
    h.table("hot", Some("N")).await;
    for (label, op, clients, total) in [
        ("PutItem", "PutItem", 8, 20_000),
        ("GetItem", "GetItem", 8, 100_000),
        ("Query100", "Query", 8, 5_000),
    ] {
        let t0 = std::time::Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..total / clients {
                    let body = match op {
                        "PutItem" => json!({"TableName": "hot", "Item": {"pk": s(&format!("k{c}")), "sk": n(&(i % 100).to_string()), "pad": s("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")}}),
                        "GetItem" => json!({"TableName": "hot", "Key": {"pk": s(&format!("k{c}")), "sk": n(&(i % 100).to_string())}}),
                        _ => json!({"TableName": "hot", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": s(&format!("k{c}"))}}),
                    };
                    let r = h.call(op, body).await;
                    assert_eq!(r.status, 200);
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let secs = t0.elapsed().as_secs_f64();
        eprintln!("{label}: {:.0}/s", total as f64 / secs);
    }
}
