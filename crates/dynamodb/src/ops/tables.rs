//! Table operations: `CreateTable`, `DeleteTable`, `DescribeTable`, `ListTables`,
//! `UpdateTable`, the TTL settings and tags. Tables are `ACTIVE` as soon as they exist
//! (creation and index back-fill complete before the response).

use serde_json::{json, Value};

use crate::catalog::{self, table_meta, validate_name, KeyType, TableMeta, MAX_GSIS};
use crate::error::{table_not_found_named, validation, DdbError, Result};
use crate::ops::{json_body, Body};
use crate::wire::{
    CreateTableInput, ListTablesInput, ListTagsInput, TableNameInput, TagResourceInput,
    UntagResourceInput, UpdateTableInput, UpdateTtlInput,
};
use crate::DynamoDb;

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or(0.0)
}

impl DynamoDb {
    fn named_table(&self, name: &str) -> Result<std::sync::Arc<TableMeta>> {
        self.store
            .table(name)
            .ok_or_else(|| table_not_found_named(name))
    }

    async fn description(&self, meta: &TableMeta, status: &str) -> Result<Value> {
        let mut spaces = vec![meta.space];
        spaces.extend(meta.indexes.iter().map(|i| i.space));
        let counts = self.store.counts(spaces).await?;
        Ok(meta.describe(&self.region, status, &counts))
    }

    pub(crate) async fn create_table(&self, input: CreateTableInput) -> Result<Body> {
        let mut meta = table_meta(&input, now_secs())?;
        meta.table_id = uuid::Uuid::new_v4().to_string();
        let _ddl = self.ddl.lock().await;
        let meta = self.store.create_table(meta).await?;
        let desc = self.description(&meta, "ACTIVE").await?;
        Ok(json_body(&json!({ "TableDescription": desc })))
    }

    pub(crate) async fn delete_table(&self, input: TableNameInput) -> Result<Body> {
        let _ddl = self.ddl.lock().await;
        let meta = self.named_table(&input.table_name)?;
        if meta.deletion_protection {
            return Err(validation(format!(
                "Resource cannot be deleted as it is currently protected against manual deletion: {}",
                meta.arn(&self.region)
            )));
        }
        let desc = self.description(&meta, "DELETING").await?;
        self.store.delete_table(&input.table_name).await?;
        Ok(json_body(&json!({ "TableDescription": desc })))
    }

    pub(crate) async fn describe_table(&self, input: TableNameInput) -> Result<Body> {
        let meta = self.named_table(&input.table_name)?;
        let desc = self.description(&meta, "ACTIVE").await?;
        Ok(json_body(&json!({ "Table": desc })))
    }

    pub(crate) fn list_tables(&self, input: ListTablesInput) -> Result<Body> {
        let limit = match input.limit {
            None => 100,
            Some(n) if (1..=100).contains(&n) => n as usize,
            Some(n) => {
                return Err(validation(format!(
                    "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value {}",
                    if n < 1 { "greater than or equal to 1" } else { "less than or equal to 100" }
                )))
            }
        };
        let names: Vec<String> = self
            .store
            .table_names()
            .into_iter()
            .filter(|n| {
                input
                    .exclusive_start_table_name
                    .as_ref()
                    .is_none_or(|start| n > start)
            })
            .collect();
        let page: Vec<&String> = names.iter().take(limit).collect();
        let mut out = json!({ "TableNames": page });
        if names.len() > limit {
            if let Some(last) = page.last() {
                out["LastEvaluatedTableName"] = json!(last);
            }
        }
        Ok(json_body(&out))
    }

