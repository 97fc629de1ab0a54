//! Table metadata: what `CreateTable` declares, validated with DynamoDB's messages, kept as a
//! versioned persisted record ([`TableMeta`]) and rendered as a `TableDescription`.
//!
//! This module does no I/O; the [`crate::storage::TableStore`] persists and caches metas.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{validation, Result};
use crate::wire::{
    AttributeDefinitionW, CreateTableInput, KeySchemaElementW, ProjectionW, ProvisionedThroughputW,
};

/// Version of the persisted [`TableMeta`] layout.
pub const META_VERSION: u32 = 1;
/// The account id in ARNs (Gust has one account).
pub const ACCOUNT: &str = "000000000000";
pub const MAX_LSIS: usize = 5;
pub const MAX_GSIS: usize = 20;

/// A key attribute's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    S,
    N,
    B,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::S => "S",
            KeyType::N => "N",
            KeyType::B => "B",
        }
    }

    fn parse(s: &str) -> Option<KeyType> {
        match s {
            "S" => Some(KeyType::S),
            "N" => Some(KeyType::N),
            "B" => Some(KeyType::B),
            _ => None,
        }
    }
}

/// One key attribute: name and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttr {
    pub name: String,
    pub ty: KeyType,
}

/// A partition key and an optional sort key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySchema {
    pub pk: KeyAttr,
    pub sk: Option<KeyAttr>,
}

impl KeySchema {
    pub fn names(&self) -> Vec<&str> {
        let mut v = vec![self.pk.name.as_str()];
        if let Some(sk) = &self.sk {
            v.push(sk.name.as_str());
        }
        v
    }

    pub fn has(&self, name: &str) -> bool {
        self.pk.name == name || self.sk.as_ref().is_some_and(|s| s.name == name)
    }

    fn wire(&self) -> Value {
        let mut v = vec![json!({"AttributeName": self.pk.name, "KeyType": "HASH"})];
        if let Some(sk) = &self.sk {
            v.push(json!({"AttributeName": sk.name, "KeyType": "RANGE"}));
        }
        Value::Array(v)
    }
}

/// Which attributes an index copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProjectionKind {
    All,
    KeysOnly,
    Include(Vec<String>),
}

/// A secondary index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexMeta {
    pub name: String,
    /// The key-value space holding its entries.
    pub space: i64,
    pub global: bool,
    pub key: KeySchema,
    pub projection: ProjectionKind,
    pub provisioned: Option<(i64, i64)>,
}

impl IndexMeta {
    /// Whether the index copies attribute `name` (key attributes of the table and the index
    /// always are).
    pub fn projects(&self, table_key: &KeySchema, name: &str) -> bool {
        match &self.projection {
            ProjectionKind::All => true,
            _ if self.key.has(name) || table_key.has(name) => true,
            ProjectionKind::KeysOnly => false,
            ProjectionKind::Include(attrs) => attrs.iter().any(|a| a == name),
        }
    }
}

/// Everything persisted about one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableMeta {
    pub version: u32,
    pub name: String,
    /// The key-value space of its items.
    pub space: i64,
    pub table_id: String,
    /// Seconds since the epoch.
    pub created: f64,
    pub attribute_definitions: Vec<(String, KeyType)>,
    pub key: KeySchema,
    /// `None` = PAY_PER_REQUEST.
    pub provisioned: Option<(i64, i64)>,
    pub indexes: Vec<IndexMeta>,
    /// TTL attribute, when TTL is enabled.
    pub ttl_attribute: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub stream: Option<Value>,
    pub deletion_protection: bool,
    pub table_class: Option<String>,
}

impl TableMeta {
    pub fn arn(&self, region: &str) -> String {
        table_arn(region, &self.name)
    }

