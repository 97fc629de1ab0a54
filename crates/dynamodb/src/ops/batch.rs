//! `BatchGetItem`, `BatchWriteItem`, `TransactWriteItems` and `TransactGetItems`.
//!
//! Gust processes every request of a batch, so `UnprocessedKeys`/`UnprocessedItems` are
//! always empty. A transaction's ops are planned and written in one store transaction
//! (see [`crate::storage`]); any failed condition cancels all of them.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Map, Value};

use crate::capacity::{read_units, Consumed, Report};
use crate::error::{validation, DdbError, Result};
use crate::keys::{key_param, PrimaryKey};
use crate::ops::items::{check_put_item, parse_update, write_consumed};
use crate::ops::{json_body, old_on_failure, Body, Exprs};
use crate::storage::{WriteAction, WriteMode, WriteOp};
use crate::types::Item;
use crate::wire::{BatchGetInput, BatchWriteInput, TransactGetInput, TransactWriteInput};
use crate::DynamoDb;

const MAX_BATCH_GET: usize = 100;
const MAX_BATCH_WRITE: usize = 25;
const MAX_TRANSACT: usize = 100;

fn consumed_list(per_table: BTreeMap<String, Consumed>, report: Report) -> Option<Value> {
    if report == Report::None {
        return None;
    }
    Some(Value::Array(
        per_table.values().filter_map(|c| c.wire(report)).collect(),
    ))
}

impl DynamoDb {
    pub(crate) async fn batch_get(&self, input: BatchGetInput) -> Result<Body> {
        let report = Report::parse(input.return_consumed_capacity.as_deref())?;
        let total: usize = input
            .request_items
            .0
            .iter()
            .map(|(_, k)| k.keys.len())
            .sum();
        if input.request_items.0.is_empty() {
            return Err(validation("1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1"));
        }
        if total > MAX_BATCH_GET {
            return Err(validation(
                "Too many items requested for the BatchGetItem call",
            ));
        }
        let mut responses = Map::new();
        let mut consumed = BTreeMap::new();
        for (table_name, ka) in &input.request_items.0 {
            let table = self.item_table(table_name)?;
            if ka.keys.is_empty() {
                return Err(validation("1 validation error detected: Value '[]' at 'requestItems.keys' failed to satisfy constraint: Member must have length greater than or equal to 1"));
            }
            let mut exprs = Exprs::new(ka.expression_attribute_names.as_ref(), None);
            let projection = exprs.projection(
                ka.projection_expression.as_ref(),
                ka.attributes_to_get.as_ref(),
            )?;
            exprs.finish()?;
            let mut seen = HashSet::new();
            let mut keys = Vec::with_capacity(ka.keys.len());
            for k in &ka.keys {
                let pk = key_param(&table, k)?;
                if !seen.insert(pk.clone()) {
                    return Err(validation("Provided list of item keys contains duplicates"));
                }
                keys.push(pk);
            }
            let consistent = ka.consistent_read.unwrap_or(false);
            let mut items = Vec::new();
            let c = consumed
                .entry(table_name.clone())
                .or_insert_with(|| Consumed::new(table_name));
            for pk in &keys {
                let stored = self.store.get(&table, pk).await?;
                c.read += read_units(stored.as_ref().map_or(0, |s| s.size) as u64, consistent);
                if let Some(s) = stored {
                    let item: Item = serde_json::from_slice(&s.json)
                        .map_err(|e| DdbError::Internal(format!("stored item: {e}")))?;
                    let item = match &projection {
                        Some(p) => p.apply(&item),
                        None => item,
                    };
                    items.push(serde_json::to_value(&item).unwrap_or(Value::Null));
                }
            }
            responses.insert(table_name.clone(), Value::Array(items));
        }
        let mut out = json!({ "Responses": responses, "UnprocessedKeys": {} });
        if let Some(c) = consumed_list(consumed, report) {
            out["ConsumedCapacity"] = c;
        }
        Ok(json_body(&out))
    }