    pub(crate) async fn update_table(&self, input: UpdateTableInput) -> Result<Body> {
        let _ddl = self.ddl.lock().await;
        let current = self.named_table(&input.table_name)?;
        let mut meta: TableMeta = (*current).clone();
        let mut changed = false;

        let mut defs: std::collections::BTreeMap<String, KeyType> =
            meta.attribute_definitions.iter().cloned().collect();
        if let Some(new_defs) = &input.attribute_definitions {
            for (name, ty) in catalog::attribute_definitions(new_defs)? {
                if let Some(old) = defs.get(&name) {
                    if *old != ty && meta.key.has(&name) {
                        return Err(validation(format!(
                            "One or more parameter values were invalid: Cannot change the type of key attribute {name}"
                        )));
                    }
                }
                defs.insert(name, ty);
            }
        }
        if let Some(b) = &input.billing_mode {
            match b.as_str() {
                "PAY_PER_REQUEST" => {
                    if input.provisioned_throughput.is_some() {
                        return Err(validation("One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"));
                    }
                    meta.provisioned = None;
                    for idx in &mut meta.indexes {
                        idx.provisioned = None;
                    }
                    changed = true;
                }
                "PROVISIONED" => {
                    let Some(p) = &input.provisioned_throughput else {
                        return Err(validation("One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"));
                    };
                    meta.provisioned = Some((p.read_capacity_units, p.write_capacity_units));
                    changed = true;
                }
                other => {
                    return Err(validation(format!(
                        "1 validation error detected: Value '{other}' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]"
                    )))
                }
            }
        } else if let Some(p) = &input.provisioned_throughput {
            if meta.provisioned.is_none() {
                return Err(validation("One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"));
            }
            meta.provisioned = Some((p.read_capacity_units, p.write_capacity_units));
            changed = true;
        }
        let billing = if meta.provisioned.is_some() {
            "PROVISIONED"
        } else {
            "PAY_PER_REQUEST"
        };
        for u in input.global_secondary_index_updates.iter().flatten() {
            if let Some(c) = &u.create {
                if meta.index(&c.index_name).is_some() {
                    return Err(validation(format!(
                        "One or more parameter values were invalid: Index with name: {} already exists",
                        c.index_name
                    )));
                }
                if meta.indexes.iter().filter(|i| i.global).count() >= MAX_GSIS {
                    return Err(DdbError::LimitExceeded(format!(
                        "Subscriber limit exceeded: The number of global secondary indexes exceeds the per-table limit of {MAX_GSIS}"
                    )));
                }
                let idx = catalog::index_meta(
                    &c.index_name,
                    &c.key_schema,
                    &c.projection,
                    c.provisioned_throughput.as_ref(),
                    true,
                    Some(billing),
                    &defs,
                    &meta.key,
                )?;
                meta.indexes.push(idx);
                changed = true;
            }
            if let Some(d) = &u.delete {
                let before = meta.indexes.len();
                meta.indexes
                    .retain(|i| !(i.global && i.name == d.index_name));
                if meta.indexes.len() == before {
                    return Err(DdbError::ResourceNotFound(format!(
                        "Requested resource not found: Index: {} not found",
                        d.index_name
                    )));
                }
                changed = true;
            }
            if let Some(up) = &u.update {
                let Some(idx) = meta
                    .indexes
                    .iter_mut()
                    .find(|i| i.global && i.name == up.index_name)
                else {
                    return Err(DdbError::ResourceNotFound(format!(
                        "Requested resource not found: Index: {} not found",
                        up.index_name
                    )));
                };
                if let Some(p) = &up.provisioned_throughput {
                    idx.provisioned = Some((p.read_capacity_units, p.write_capacity_units));
                }
                changed = true;
            }
        }
        if let Some(s) = &input.stream_specification {
            meta.stream = Some(s.clone());
            changed = true;
        }
        if let Some(c) = &input.table_class {
            meta.table_class = Some(c.clone());
            changed = true;
        }
        if let Some(d) = input.deletion_protection_enabled {
            meta.deletion_protection = d;
            changed = true;
        }
        if !changed && input.attribute_definitions.is_none() {
            return Err(validation(
                "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
            ));
        }
        // Keep the definitions the keys use, in their declared order.
        let used: std::collections::HashSet<String> = meta
            .key
            .names()
            .into_iter()
            .chain(meta.indexes.iter().flat_map(|i| i.key.names()))
            .map(str::to_string)
            .collect();
        meta.attribute_definitions = defs.into_iter().filter(|(n, _)| used.contains(n)).collect();
        let meta = self.store.update_table(meta).await?;
        let desc = self.description(&meta, "ACTIVE").await?;
        Ok(json_body(&json!({ "TableDescription": desc })))
    }