    pub fn index(&self, name: &str) -> Option<&IndexMeta> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// The wire `TableDescription`, with counts from the store.
    pub fn describe(&self, region: &str, status: &str, stats: &BTreeMap<i64, (u64, i64)>) -> Value {
        let arn = self.arn(region);
        let count = |space: i64| stats.get(&space).copied().unwrap_or((0, 0));
        let (items, bytes) = count(self.space);
        let mut d = Map::new();
        d.insert(
            "AttributeDefinitions".into(),
            Value::Array(
                self.attribute_definitions
                    .iter()
                    .map(|(n, t)| json!({"AttributeName": n, "AttributeType": t.as_str()}))
                    .collect(),
            ),
        );
        d.insert("TableName".into(), json!(self.name));
        d.insert("KeySchema".into(), self.key.wire());
        d.insert("TableStatus".into(), json!(status));
        d.insert("CreationDateTime".into(), json!(self.created));
        d.insert(
            "ProvisionedThroughput".into(),
            throughput_wire(self.provisioned),
        );
        d.insert("TableSizeBytes".into(), json!(bytes));
        d.insert("ItemCount".into(), json!(items));
        d.insert("TableArn".into(), json!(arn));
        d.insert("TableId".into(), json!(self.table_id));
        if self.provisioned.is_none() {
            d.insert(
                "BillingModeSummary".into(),
                json!({"BillingMode": "PAY_PER_REQUEST", "LastUpdateToPayPerRequestDateTime": self.created}),
            );
        } else {
            d.insert(
                "BillingModeSummary".into(),
                json!({"BillingMode": "PROVISIONED"}),
            );
        }
        let mut lsis = Vec::new();
        let mut gsis = Vec::new();
        for idx in &self.indexes {
            let (n, b) = count(idx.space);
            let mut m = Map::new();
            m.insert("IndexName".into(), json!(idx.name));
            m.insert("KeySchema".into(), idx.key.wire());
            m.insert("Projection".into(), projection_wire(&idx.projection));
            m.insert("IndexSizeBytes".into(), json!(b));
            m.insert("ItemCount".into(), json!(n));
            m.insert(
                "IndexArn".into(),
                json!(format!("{arn}/index/{}", idx.name)),
            );
            if idx.global {
                m.insert("IndexStatus".into(), json!("ACTIVE"));
                m.insert(
                    "ProvisionedThroughput".into(),
                    throughput_wire(idx.provisioned),
                );
                gsis.push(Value::Object(m));
            } else {
                lsis.push(Value::Object(m));
            }
        }
        if !lsis.is_empty() {
            d.insert("LocalSecondaryIndexes".into(), Value::Array(lsis));
        }
        if !gsis.is_empty() {
            d.insert("GlobalSecondaryIndexes".into(), Value::Array(gsis));
        }
        if let Some(stream) = &self.stream {
            if stream.get("StreamEnabled").and_then(Value::as_bool) == Some(true) {
                d.insert("StreamSpecification".into(), stream.clone());
            }
        }
        if let Some(class) = &self.table_class {
            d.insert("TableClassSummary".into(), json!({"TableClass": class}));
        }
        d.insert(
            "DeletionProtectionEnabled".into(),
            json!(self.deletion_protection),
        );
        Value::Object(d)
    }
}

pub fn table_arn(region: &str, name: &str) -> String {
    format!("arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}")
}

fn throughput_wire(p: Option<(i64, i64)>) -> Value {
    let (r, w) = p.unwrap_or((0, 0));
    json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": r, "WriteCapacityUnits": w})
}

fn projection_wire(p: &ProjectionKind) -> Value {
    match p {
        ProjectionKind::All => json!({"ProjectionType": "ALL"}),
        ProjectionKind::KeysOnly => json!({"ProjectionType": "KEYS_ONLY"}),
        ProjectionKind::Include(attrs) => {
            json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": attrs})
        }
    }
}

