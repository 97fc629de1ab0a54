//! `ApiStore` on `SqliteStore`: APIs and function URLs as durable documents, their order, the
//! function URL that dies with its function, and the configuration generation the gateway
//! watches.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::record;
use gust_model::api::API_SCHEMA_VERSION;
use gust_model::{ApiDefinition, CorsConfig, FunctionUrlConfig, PayloadFormat, RouteSpec};
use gust_store::{ApiStore, FunctionStore, PolicyStore, SqliteStore, StoreOptions};

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, StoreOptions::default()).expect("open store")
}

fn api(name: &str, function: &str) -> ApiDefinition {
    ApiDefinition {
        schema_version: API_SCHEMA_VERSION,
        name: name.into(),
        payload_format: PayloadFormat::V1,
        stage: Some("prod".into()),
        domains: vec![format!("{name}.localhost")],
        cors: Some(CorsConfig {
            allow_origins: vec!["*".into()],
            max_age: Some(300),
            ..CorsConfig::default()
        }),
        integration_timeout_ms: 10_000,
        stage_variables: BTreeMap::new(),
        routes: vec![RouteSpec {
            route_key: "GET /users/{id}".into(),
            function: function.into(),
            mock: None,
        }],
        last_modified: "2024-01-02T03:04:05.000+0000".into(),
    }
}

fn url(function: &str, url_id: &str) -> FunctionUrlConfig {
    FunctionUrlConfig {
        schema_version: API_SCHEMA_VERSION,
        function: function.into(),
        url_id: url_id.into(),
        auth_type: "NONE".into(),
        cors: None,
        invoke_mode: "BUFFERED".into(),
        creation_time: "2024-01-02T03:04:05.000000Z".into(),
        last_modified_time: "2024-01-02T03:04:05.000000Z".into(),
    }
}

#[tokio::test]
async fn apis_round_trip_in_name_order_and_survive_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    assert!(store.list_apis().await.expect("list").is_empty());
    assert_eq!(store.get_api("shop").await.expect("get"), None);
    for name in ["shop", "admin", "default"] {
        store.put_api(&api(name, "f")).await.expect("put");
    }
    let names: Vec<String> = store
        .list_apis()
        .await
        .expect("list")
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["admin", "default", "shop"]);

    let mut changed = api("shop", "g");
    changed.payload_format = PayloadFormat::V2;
    store.put_api(&changed).await.expect("replace");
    assert_eq!(
        store.get_api("shop").await.expect("get"),
        Some(changed.clone())
    );

    assert!(store.delete_api("admin").await.expect("delete"));
    assert!(!store.delete_api("admin").await.expect("delete again"));
    store.close();
    drop(store);

    let store = open(tmp.path());
    assert_eq!(store.get_api("shop").await.expect("get"), Some(changed));
    assert_eq!(store.list_apis().await.expect("list").len(), 2);
    assert_eq!(store.get_api("admin").await.expect("get"), None);
}

#[tokio::test]
async fn function_urls_round_trip_and_survive_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    store.put_function(&record("b")).await.expect("fn");
    store.put_function(&record("a")).await.expect("fn");
    store
        .put_function_url(&url("b", "bbbb"))
        .await
        .expect("put");
    store
        .put_function_url(&url("a", "aaaa"))
        .await
        .expect("put");
    let listed: Vec<String> = store
        .list_function_urls()
        .await
        .expect("list")
        .into_iter()
        .map(|u| u.function)
        .collect();
    assert_eq!(listed, ["a", "b"]);

    let mut updated = url("a", "aaaa");
    updated.auth_type = "AWS_IAM".into();
    updated.cors = Some(CorsConfig {
        allow_methods: vec!["GET".into()],
        ..CorsConfig::default()
    });
    store.put_function_url(&updated).await.expect("update");
    store.close();
    drop(store);

    let store = open(tmp.path());
    assert_eq!(
        store.get_function_url("a").await.expect("get"),
        Some(updated)
    );
    assert!(store.delete_function_url("b").await.expect("delete"));
    assert!(!store.delete_function_url("b").await.expect("delete again"));
    assert_eq!(store.get_function_url("b").await.expect("get"), None);
}

#[tokio::test]
async fn a_url_id_belongs_to_one_function() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    store
        .put_function_url(&url("a", "same"))
        .await
        .expect("put");
    assert!(store.put_function_url(&url("b", "same")).await.is_err());
    // The first owner was not evicted by the refused write.
    assert!(store.get_function_url("a").await.expect("get").is_some());
    assert!(store.get_function_url("b").await.expect("get").is_none());
}

#[tokio::test]
async fn deleting_a_function_deletes_its_url_and_policy() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    store.put_function(&record("f")).await.expect("fn");
    store.put_function(&record("g")).await.expect("fn");
    store
        .put_function_url(&url("f", "ffff"))
        .await
        .expect("url");
    store
        .put_function_url(&url("g", "gggg"))
        .await
        .expect("url");
    store.put_function_policy("f", "{}").await.expect("policy");
    store.put_function_policy("g", "{}").await.expect("policy");
    assert!(store.delete_function("f").await.expect("delete"));
    assert_eq!(store.get_function_url("f").await.expect("get"), None);
    assert_eq!(store.get_function_policy("f").await.expect("get"), None);
    assert!(store.get_function_url("g").await.expect("get").is_some());
    assert!(store.get_function_policy("g").await.expect("get").is_some());
}

#[tokio::test]
async fn policies_round_trip_and_survive_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    assert_eq!(store.get_function_policy("f").await.expect("get"), None);
    let before = store.config_generation();
    store
        .put_function_policy("f", r#"{"Statement":[1]}"#)
        .await
        .expect("put");
    store
        .put_function_policy("f", r#"{"Statement":[2]}"#)
        .await
        .expect("replace");
    assert!(store.config_generation() > before);
    store.close();
    drop(store);
    let store = open(tmp.path());
    assert_eq!(
        store
            .get_function_policy("f")
            .await
            .expect("get")
            .as_deref(),
        Some(r#"{"Statement":[2]}"#)
    );
    assert!(store.delete_function_policy("f").await.expect("delete"));
    assert!(!store.delete_function_policy("f").await.expect("again"));
}

#[tokio::test]
async fn every_configuration_write_moves_the_generation() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = open(tmp.path());
    let mut last = store.config_generation();
    assert_ne!(last, 0);
    let mut moved = |what: &str, store: &SqliteStore| {
        let now = store.config_generation();
        assert!(
            now > last,
            "{what} did not move the generation ({last} -> {now})"
        );
        last = now;
    };
    store.put_function(&record("f")).await.expect("put fn");
    moved("put_function", &store);
    assert!(store.create_function(&record("g")).await.expect("create"));
    moved("create_function", &store);
    store.put_api(&api("a", "f")).await.expect("api");
    moved("put_api", &store);
    store.delete_api("a").await.expect("delete api");
    moved("delete_api", &store);
    store
        .put_function_url(&url("f", "ffff"))
        .await
        .expect("url");
    moved("put_function_url", &store);
    store.delete_function_url("f").await.expect("delete url");
    moved("delete_function_url", &store);
    store.delete_function("g").await.expect("delete fn");
    moved("delete_function", &store);

    // Reads leave it alone.
    store.get_api("a").await.expect("get");
    store.list_apis().await.expect("list");
    store.list_function_urls().await.expect("list");
    store.get_function("f").await.expect("get");
    assert_eq!(store.config_generation(), last);
}