    pub(crate) fn describe_ttl(&self, input: TableNameInput) -> Result<Body> {
        let meta = self.named_table(&input.table_name)?;
        let desc = match &meta.ttl_attribute {
            Some(a) => json!({"TimeToLiveStatus": "ENABLED", "AttributeName": a}),
            None => json!({"TimeToLiveStatus": "DISABLED"}),
        };
        Ok(json_body(&json!({ "TimeToLiveDescription": desc })))
    }

    pub(crate) async fn update_ttl(&self, input: UpdateTtlInput) -> Result<Body> {
        let spec = &input.time_to_live_specification;
        if spec.attribute_name.is_empty() || spec.attribute_name.len() > 255 {
            return Err(validation(format!(
                "1 validation error detected: Value '{}' at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must have length {}",
                spec.attribute_name,
                if spec.attribute_name.is_empty() { "greater than or equal to 1" } else { "less than or equal to 255" }
            )));
        }
        let _ddl = self.ddl.lock().await;
        let current = self.named_table(&input.table_name)?;
        let mut meta = (*current).clone();
        match (spec.enabled, &meta.ttl_attribute) {
            (true, Some(_)) => return Err(validation("TimeToLive is already enabled")),
            (false, None) => return Err(validation("TimeToLive is already disabled")),
            (true, None) => meta.ttl_attribute = Some(spec.attribute_name.clone()),
            (false, Some(_)) => meta.ttl_attribute = None,
        }
        self.store.update_table(meta).await?;
        Ok(json_body(&json!({
            "TimeToLiveSpecification": {"Enabled": spec.enabled, "AttributeName": spec.attribute_name}
        })))
    }

    /// The table an ARN names.
    fn arn_table(&self, arn: &str) -> Result<std::sync::Arc<TableMeta>> {
        let name = arn
            .strip_prefix("arn:aws:dynamodb:")
            .and_then(|rest| rest.split_once(":table/"))
            .map(|(_, name)| name)
            .filter(|name| !name.contains('/'))
            .ok_or_else(|| {
                validation(format!(
                    "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
                ))
            })?;
        validate_name(name, "tableName").map_err(|_| {
            validation(format!(
                "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
            ))
        })?;
        self.store.table(name).ok_or_else(|| {
            DdbError::ResourceNotFound(format!(
                "Requested resource not found: ResourcArn: {arn} not found"
            ))
        })
    }

    pub(crate) async fn tag_resource(&self, input: TagResourceInput) -> Result<Body> {
        let _ddl = self.ddl.lock().await;
        let mut meta = (*self.arn_table(&input.resource_arn)?).clone();
        for t in &input.tags {
            if t.key.is_empty() || t.key.len() > 128 || t.value.len() > 256 {
                return Err(validation(
                    "One or more parameter values were invalid: Invalid tag",
                ));
            }
            meta.tags.insert(t.key.clone(), t.value.clone());
        }
        if meta.tags.len() > 50 {
            return Err(DdbError::LimitExceeded(
                "One or more parameter values were invalid: The number of tags exceeds the limit of 50".into(),
            ));
        }
        self.store.update_table(meta).await?;
        Ok(b"{}".to_vec())
    }

    pub(crate) async fn untag_resource(&self, input: UntagResourceInput) -> Result<Body> {
        let _ddl = self.ddl.lock().await;
        let mut meta = (*self.arn_table(&input.resource_arn)?).clone();
        for k in &input.tag_keys {
            meta.tags.remove(k);
        }
        self.store.update_table(meta).await?;
        Ok(b"{}".to_vec())
    }

    pub(crate) fn list_tags(&self, input: ListTagsInput) -> Result<Body> {
        let meta = self.arn_table(&input.resource_arn)?;
        let _ = input.next_token;
        let tags: Vec<Value> = meta
            .tags
            .iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        Ok(json_body(&json!({ "Tags": tags })))
    }
}