/// Checks a table or index name as DynamoDB does (`what` is `tableName` or `indexName`).
pub fn validate_name(name: &str, what: &str) -> Result<()> {
    let mut errors = Vec::new();
    if name.len() < 3 {
        errors.push(format!(
            "Value '{name}' at '{what}' failed to satisfy constraint: Member must have length greater than or equal to 3"
        ));
    }
    if name.len() > 255 {
        errors.push(format!(
            "Value '{name}' at '{what}' failed to satisfy constraint: Member must have length less than or equal to 255"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        errors.push(format!(
            "Value '{name}' at '{what}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        ));
    }
    constraint_errors(errors)
}

/// Joins constraint violations into DynamoDB's "N validation error(s) detected: …" message.
pub fn constraint_errors(errors: Vec<String>) -> Result<()> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(validation(format!(
            "1 validation error detected: {}",
            errors[0]
        ))),
        n => Err(validation(format!(
            "{n} validation errors detected: {}",
            errors.join("; ")
        ))),
    }
}

/// Parses and checks a `KeySchema` against the attribute definitions.
fn key_schema(
    elements: &[KeySchemaElementW],
    defs: &BTreeMap<String, KeyType>,
    what: &str,
) -> Result<KeySchema> {
    if elements.is_empty() {
        return Err(validation(format!(
            "1 validation error detected: Value null at '{what}' failed to satisfy constraint: Member must not be null"
        )));
    }
    if elements.len() > 2 {
        return Err(validation(format!(
            "1 validation error detected: Value '{}' at '{what}' failed to satisfy constraint: Member must have length less than or equal to 2",
            key_schema_display(elements)
        )));
    }
    for e in elements {
        if e.key_type != "HASH" && e.key_type != "RANGE" {
            return Err(validation(format!(
                "1 validation error detected: Value '{}' at '{what}.1.member.keyType' failed to satisfy constraint: Member must satisfy enum value set: [HASH, RANGE]",
                e.key_type
            )));
        }
    }
    if elements[0].key_type != "HASH" {
        return Err(validation(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ));
    }
    if elements.len() == 2 {
        if elements[1].key_type != "RANGE" {
            return Err(validation(
                "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
            ));
        }
        if elements[0].attribute_name == elements[1].attribute_name {
            return Err(validation(
                "Both the Hash Key and the Range Key element in the KeySchema have the same name",
            ));
        }
    }
    let attr = |e: &KeySchemaElementW| -> Option<KeyAttr> {
        defs.get(&e.attribute_name).map(|ty| KeyAttr {
            name: e.attribute_name.clone(),
            ty: *ty,
        })
    };
    let undefined: Vec<&str> = elements
        .iter()
        .filter(|e| !defs.contains_key(&e.attribute_name))
        .map(|e| e.attribute_name.as_str())
        .collect();
    if !undefined.is_empty() {
        let defined: Vec<&str> = defs.keys().map(String::as_str).collect();
        return Err(validation(format!(
            "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
            undefined.join(", "),
            defined.join(", ")
        )));
    }
    let pk = attr(&elements[0]).ok_or_else(|| validation("Invalid KeySchema"))?;
    let sk = match elements.get(1) {
        Some(e) => Some(attr(e).ok_or_else(|| validation("Invalid KeySchema"))?),
        None => None,
    };
    Ok(KeySchema { pk, sk })
}

fn key_schema_display(elements: &[KeySchemaElementW]) -> String {
    let parts: Vec<String> = elements
        .iter()
        .map(|e| {
            format!(
                "KeySchemaElement(attributeName={}, keyType={})",
                e.attribute_name, e.key_type
            )
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn projection(p: &ProjectionW, index: &str) -> Result<ProjectionKind> {
    let kind = p.projection_type.as_deref().unwrap_or("ALL");
    let non_key = p.non_key_attributes.clone().unwrap_or_default();
    match kind {
        "ALL" | "KEYS_ONLY" if !non_key.is_empty() => Err(validation(format!(
            "One or more parameter values were invalid: ProjectionType is {kind}, but NonKeyAttributes is specified"
        ))),
        "ALL" => Ok(ProjectionKind::All),
        "KEYS_ONLY" => Ok(ProjectionKind::KeysOnly),
        "INCLUDE" => {
            if non_key.is_empty() {
                return Err(validation(format!(
                    "One or more parameter values were invalid: NonKeyAttributes must not be empty for index: {index}"
                )));
            }
            Ok(ProjectionKind::Include(non_key))
        }
        other => Err(validation(format!(
            "1 validation error detected: Value '{other}' at 'projection.projectionType' failed to satisfy constraint: Member must satisfy enum value set: [ALL, INCLUDE, KEYS_ONLY]"
        ))),
    }
}

fn throughput(
    billing: Option<&str>,
    p: Option<&ProvisionedThroughputW>,
    index: Option<&str>,
) -> Result<Option<(i64, i64)>> {
    let pay_per_request = billing == Some("PAY_PER_REQUEST");
    match (pay_per_request, p) {
        (true, Some(_)) => Err(validation(
            "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
        )),
        (true, None) => Ok(None),
        (false, None) => Err(validation(match index {
            Some(name) => format!(
                "One or more parameter values were invalid: ProvisionedThroughput is not specified for index: {name}"
            ),
            None => "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED".to_string(),
        })),
        (false, Some(t)) => {
            let (r, w) = (t.read_capacity_units, t.write_capacity_units);
            if r < 1 || w < 1 {
                return Err(validation(
                    "One or more parameter values were invalid: Provisioned throughput must be positive",
                ));
            }
            Ok(Some((r, w)))
        }
    }
}

/// Attribute definitions as a map, checked for types and duplicates.
pub fn attribute_definitions(defs: &[AttributeDefinitionW]) -> Result<BTreeMap<String, KeyType>> {
    let mut out = BTreeMap::new();
    for (i, d) in defs.iter().enumerate() {
        let ty = KeyType::parse(&d.attribute_type).ok_or_else(|| {
            validation(format!(
                "1 validation error detected: Value '{}' at 'attributeDefinitions.{}.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]",
                d.attribute_type,
                i + 1
            ))
        })?;
        if out.insert(d.attribute_name.clone(), ty).is_some() {
            return Err(validation(format!(
                "Cannot have two attributes with the same name. Attribute name: {}",
                d.attribute_name
            )));
        }
    }
    Ok(out)
}

/// Checks a secondary index definition against the table; `space` is filled in later.
#[allow(clippy::too_many_arguments)] // reason: one call per index kind, all inputs distinct
pub fn index_meta(
    name: &str,
    key: &[KeySchemaElementW],
    proj: &ProjectionW,
    prov: Option<&ProvisionedThroughputW>,
    global: bool,
    billing: Option<&str>,
    defs: &BTreeMap<String, KeyType>,
    table_key: &KeySchema,
) -> Result<IndexMeta> {
    validate_name(name, "indexName")?;
    let key = key_schema(key, defs, "keySchema")?;
    if !global {
        if table_key.sk.is_none() {
            return Err(validation(
                "One or more parameter values were invalid: Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
            ));
        }
        if key.pk.name != table_key.pk.name {
            return Err(validation(format!(
                "One or more parameter values were invalid: Index KeySchema does not have the same leading hash key as table KeySchema for index: {name}. index hash key: {}, table hash key: {}",
                key.pk.name, table_key.pk.name
            )));
        }
        if key.sk.is_none() {
            return Err(validation(format!(
                "One or more parameter values were invalid: Index KeySchema does not have a range key for index: {name}"
            )));
        }
    }
    let projection = projection(proj, name)?;
    let provisioned = if global {
        throughput(billing, prov, Some(name))?
    } else {
        None
    };
    Ok(IndexMeta {
        name: name.to_string(),
        space: 0,
        global,
        key,
        projection,
        provisioned,
    })
}

/// Validates a `CreateTable` request into a meta (spaces and ids are filled in by the store).
pub fn table_meta(input: &CreateTableInput, now: f64) -> Result<TableMeta> {
    validate_name(&input.table_name, "tableName")?;
    let billing = input.billing_mode.as_deref();
    if let Some(b) = billing {
        if b != "PROVISIONED" && b != "PAY_PER_REQUEST" {
            return Err(validation(format!(
                "1 validation error detected: Value '{b}' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]"
            )));
        }
    }
    let defs = attribute_definitions(&input.attribute_definitions)?;
    let key = key_schema(&input.key_schema, &defs, "keySchema")?;
    let provisioned = throughput(billing, input.provisioned_throughput.as_ref(), None)?;

    let mut indexes: Vec<IndexMeta> = Vec::new();
    let lsis = input.local_secondary_indexes.as_deref().unwrap_or_default();
    let gsis = input
        .global_secondary_indexes
        .as_deref()
        .unwrap_or_default();
    if input
        .local_secondary_indexes
        .as_ref()
        .is_some_and(Vec::is_empty)
    {
        return Err(validation(
            "One or more parameter values were invalid: List of LocalSecondaryIndexes is empty",
        ));
    }
    if input
        .global_secondary_indexes
        .as_ref()
        .is_some_and(Vec::is_empty)
    {
        return Err(validation(
            "One or more parameter values were invalid: List of GlobalSecondaryIndexes is empty",
        ));
    }
    if lsis.len() > MAX_LSIS {
        return Err(validation(format!(
            "One or more parameter values were invalid: Number of LocalSecondaryIndexes exceeds per-table limit of {MAX_LSIS}"
        )));
    }
    if gsis.len() > MAX_GSIS {
        return Err(validation(format!(
            "One or more parameter values were invalid: GlobalSecondaryIndex count exceeds the per-table limit of {MAX_GSIS}"
        )));
    }
    for l in lsis {
        indexes.push(index_meta(
            &l.index_name,
            &l.key_schema,
            &l.projection,
            None,
            false,
            billing,
            &defs,
            &key,
        )?);
    }
    for g in gsis {
        indexes.push(index_meta(
            &g.index_name,
            &g.key_schema,
            &g.projection,
            g.provisioned_throughput.as_ref(),
            true,
            billing,
            &defs,
            &key,
        )?);
    }
    let mut seen = std::collections::HashSet::new();
    for idx in &indexes {
        if !seen.insert(idx.name.as_str()) {
            return Err(validation(format!(
                "One or more parameter values were invalid: Duplicate index name: {}",
                idx.name
            )));
        }
    }
    // Every defined attribute must be used by some key.
    let used: std::collections::HashSet<&str> = key
        .names()
        .into_iter()
        .chain(indexes.iter().flat_map(|i| i.key.names()))
        .collect();
    if defs.len() != used.len() {
        let msg = if indexes.is_empty() {
            "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions".to_string()
        } else {
            "One or more parameter values were invalid: Some AttributeDefinitions are not used. AttributeDefinitions: [".to_string()
                + &defs.keys().cloned().collect::<Vec<_>>().join(", ")
                + "], keys used: ["
                + &used.iter().copied().collect::<Vec<_>>().join(", ")
                + "]"
        };
        return Err(validation(msg));
    }
    let mut tags = BTreeMap::new();
    for t in input.tags.as_deref().unwrap_or_default() {
        tags.insert(t.key.clone(), t.value.clone());
    }
    Ok(TableMeta {
        version: META_VERSION,
        name: input.table_name.clone(),
        space: 0,
        table_id: String::new(),
        created: now,
        attribute_definitions: input
            .attribute_definitions
            .iter()
            .filter_map(|d| {
                defs.get(&d.attribute_name)
                    .map(|t| (d.attribute_name.clone(), *t))
            })
            .collect(),
        key,
        provisioned,
        indexes,
        ttl_attribute: None,
        tags,
        stream: input.stream_specification.clone(),
        deletion_protection: input.deletion_protection_enabled.unwrap_or(false),
        table_class: input.table_class.clone(),
    })
}