    pub(crate) async fn batch_write(&self, input: BatchWriteInput) -> Result<Body> {
        let report = Report::parse(input.return_consumed_capacity.as_deref())?;
        let total: usize = input.request_items.0.iter().map(|(_, r)| r.len()).sum();
        if input.request_items.0.is_empty() {
            return Err(validation("1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1"));
        }
        if total > MAX_BATCH_WRITE {
            return Err(validation(format!(
                "1 validation error detected: Value '{{{}}}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]",
                input.request_items.0.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        let mut ops = Vec::with_capacity(total);
        let mut seen: HashSet<(String, PrimaryKey)> = HashSet::new();
        for (table_name, requests) in input.request_items.0 {
            let table = self.item_table(&table_name)?;
            if requests.is_empty() {
                return Err(validation(format!(
                    "1 validation error detected: Value '{{{table_name}=[]}}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]"
                )));
            }
            for r in requests {
                let (key, key_item, action) = match (r.put_request, r.delete_request) {
                    (Some(p), None) => {
                        let key = check_put_item(&table, &p.item)?;
                        (key, Item::new(), WriteAction::Put(p.item))
                    }
                    (None, Some(d)) => {
                        let key = key_param(&table, &d.key)?;
                        (key, d.key, WriteAction::Delete)
                    }
                    _ => {
                        return Err(validation(
                            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                        ))
                    }
                };
                if !seen.insert((table_name.clone(), key.clone())) {
                    return Err(validation("Provided list of item keys contains duplicates"));
                }
                ops.push(WriteOp {
                    table: table.clone(),
                    key,
                    key_item,
                    action,
                    condition: None,
                    want_old: false,
                    want_new: false,
                    old_on_failure: false,
                });
            }
        }
        let tables: Vec<_> = ops.iter().map(|o| o.table.clone()).collect();
        let outcomes = self.store.write(ops, WriteMode::Single).await?;
        let mut consumed: BTreeMap<String, Consumed> = BTreeMap::new();
        for (t, o) in tables.iter().zip(&outcomes) {
            let c = write_consumed(t, o);
            consumed
                .entry(t.name.clone())
                .or_insert_with(|| Consumed::new(&t.name))
                .merge(&c);
        }
        let mut out = json!({ "UnprocessedItems": {} });
        if let Some(c) = consumed_list(consumed, report) {
            out["ConsumedCapacity"] = c;
        }
        Ok(json_body(&out))
    }

    pub(crate) async fn transact_write(&self, input: TransactWriteInput) -> Result<Body> {
        let report = Report::parse(input.return_consumed_capacity.as_deref())?;
        let n = input.transact_items.len();
        if n == 0 {
            return Err(validation("1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length greater than or equal to 1"));
        }
        if n > MAX_TRANSACT {
            return Err(validation(format!(
                "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to {MAX_TRANSACT}"
            )));
        }
        if let Some(token) = &input.client_request_token {
            if token.is_empty() || token.len() > 36 {
                return Err(validation("1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: Member must have length less than or equal to 36"));
            }
        }
        let mut ops = Vec::with_capacity(n);
        let mut seen: HashSet<(String, PrimaryKey)> = HashSet::new();
        for entry in input.transact_items {
            let kinds = [
                entry.condition_check.is_some(),
                entry.put.is_some(),
                entry.delete.is_some(),
                entry.update.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                return Err(validation(
                    "TransactItems can only contain one of Check, Put, Update or Delete",
                ));
            }
            let (kind, w) = match (entry.condition_check, entry.put, entry.delete, entry.update) {
                (Some(w), _, _, _) => ("check", w),
                (_, Some(w), _, _) => ("put", w),
                (_, _, Some(w), _) => ("delete", w),
                (_, _, _, Some(w)) => ("update", w),
                _ => {
                    return Err(validation(
                        "TransactItems can only contain one of Check, Put, Update or Delete",
                    ))
                }
            };
            let table = self.item_table(&w.table_name)?;
            let old_on_fail =
                old_on_failure(w.return_values_on_condition_check_failure.as_deref())?;
            let mut exprs = Exprs::new(
                w.expression_attribute_names.as_ref(),
                w.expression_attribute_values.as_ref(),
            );
            let (key, key_item, action) = match kind {
                "put" => {
                    let item = w.item.ok_or_else(|| {
                        validation("1 validation error detected: Value null at 'transactItems.1.member.put.item' failed to satisfy constraint: Member must not be null")
                    })?;
                    let key = check_put_item(&table, &item)?;
                    (key, Item::new(), WriteAction::Put(item))
                }
                _ => {
                    let k = w.key.ok_or_else(|| {
                        validation("1 validation error detected: Value null at 'transactItems.1.member.key' failed to satisfy constraint: Member must not be null")
                    })?;
                    let key = key_param(&table, &k)?;
                    let action = match kind {
                        "check" => WriteAction::Check,
                        "delete" => WriteAction::Delete,
                        _ => {
                            let Some(e) = w.update_expression.as_ref() else {
                                return Err(validation("1 validation error detected: Value null at 'transactItems.1.member.update.updateExpression' failed to satisfy constraint: Member must not be null"));
                            };
                            WriteAction::Update(parse_update(&table, &mut exprs, Some(e), None)?)
                        }
                    };
                    (key, k, action)
                }
            };
            let condition = exprs.condition(w.condition_expression.as_ref(), None, None)?;
            if kind == "check" && condition.is_none() {
                return Err(validation("1 validation error detected: Value null at 'transactItems.1.member.conditionCheck.conditionExpression' failed to satisfy constraint: Member must not be null"));
            }
            exprs.finish()?;
            if !seen.insert((table.name.clone(), key.clone())) {
                return Err(validation(
                    "Transaction request cannot include multiple operations on one item",
                ));
            }
            ops.push(WriteOp {
                table,
                key,
                key_item,
                action,
                condition,
                want_old: false,
                want_new: false,
                old_on_failure: old_on_fail,
            });
        }
        let tables: Vec<_> = ops.iter().map(|o| o.table.clone()).collect();
        let outcomes = self.store.write(ops, WriteMode::Transaction).await?;
        let mut consumed: BTreeMap<String, Consumed> = BTreeMap::new();
        for (t, o) in tables.iter().zip(&outcomes) {
            let c = write_consumed(t, o).doubled();
            consumed
                .entry(t.name.clone())
                .or_insert_with(|| Consumed::new(&t.name))
                .merge(&c);
        }
        let mut out = json!({});
        if let Some(c) = consumed_list(consumed, report) {
            out["ConsumedCapacity"] = c;
        }
        Ok(json_body(&out))
    }

    pub(crate) async fn transact_get(&self, input: TransactGetInput) -> Result<Body> {
        let report = Report::parse(input.return_consumed_capacity.as_deref())?;
        let n = input.transact_items.len();
        if n == 0 || n > MAX_TRANSACT {
            return Err(validation(format!(
                "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length {}",
                if n == 0 { "greater than or equal to 1".to_string() } else { format!("less than or equal to {MAX_TRANSACT}") }
            )));
        }
        let mut plans = Vec::with_capacity(n);
        let mut seen: HashSet<(String, PrimaryKey)> = HashSet::new();
        for entry in &input.transact_items {
            let g = &entry.get;
            let table = self.item_table(&g.table_name)?;
            let key = key_param(&table, &g.key)?;
            let mut exprs = Exprs::new(g.expression_attribute_names.as_ref(), None);
            let projection = exprs.projection(g.projection_expression.as_ref(), None)?;
            exprs.finish()?;
            if !seen.insert((table.name.clone(), key.clone())) {
                return Err(validation(
                    "Transaction request cannot include multiple operations on one item",
                ));
            }
            plans.push((table, key, projection));
        }
        let mut responses = Vec::with_capacity(n);
        let mut consumed: BTreeMap<String, Consumed> = BTreeMap::new();
        for (table, key, projection) in &plans {
            let stored = self.store.get(table, key).await?;
            consumed
                .entry(table.name.clone())
                .or_insert_with(|| Consumed::new(&table.name))
                .read += 2.0 * read_units(stored.as_ref().map_or(0, |s| s.size) as u64, true);
            match stored {
                Some(s) => {
                    let item: Item = serde_json::from_slice(&s.json)
                        .map_err(|e| DdbError::Internal(format!("stored item: {e}")))?;
                    let item = match projection {
                        Some(p) => p.apply(&item),
                        None => item,
                    };
                    responses.push(json!({ "Item": item }));
                }
                None => responses.push(json!({})),
            }
        }
        let mut out = json!({ "Responses": responses });
        if let Some(c) = consumed_list(consumed, report) {
            out["ConsumedCapacity"] = c;
        }
        Ok(json_body(&out))
    }
}
