//! Primary and index keys: extraction from items and `Key` parameters with DynamoDB's
//! validation messages, and their byte encodings in the key-value spaces.
//!
//! A space key is `(p, s, u)` (see `gust_store::kv`). For a table, `p` is the partition key,
//! `s` the sort key (empty without one) and `u` empty. For an index, `p`/`s` are the index's
//! keys and `u` the table's primary key, which makes entries unique. Each of `p` and `s` holds
//! exactly one value of the schema's declared type, so strings and binaries are stored as
//! their raw bytes (DynamoDB orders both bytewise, and `begins_with` becomes a byte-prefix
//! range) and numbers through [`crate::types::encode_key`], which orders them numerically.

use crate::catalog::{IndexMeta, KeyAttr, KeySchema, KeyType, TableMeta};
use crate::error::{validation, DdbError, Result};
use crate::types::{encode_key, AttributeValue, Item};

/// A table's primary key in its space encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrimaryKey {
    pub p: Vec<u8>,
    pub s: Vec<u8>,
}

impl PrimaryKey {
    /// The `u` component of index entries for this item.
    pub fn unique_suffix(&self) -> Vec<u8> {
        let mut u = Vec::with_capacity(self.p.len() + self.s.len() + 4);
        u.extend_from_slice(&(self.p.len() as u32).to_be_bytes());
        u.extend_from_slice(&self.p);
        u.extend_from_slice(&self.s);
        u
    }
}

/// DynamoDB's name of a value's type (`S`, `N`, `BOOL`, …).
pub fn type_name(v: &AttributeValue) -> &'static str {
    v.type_name()
}

fn matches_type(v: &AttributeValue, ty: KeyType) -> bool {
    matches!(
        (v, ty),
        (AttributeValue::S(_), KeyType::S)
            | (AttributeValue::N(_), KeyType::N)
            | (AttributeValue::B(_), KeyType::B)
    )
}

fn is_empty_key_value(v: &AttributeValue) -> bool {
    match v {
        AttributeValue::S(s) => s.is_empty(),
        AttributeValue::B(b) => b.is_empty(),
        _ => false,
    }
}

/// The space encoding of one key value (whose type was checked).
pub fn value_bytes(v: &AttributeValue) -> Result<Vec<u8>> {
    match v {
        AttributeValue::S(s) => Ok(s.as_bytes().to_vec()),
        AttributeValue::B(b) => Ok(b.clone()),
        other => encode_key(other).map_err(|e| validation(e.to_string())),
    }
}

/// The primary key of an item to be written, checked as `PutItem` checks it.
pub fn item_key(table: &TableMeta, item: &Item) -> Result<PrimaryKey> {
    let one = |attr: &KeyAttr| -> Result<Vec<u8>> {
        let v = item.get(&attr.name).ok_or_else(|| {
            validation(format!(
                "One or more parameter values were invalid: Missing the key {} in the item",
                attr.name
            ))
        })?;
        if !matches_type(v, attr.ty) {
            return Err(validation(format!(
                "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
                attr.name,
                attr.ty.as_str(),
                type_name(v)
            )));
        }
        if is_empty_key_value(v) {
            return Err(empty_key(&attr.name));
        }
        value_bytes(v)
    };
    let p = one(&table.key.pk)?;
    let s = match &table.key.sk {
        Some(sk) => one(sk)?,
        None => Vec::new(),
    };
    Ok(PrimaryKey { p, s })
}

fn empty_key(name: &str) -> DdbError {
    validation(format!(
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: {name}"
    ))
}

/// The primary key named by a `Key` parameter, which must hold exactly the key attributes.
pub fn key_param(table: &TableMeta, key: &Item) -> Result<PrimaryKey> {
    let schema_mismatch = || validation("The provided key element does not match the schema");
    let expected = if table.key.sk.is_some() { 2 } else { 1 };
    if key.len() != expected {
        return Err(schema_mismatch());
    }
    let one = |attr: &KeyAttr| -> Result<Vec<u8>> {
        let v = key.get(&attr.name).ok_or_else(schema_mismatch)?;
        if !matches_type(v, attr.ty) {
            return Err(schema_mismatch());
        }
        if is_empty_key_value(v) {
            return Err(empty_key(&attr.name));
        }
        value_bytes(v)
    };
    let p = one(&table.key.pk)?;
    let s = match &table.key.sk {
        Some(sk) => one(sk)?,
        None => Vec::new(),
    };
    Ok(PrimaryKey { p, s })
}

/// Just the key attributes of an item.
pub fn key_of(schema: &KeySchema, item: &Item) -> Item {
    let mut out = Item::new();
    for name in schema.names() {
        if let Some(v) = item.get(name) {
            out.insert(name.to_string(), v.clone());
        }
    }
    out
}

/// The index entry key `(p, s)` of an item, or `None` when the item lacks an index key
/// attribute (indexes are sparse). A present attribute of the wrong type or an empty value
/// is an error, as DynamoDB refuses such writes.
pub fn index_key(index: &IndexMeta, item: &Item) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let one = |attr: &KeyAttr| -> Result<Option<Vec<u8>>> {
        let Some(v) = item.get(&attr.name) else {
            return Ok(None);
        };
        if !matches_type(v, attr.ty) {
            return Err(validation(format!(
                "One or more parameter values were invalid: Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {}",
                attr.name,
                attr.ty.as_str(),
                type_name(v),
                index.name
            )));
        }
        if is_empty_key_value(v) {
            return Err(validation(format!(
                "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty string value. IndexName: {}, IndexKey: {}",
                index.name, attr.name
            )));
        }
        Ok(Some(value_bytes(v)?))
    };
    let Some(p) = one(&index.key.pk)? else {
        return Ok(None);
    };
    let s = match &index.key.sk {
        Some(sk) => match one(sk)? {
            Some(s) => s,
            None => return Ok(None),
        },
        None => Vec::new(),
    };
    Ok(Some((p, s)))
}

/// The attributes of `item` an index stores.
pub fn project_for_index(table: &TableMeta, index: &IndexMeta, item: &Item) -> Item {
    match &index.projection {
        crate::catalog::ProjectionKind::All => item.clone(),
        _ => item
            .iter()
            .filter(|(k, _)| index.projects(&table.key, k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut v = prefix.to_vec();
    while let Some(last) = v.pop() {
        if last < 0xff {
            v.push(last + 1);
            return Some(v);
        }
    }
    None
}

/// A stable hash of a partition key, for parallel scan segments.
pub fn segment_hash(p: &[u8]) -> u64 {
    // FNV-1a: stable across runs and builds, which `DefaultHasher` does not promise.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in p {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_of_prefixes() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[0x61, 0xff]), Some(vec![0x62]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn unique_suffix_separates_partition_and_sort() {
        let a = PrimaryKey {
            p: b"ab".to_vec(),
            s: b"c".to_vec(),
        };
        let b = PrimaryKey {
            p: b"a".to_vec(),
            s: b"bc".to_vec(),
        };
        assert_ne!(a.unique_suffix(), b.unique_suffix());
    }
}
