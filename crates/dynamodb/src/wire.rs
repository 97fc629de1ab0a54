//! The JSON request shapes of DynamoDB's operations (botocore's `dynamodb/2012-08-10`), as
//! serde types. Attribute values and items are [`crate::types`]' DynamoDB-JSON types, whose
//! deserialization also validates them. Legacy parameters (`Expected`, `KeyConditions`,
//! `QueryFilter`, `ScanFilter`, `AttributeUpdates`) stay raw JSON: the expression layer turns
//! them into expressions.
//!
//! Responses are built in the handlers (`ops`), mostly as `serde_json::Value`.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use crate::types::{AttributeValue, Item};

pub type Names = HashMap<String, String>;
pub type Values = HashMap<String, AttributeValue>;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeySchemaElementW {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinitionW {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionW {
    pub projection_type: Option<String>,
    pub non_key_attributes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProvisionedThroughputW {
    pub read_capacity_units: i64,
    pub write_capacity_units: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexW {
    pub index_name: String,
    pub key_schema: Vec<KeySchemaElementW>,
    #[serde(default)]
    pub projection: ProjectionW,
    pub provisioned_throughput: Option<ProvisionedThroughputW>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct TagW {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateTableInput {
    pub table_name: String,
    #[serde(default)]
    pub attribute_definitions: Vec<AttributeDefinitionW>,
    #[serde(default)]
    pub key_schema: Vec<KeySchemaElementW>,
    pub local_secondary_indexes: Option<Vec<IndexW>>,
    pub global_secondary_indexes: Option<Vec<IndexW>>,
    pub billing_mode: Option<String>,
    pub provisioned_throughput: Option<ProvisionedThroughputW>,
    pub stream_specification: Option<Value>,
    pub tags: Option<Vec<TagW>>,
    pub table_class: Option<String>,
    pub deletion_protection_enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableNameInput {
    pub table_name: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListTablesInput {
    pub exclusive_start_table_name: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GsiCreateW {
    pub index_name: String,
    pub key_schema: Vec<KeySchemaElementW>,
    #[serde(default)]
    pub projection: ProjectionW,
    pub provisioned_throughput: Option<ProvisionedThroughputW>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GsiNameW {
    pub index_name: String,
    pub provisioned_throughput: Option<ProvisionedThroughputW>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GsiUpdateW {
    pub create: Option<GsiCreateW>,
    pub delete: Option<GsiNameW>,
    pub update: Option<GsiNameW>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateTableInput {
    pub table_name: String,
    pub attribute_definitions: Option<Vec<AttributeDefinitionW>>,
    pub billing_mode: Option<String>,
    pub provisioned_throughput: Option<ProvisionedThroughputW>,
    pub global_secondary_index_updates: Option<Vec<GsiUpdateW>>,
    pub stream_specification: Option<Value>,
    pub table_class: Option<String>,
    pub deletion_protection_enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TtlSpecW {
    pub enabled: bool,
    pub attribute_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateTtlInput {
    pub table_name: String,
    pub time_to_live_specification: TtlSpecW,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceInput {
    pub resource_arn: String,
    pub tags: Vec<TagW>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceInput {
    pub resource_arn: String,
    pub tag_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsInput {
    pub resource_arn: String,
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutItemInput {
    pub table_name: String,
    pub item: Item,
    pub condition_expression: Option<String>,
    pub expected: Option<Value>,
    pub conditional_operator: Option<String>,
    pub return_values: Option<String>,
    pub return_consumed_capacity: Option<String>,
    pub return_item_collection_metrics: Option<String>,
    pub return_values_on_condition_check_failure: Option<String>,
    pub expression_attribute_names: Option<Names>,
    pub expression_attribute_values: Option<Values>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetItemInput {
    pub table_name: String,
    pub key: Item,
    pub attributes_to_get: Option<Vec<String>>,
    pub consistent_read: Option<bool>,
    pub return_consumed_capacity: Option<String>,
    pub projection_expression: Option<String>,
    pub expression_attribute_names: Option<Names>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteItemInput {
    pub table_name: String,
    pub key: Item,
    pub condition_expression: Option<String>,
    pub expected: Option<Value>,
    pub conditional_operator: Option<String>,
    pub return_values: Option<String>,
    pub return_consumed_capacity: Option<String>,
    pub return_item_collection_metrics: Option<String>,
    pub return_values_on_condition_check_failure: Option<String>,
    pub expression_attribute_names: Option<Names>,
    pub expression_attribute_values: Option<Values>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateItemInput {
    pub table_name: String,
    pub key: Item,
    pub update_expression: Option<String>,
    pub attribute_updates: Option<Value>,
    pub condition_expression: Option<String>,
    pub expected: Option<Value>,
    pub conditional_operator: Option<String>,
    pub return_values: Option<String>,
    pub return_consumed_capacity: Option<String>,
    pub return_item_collection_metrics: Option<String>,
    pub return_values_on_condition_check_failure: Option<String>,
    pub expression_attribute_names: Option<Names>,
    pub expression_attribute_values: Option<Values>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryInput {
    pub table_name: String,
    pub index_name: Option<String>,
    pub select: Option<String>,
    pub attributes_to_get: Option<Vec<String>>,
    pub limit: Option<i64>,
    pub consistent_read: Option<bool>,
    pub key_conditions: Option<Value>,
    pub query_filter: Option<Value>,
    pub scan_filter: Option<Value>,
    pub conditional_operator: Option<String>,
    pub scan_index_forward: Option<bool>,
    pub exclusive_start_key: Option<Item>,
    pub return_consumed_capacity: Option<String>,
    pub projection_expression: Option<String>,
    pub filter_expression: Option<String>,
    pub key_condition_expression: Option<String>,
    pub segment: Option<i64>,
    pub total_segments: Option<i64>,
    pub expression_attribute_names: Option<Names>,
    pub expression_attribute_values: Option<Values>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeysAndAttributesW {
    pub keys: Vec<Item>,
    pub attributes_to_get: Option<Vec<String>>,
    pub consistent_read: Option<bool>,
    pub projection_expression: Option<String>,
    pub expression_attribute_names: Option<Names>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchGetInput {
    pub request_items: indexmap_like::OrderedMap<KeysAndAttributesW>,
    pub return_consumed_capacity: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRequestW {
    pub item: Item,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteRequestW {
    pub key: Item,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WriteRequestW {
    pub put_request: Option<PutRequestW>,
    pub delete_request: Option<DeleteRequestW>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchWriteInput {
    pub request_items: indexmap_like::OrderedMap<Vec<WriteRequestW>>,
    pub return_consumed_capacity: Option<String>,
    pub return_item_collection_metrics: Option<String>,
}

/// The common part of the four kinds of `TransactItems` entries.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactOpW {
    pub table_name: String,
    pub key: Option<Item>,
    pub item: Option<Item>,
    pub update_expression: Option<String>,
    pub condition_expression: Option<String>,
    pub return_values_on_condition_check_failure: Option<String>,
    pub expression_attribute_names: Option<Names>,
    pub expression_attribute_values: Option<Values>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactWriteItemW {
    pub condition_check: Option<TransactOpW>,
    pub put: Option<TransactOpW>,
    pub delete: Option<TransactOpW>,
    pub update: Option<TransactOpW>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactWriteInput {
    pub transact_items: Vec<TransactWriteItemW>,
    pub return_consumed_capacity: Option<String>,
    pub return_item_collection_metrics: Option<String>,
    pub client_request_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactGetW {
    pub table_name: String,
    pub key: Item,
    pub projection_expression: Option<String>,
    pub expression_attribute_names: Option<Names>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactGetItemW {
    pub get: TransactGetW,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactGetInput {
    pub transact_items: Vec<TransactGetItemW>,
    pub return_consumed_capacity: Option<String>,
}

/// A JSON object kept in request order (batch responses list tables as requested).
pub mod indexmap_like {
    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

    /// Entries of a JSON object, in order.
    #[derive(Debug)]
    pub struct OrderedMap<V>(pub Vec<(String, V)>);

    impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V2<V>(std::marker::PhantomData<V>);
            impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
                type Value = OrderedMap<V>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) = m.next_entry::<String, V>()? {
                        out.push((k, v));
                    }
                    Ok(OrderedMap(out))
                }
            }
            d.deserialize_map(V2(std::marker::PhantomData))
        }
    }
}
