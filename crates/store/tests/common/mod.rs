//! Fixtures shared by the store's integration tests.

use std::collections::BTreeMap;

use gust_model::{FunctionConfig, FunctionRecord, FUNCTION_SCHEMA_VERSION};

/// A plain Python function record named `name`.
pub fn record(name: &str) -> FunctionRecord {
    FunctionRecord {
        schema_version: FUNCTION_SCHEMA_VERSION,
        config: FunctionConfig {
            name: name.into(),
            runtime: "python3.12".into(),
            handler: "app.handler".into(),
            role: String::new(),
            description: String::new(),
            timeout: 3,
            memory_size: 128,
            ephemeral_storage: 512,
            environment: BTreeMap::new(),
        },
        code_sha256: "c2hh".into(),
        code_id: "00".into(),
        code_size: 1,
        last_modified: "2024-01-02T03:04:05.000+0000".into(),
        revision_id: "r1".into(),
        reserved_concurrency: None,
        provisioned_concurrency: 0,
        tags: BTreeMap::new(),
    }
}
