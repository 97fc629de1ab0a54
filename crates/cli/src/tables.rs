//! `[tables.<name>]` in `gust.toml`: the DynamoDB tables an app needs, created by
//! `gust deploy` before its functions (which may touch them at start-up).
//!
//! ```toml
//! [tables.users]
//! partition_key = "id"          # name[:type], type S (default), N or B
//! sort_key = "created:N"        # optional
//! ttl_attribute = "expires_at"  # optional: items expire at this epoch-seconds attribute
//! tags = { team = "web" }
//! [tables.users.indexes.by-email]        # global secondary indexes
//! partition_key = "email"
//! projection = "ALL"            # ALL (default), KEYS_ONLY, or a list of attribute names
//! ```
//!
//! Tables are on-demand (`PAY_PER_REQUEST`). Deploying is additive and never loses data: a
//! missing table is created, missing indexes are added and TTL is switched on; a table whose
//! key schema differs from the manifest is reported, never dropped or rebuilt. Tables the
//! manifest no longer mentions are left alone.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::Client;

const TARGET: &str = "DynamoDB_20120810";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub partition_key: String,
    pub sort_key: Option<String>,
    pub ttl_attribute: Option<String>,
    #[serde(default)]
    pub indexes: BTreeMap<String, IndexSpec>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSpec {
    pub partition_key: String,
    pub sort_key: Option<String>,
    pub projection: Option<Projection>,
}

/// `"ALL"`, `"KEYS_ONLY"` or a list of attributes to include.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Projection {
    Kind(String),
    Include(Vec<String>),
}

/// A key attribute: its name and DynamoDB scalar type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttr {
    pub name: String,
    pub kind: &'static str,
}

/// Parses `id`, `id:S`, `created:N` or `blob:B`.
pub fn key_attr(spec: &str) -> Result<KeyAttr, String> {
    let (name, kind) = match spec.rsplit_once(':') {
        Some((n, k)) => (n, k),
        None => (spec, "S"),
    };
    let kind = match kind {
        "S" => "S",
        "N" => "N",
        "B" => "B",
        other => {
            return Err(format!(
                "key \"{spec}\": type \"{other}\" is not S, N or B (write name:S, name:N or name:B)"
            ))
        }
    };
    if name.is_empty() || name.len() > 255 {
        return Err(format!(
            "key \"{spec}\": the attribute name must be 1 to 255 characters"
        ));
    }
    Ok(KeyAttr {
        name: name.to_string(),
        kind,
    })
}

