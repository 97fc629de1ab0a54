//! `PutItem`, `GetItem`, `DeleteItem` and `UpdateItem`, and the item checks `BatchWriteItem`
//! and `TransactWriteItems` share with them.

use serde_json::{json, Map, Value};

use crate::capacity::{read_units, write_units, Consumed, Report};
use crate::catalog::TableMeta;
use crate::error::{validation, Result};
use crate::expr::{self, Projection, UpdateExpr};
use crate::keys::{index_key, item_key, key_param, PrimaryKey};
use crate::ops::{json_body, old_on_failure, Body, Exprs, ReturnValues};
use crate::storage::{WriteAction, WriteMode, WriteOp, WriteOutcome, MAX_ITEM_SIZE};
use crate::types::{item_size, Item};
use crate::wire::{DeleteItemInput, GetItemInput, PutItemInput, UpdateItemInput};
use crate::DynamoDb;

/// Checks an item to be stored whole: key, size, index key types.
pub(crate) fn check_put_item(table: &TableMeta, item: &Item) -> Result<PrimaryKey> {
    let key = item_key(table, item)?;
    if item_size(item) > MAX_ITEM_SIZE {
        return Err(validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    for idx in &table.indexes {
        index_key(idx, item)?;
    }
    Ok(key)
}

/// Parses an update from `UpdateExpression` or the legacy `AttributeUpdates`, refusing
/// updates of key attributes.
pub(crate) fn parse_update(
    table: &TableMeta,
    exprs: &mut Exprs<'_>,
    expression: Option<&String>,
    attribute_updates: Option<&Value>,
) -> Result<UpdateExpr> {
    if let (Some(_), Some(_)) = (expression, attribute_updates) {
        return Err(super::mixed("AttributeUpdates", "UpdateExpression"));
    }
    let update = match (expression, attribute_updates) {
        (Some(e), _) => {
            exprs.expressions(&[Some(e)]);
            expr::parse_update(e, &exprs.input, &mut exprs.used)?
        }
        (None, Some(au)) => expr::update_from_attribute_updates(au)?,
        (None, None) => expr::update_from_attribute_updates(&json!({}))?,
    };
    let key_names = table.key.names();
    if let Some(msg) = update.touches(&key_names) {
        return Err(validation(msg));
    }
    Ok(update)
}

/// The capacity one write consumed.
pub(crate) fn write_consumed(table: &TableMeta, outcome: &WriteOutcome) -> Consumed {
    let mut c = Consumed::new(&table.name);
    c.write = write_units(outcome.old_size.max(outcome.new_size) as u64);
    for (name, (global, bytes)) in &outcome.index_writes {
        c.index_write(name, *global, write_units(*bytes as u64));
    }
    c
}

fn attributes_value(item: &Item) -> Value {
    serde_json::to_value(item).unwrap_or(Value::Null)
}

/// Builds the `Attributes` a write returns under `rv`.
fn returned_attributes(
    rv: ReturnValues,
    update: Option<&UpdateExpr>,
    outcome: &WriteOutcome,
) -> Option<Item> {
    let updated_names = || -> Vec<String> {
        update
            .map(|u| {
                u.top_level_names()
                    .into_iter()
                    .map(|n| n.to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let pick = |item: Option<&Item>| -> Option<Item> {
        let item = item?;
        let names = updated_names();
        let out: Item = item
            .iter()
            .filter(|(k, _)| names.iter().any(|n| n == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (!out.is_empty()).then_some(out)
    };
    match rv {
        ReturnValues::None => None,
        ReturnValues::AllOld => outcome.old.clone(),
        ReturnValues::AllNew => outcome.new.clone(),
        ReturnValues::UpdatedOld => pick(outcome.old.as_ref()),
        ReturnValues::UpdatedNew => pick(outcome.new.as_ref()),
    }
}

fn write_response(attrs: Option<Item>, consumed: Option<Value>) -> Body {
    if attrs.is_none() && consumed.is_none() {
        return b"{}".to_vec();
    }
    let mut m = Map::new();
    if let Some(a) = attrs {
        if !a.is_empty() {
            m.insert("Attributes".into(), attributes_value(&a));
        }
    }
    if let Some(c) = consumed {
        m.insert("ConsumedCapacity".into(), c);
    }
    json_body(&Value::Object(m))
}

fn check_collection_metrics(s: Option<&String>) -> Result<()> {
    match s.map(String::as_str) {
        None | Some("NONE") | Some("SIZE") => Ok(()),
        Some(other) => Err(validation(format!(
            "1 validation error detected: Value '{other}' at 'returnItemCollectionMetrics' failed to satisfy constraint: Member must satisfy enum value set: [SIZE, NONE]"
        ))),
    }
}

impl DynamoDb {
    pub(crate) async fn put_item(&self, input: PutItemInput) -> Result<Body> {
        let report = Report::parse(input.return_consumed_capacity.as_deref())?;
        let rv = ReturnValues::parse(input.return_values.as_deref(), false)?;
        let old_on_fail =
            old_on_failure(input.return_values_on_condition_check_failure.as_deref())?;
        check_collection_metrics(input.return_item_collection_metrics.as_ref())?;
        let table = self.item_table(&input.table_name)?;
        let key = check_put_item(&table, &input.item)?;
        let mut exprs = Exprs::new(
            input.expression_attribute_names.as_ref(),
            input.expression_attribute_values.as_ref(),
        );
        let condition = exprs.condition(
            input.condition_expression.as_ref(),
            input.expected.as_ref(),
            input.conditional_operator.as_ref(),
        )?;
        exprs.finish()?;
        let op = WriteOp {
            key_item: Item::new(),
            table: table.clone(),
            key,
            action: WriteAction::Put(input.item),
            condition,
            want_old: rv == ReturnValues::AllOld,
            want_new: false,
            old_on_failure: old_on_fail,
        };
        let outcome = self.write_one(op).await?;
        let consumed = write_consumed(&table, &outcome).wire(report);
        Ok(write_response(
            returned_attributes(rv, None, &outcome),
            consumed,
        ))
    }

    pub(crate) async fn delete_item(&self, input: DeleteItemInput) -> Result<Body> {
        let report = Report::parse(input.return_consumed_capacity.as_deref())?;
        let rv = ReturnValues::parse(input.return_values.as_deref(), false)?;
        let old_on_fail =
            old_on_failure(input.return_values_on_condition_check_failure.as_deref())?;
        check_collection_metrics(input.return_item_collection_metrics.as_ref())?;
        let table = self.item_table(&input.table_name)?;
        let key = key_param(&table, &input.key)?;
        let mut exprs = Exprs::new(
            input.expression_attribute_names.as_ref(),
            input.expression_attribute_values.as_ref(),
        );
        let condition = exprs.condition(
            input.condition_expression.as_ref(),
            input.expected.as_ref(),
            input.conditional_operator.as_ref(),
        )?;
        exprs.finish()?;
        let op = WriteOp {
            key_item: input.key,
            table: table.clone(),
            key,
            action: WriteAction::Delete,
            condition,
            want_old: true,
            want_new: false,
            old_on_failure: old_on_fail,
        };
        let outcome = self.write_one(op).await?;
        let consumed = write_consumed(&table, &outcome).wire(report);
        Ok(write_response(
            returned_attributes(rv, None, &outcome),
            consumed,
        ))
    }

    pub(crate) async fn update_item(&self, input: UpdateItemInput) -> Result<Body> {
        let report = Report::parse(input.return_consumed_capacity.as_deref())?;
        let rv = ReturnValues::parse(input.return_values.as_deref(), true)?;
        let old_on_fail =
            old_on_failure(input.return_values_on_condition_check_failure.as_deref())?;
        check_collection_metrics(input.return_item_collection_metrics.as_ref())?;
        let table = self.item_table(&input.table_name)?;
        let key = key_param(&table, &input.key)?;
        let mut exprs = Exprs::new(
            input.expression_attribute_names.as_ref(),
            input.expression_attribute_values.as_ref(),
        );
        let update = parse_update(
            &table,
            &mut exprs,
            input.update_expression.as_ref(),
            input.attribute_updates.as_ref(),
        )?;
        let condition = exprs.condition(
            input.condition_expression.as_ref(),
            input.expected.as_ref(),
            input.conditional_operator.as_ref(),
        )?;
        exprs.finish()?;
        let names: Vec<String> = update
            .top_level_names()
            .into_iter()
            .map(|n| n.to_string())
            .collect();
        let op = WriteOp {
            key_item: input.key,
            table: table.clone(),
            key,
            action: WriteAction::Update(update),
            condition,
            want_old: matches!(rv, ReturnValues::AllOld | ReturnValues::UpdatedOld),
            want_new: matches!(rv, ReturnValues::AllNew | ReturnValues::UpdatedNew),
            old_on_failure: old_on_fail,
        };
        let outcome = self.write_one(op).await?;
        let consumed = write_consumed(&table, &outcome).wire(report);
        let attrs = match rv {
            ReturnValues::UpdatedOld | ReturnValues::UpdatedNew => {
                let src = if rv == ReturnValues::UpdatedOld {
                    outcome.old.as_ref()
                } else {
                    outcome.new.as_ref()
                };
                src.map(|item| {
                    item.iter()
                        .filter(|(k, _)| names.iter().any(|n| n == *k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<Item>()
                })
            }
            other => returned_attributes(other, None, &outcome),
        };
        Ok(write_response(attrs, consumed))
    }

    pub(crate) async fn write_one(&self, op: WriteOp) -> Result<WriteOutcome> {
        let mut outcomes = self.store.write(vec![op], WriteMode::Single).await?;
        Ok(outcomes.pop().unwrap_or_default())
    }

    pub(crate) async fn get_item(&self, input: GetItemInput) -> Result<Body> {
        let report = Report::parse(input.return_consumed_capacity.as_deref())?;
        let table = self.item_table(&input.table_name)?;
        let key = key_param(&table, &input.key)?;
        let mut exprs = Exprs::new(input.expression_attribute_names.as_ref(), None);
        let projection = exprs.projection(
            input.projection_expression.as_ref(),
            input.attributes_to_get.as_ref(),
        )?;
        exprs.finish()?;
        let consistent = input.consistent_read.unwrap_or(false);
        let stored = self.store.get(&table, &key).await?;
        let consumed = (report != Report::None)
            .then(|| {
                let mut c = Consumed::new(&table.name);
                c.read = read_units(stored.as_ref().map_or(0, |s| s.size) as u64, consistent);
                c.wire(report)
            })
            .flatten();
        get_response(stored.map(|s| s.json), projection.as_ref(), consumed)
    }
}

/// `{"Item": …}` from the stored JSON: spliced as is without a projection (the hot path
/// parses nothing), re-serialized with one.
pub(crate) fn get_response(
    json: Option<Vec<u8>>,
    projection: Option<&Projection>,
    consumed: Option<Value>,
) -> Result<Body> {
    let item_json = match (json, projection) {
        (None, _) => None,
        (Some(j), None) => Some(j),
        (Some(j), Some(p)) => {
            let item: Item = serde_json::from_slice(&j)
                .map_err(|e| crate::error::DdbError::Internal(format!("stored item: {e}")))?;
            let projected = p.apply(&item);
            Some(serde_json::to_vec(&projected).unwrap_or_else(|_| b"{}".to_vec()))
        }
    };
    let mut out = Vec::with_capacity(item_json.as_ref().map_or(2, |j| j.len() + 12));
    out.push(b'{');
    let mut first = true;
    if let Some(j) = item_json {
        out.extend_from_slice(b"\"Item\":");
        out.extend_from_slice(&j);
        first = false;
    }
    if let Some(c) = consumed {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"\"ConsumedCapacity\":");
        out.extend_from_slice(&serde_json::to_vec(&c).unwrap_or_else(|_| b"{}".to_vec()));
    }
    out.push(b'}');
    Ok(out)
}