/// DynamoDB's rules for table and index names.
fn valid_name(name: &str, min: usize) -> bool {
    (min..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl TableSpec {
    /// Checks names, key specs, projections and that each attribute has one type.
    pub fn validate(&self, table: &str) -> Result<(), String> {
        if !valid_name(table, 3) {
            return Err(format!(
                "table {table}: names are 3 to 255 letters, digits, _ - or ."
            ));
        }
        let mut types: BTreeMap<String, &'static str> = BTreeMap::new();
        let mut note = |k: &KeyAttr| -> Result<(), String> {
            match types.insert(k.name.clone(), k.kind) {
                Some(prev) if prev != k.kind => Err(format!(
                    "table {table}: attribute {} is used as both {prev} and {}",
                    k.name, k.kind
                )),
                _ => Ok(()),
            }
        };
        note(&key_attr(&self.partition_key).map_err(|e| format!("table {table}: {e}"))?)?;
        if let Some(sk) = &self.sort_key {
            note(&key_attr(sk).map_err(|e| format!("table {table}: {e}"))?)?;
        }
        if self.indexes.len() > 20 {
            return Err(format!(
                "table {table}: at most 20 global secondary indexes"
            ));
        }
        for (iname, index) in &self.indexes {
            if !valid_name(iname, 3) {
                return Err(format!(
                    "table {table}: index {iname}: names are 3 to 255 letters, digits, _ - or ."
                ));
            }
            let at = |e: String| format!("table {table}: index {iname}: {e}");
            note(&key_attr(&index.partition_key).map_err(at)?)?;
            if let Some(sk) = &index.sort_key {
                note(&key_attr(sk).map_err(at)?)?;
            }
            if let Some(Projection::Kind(k)) = &index.projection {
                if !matches!(k.as_str(), "ALL" | "KEYS_ONLY") {
                    return Err(at(format!(
                        "projection must be \"ALL\", \"KEYS_ONLY\" or a list of attribute names, not \"{k}\""
                    )));
                }
            }
        }
        if self.ttl_attribute.as_deref().is_some_and(str::is_empty) {
            return Err(format!("table {table}: ttl_attribute is empty"));
        }
        Ok(())
    }

    fn key_schema(pk: &str, sk: Option<&str>) -> Value {
        let mut keys = vec![
            json!({"AttributeName": key_attr(pk).map(|k| k.name).unwrap_or_default(), "KeyType": "HASH"}),
        ];
        if let Some(sk) = sk {
            keys.push(json!({"AttributeName": key_attr(sk).map(|k| k.name).unwrap_or_default(), "KeyType": "RANGE"}));
        }
        Value::Array(keys)
    }

    fn index_json(name: &str, index: &IndexSpec) -> Value {
        let projection = match &index.projection {
            None => json!({"ProjectionType": "ALL"}),
            Some(Projection::Kind(k)) => json!({ "ProjectionType": k }),
            Some(Projection::Include(attrs)) => {
                json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": attrs})
            }
        };
        json!({
            "IndexName": name,
            "KeySchema": Self::key_schema(&index.partition_key, index.sort_key.as_deref()),
            "Projection": projection,
        })
    }

    /// Attribute definitions for the keys named by the table and the given indexes.
    fn attribute_definitions<'a>(&self, indexes: impl Iterator<Item = &'a IndexSpec>) -> Value {
        let mut defs: BTreeMap<String, &'static str> = BTreeMap::new();
        let mut add = |spec: &str| {
            if let Ok(k) = key_attr(spec) {
                defs.insert(k.name, k.kind);
            }
        };
        add(&self.partition_key);
        if let Some(sk) = &self.sort_key {
            add(sk);
        }
        for i in indexes {
            add(&i.partition_key);
            if let Some(sk) = &i.sort_key {
                add(sk);
            }
        }
        Value::Array(
            defs.into_iter()
                .map(|(n, t)| json!({"AttributeName": n, "AttributeType": t}))
                .collect(),
        )
    }

    /// The `CreateTable` request for this table.
    pub fn create_request(&self, name: &str) -> Value {
        let mut req = json!({
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": self.attribute_definitions(self.indexes.values()),
            "KeySchema": Self::key_schema(&self.partition_key, self.sort_key.as_deref()),
        });
        if !self.indexes.is_empty() {
            req["GlobalSecondaryIndexes"] = Value::Array(
                self.indexes
                    .iter()
                    .map(|(n, i)| Self::index_json(n, i))
                    .collect(),
            );
        }
        if !self.tags.is_empty() {
            req["Tags"] = Value::Array(
                self.tags
                    .iter()
                    .map(|(k, v)| json!({"Key": k, "Value": v}))
                    .collect(),
            );
        }
        req
    }
}

/// What deploying one table did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Unchanged,
    Updated(Vec<String>),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Created => f.write_str("created"),
            Outcome::Unchanged => f.write_str("unchanged"),
            Outcome::Updated(what) => write!(f, "updated ({})", what.join(", ")),
        }
    }
}

/// Creates the table, or adds what the existing one lacks (indexes, TTL).
pub async fn deploy(client: &Client, name: &str, spec: &TableSpec) -> Result<Outcome> {
    let described = client
        .call_json10(
            "dynamodb",
            &format!("{TARGET}.DescribeTable"),
            &json!({ "TableName": name }),
        )
        .await?;
    let mut changes = Vec::new();
    let outcome = if described.error_code().as_deref() == Some("ResourceNotFoundException") {
        client
            .call_json10(
                "dynamodb",
                &format!("{TARGET}.CreateTable"),
                &spec.create_request(name),
            )
            .await?
            .error_for_status()?;
        Outcome::Created
    } else {
        let table = described.error_for_status()?.json()?["Table"].clone();
        let want = TableSpec::key_schema(&spec.partition_key, spec.sort_key.as_deref());
        if table["KeySchema"] != want {
            bail!(
                "table {name} exists with key schema {} but the manifest asks for {}; gust deploy never changes a table's keys (delete the table to recreate it)",
                table["KeySchema"],
                want
            );
        }
        let existing: Vec<&str> = table["GlobalSecondaryIndexes"]
            .as_array()
            .map(|a| a.iter().filter_map(|g| g["IndexName"].as_str()).collect())
            .unwrap_or_default();
        for (iname, index) in &spec.indexes {
            if existing.contains(&iname.as_str()) {
                continue;
            }
            client
                .call_json10(
                    "dynamodb",
                    &format!("{TARGET}.UpdateTable"),
                    &json!({
                        "TableName": name,
                        "AttributeDefinitions": spec.attribute_definitions(std::iter::once(index)),
                        "GlobalSecondaryIndexUpdates": [{"Create": TableSpec::index_json(iname, index)}],
                    }),
                )
                .await?
                .error_for_status()?;
            changes.push(format!("added index {iname}"));
        }
        Outcome::Unchanged
    };
    if let Some(attr) = &spec.ttl_attribute {
        let ttl = client
            .call_json10(
                "dynamodb",
                &format!("{TARGET}.DescribeTimeToLive"),
                &json!({ "TableName": name }),
            )
            .await?
            .error_for_status()?
            .json()?;
        let d = &ttl["TimeToLiveDescription"];
        let on = matches!(d["TimeToLiveStatus"].as_str(), Some("ENABLED" | "ENABLING"));
        if !on || d["AttributeName"].as_str() != Some(attr.as_str()) {
            client
                .call_json10(
                    "dynamodb",
                    &format!("{TARGET}.UpdateTimeToLive"),
                    &json!({
                        "TableName": name,
                        "TimeToLiveSpecification": {"AttributeName": attr, "Enabled": true},
                    }),
                )
                .await?
                .error_for_status()?;
            if outcome != Outcome::Created {
                changes.push(format!("TTL on {attr}"));
            }
        }
    }
    Ok(match outcome {
        Outcome::Unchanged if !changes.is_empty() => Outcome::Updated(changes),
        o => o,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> TableSpec {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn key_attrs() {
        assert_eq!(
            key_attr("id").unwrap(),
            KeyAttr {
                name: "id".into(),
                kind: "S"
            }
        );
        assert_eq!(key_attr("created:N").unwrap().kind, "N");
        assert_eq!(key_attr("a:b:B").unwrap().name, "a:b");
        assert!(key_attr("id:X").unwrap_err().contains("not S, N or B"));
        assert!(key_attr(":S").is_err());
    }

    #[test]
    fn create_request_has_every_key_once() {
        let s = spec(
            r#"
            partition_key = "id"
            sort_key = "created:N"
            tags = { team = "web" }
            [indexes.by-email]
            partition_key = "email"
            sort_key = "created:N"
            projection = ["name"]
            "#,
        );
        s.validate("users").unwrap();
        let req = s.create_request("users");
        assert_eq!(
            req["AttributeDefinitions"],
            json!([
                {"AttributeName": "created", "AttributeType": "N"},
                {"AttributeName": "email", "AttributeType": "S"},
                {"AttributeName": "id", "AttributeType": "S"},
            ])
        );
        assert_eq!(
            req["KeySchema"],
            json!([{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "created", "KeyType": "RANGE"}])
        );
        assert_eq!(
            req["GlobalSecondaryIndexes"][0]["Projection"],
            json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": ["name"]})
        );
        assert_eq!(req["BillingMode"], "PAY_PER_REQUEST");
        assert_eq!(req["Tags"], json!([{"Key": "team", "Value": "web"}]));
    }

    #[test]
    fn validation_messages() {
        let conflict = spec(
            r#"
            partition_key = "id"
            [indexes.by-id-number]
            partition_key = "id:N"
            "#,
        );
        assert!(conflict
            .validate("users")
            .unwrap_err()
            .contains("attribute id is used as both S and N"));
        assert!(spec(r#"partition_key = "id""#)
            .validate("ab")
            .unwrap_err()
            .contains("3 to 255"));
        let bad_projection = spec(
            r#"
            partition_key = "id"
            [indexes.by-x]
            partition_key = "x"
            projection = "SOME"
            "#,
        );
        assert!(bad_projection
            .validate("users")
            .unwrap_err()
            .contains("projection must be"));
    }
}
