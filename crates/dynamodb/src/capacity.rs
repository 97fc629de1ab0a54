//! Consumed capacity as DynamoDB computes it: reads in 4 KB units (half a unit when
//! eventually consistent, twice when transactional), writes in 1 KB units (twice when
//! transactional), at least one unit per item touched, and `ConsumedCapacity` in the shape
//! `ReturnConsumedCapacity` (`TOTAL` / `INDEXES`) asks for.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// What `ReturnConsumedCapacity` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    None,
    Total,
    Indexes,
}

impl Report {
    pub fn parse(s: Option<&str>) -> crate::error::Result<Report> {
        match s {
            None | Some("NONE") => Ok(Report::None),
            Some("TOTAL") => Ok(Report::Total),
            Some("INDEXES") => Ok(Report::Indexes),
            Some(other) => Err(crate::error::validation(format!(
                "1 validation error detected: Value '{other}' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
            ))),
        }
    }
}

const READ_UNIT: u64 = 4096;
const WRITE_UNIT: u64 = 1024;

/// Read units for `bytes` read at once (a whole Query page is one read).
pub fn read_units(bytes: u64, consistent: bool) -> f64 {
    let units = bytes.div_ceil(READ_UNIT).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

/// Write units for writing an item whose larger version (before or after) is `bytes`.
pub fn write_units(bytes: u64) -> f64 {
    bytes.div_ceil(WRITE_UNIT).max(1) as f64
}

/// Capacity consumed on one table by one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Consumed {
    pub table: String,
    pub read: f64,
    pub write: f64,
    /// Per index: (is_global, read, write).
    pub indexes: BTreeMap<String, (bool, f64, f64)>,
}

impl Consumed {
    pub fn new(table: &str) -> Self {
        Consumed {
            table: table.to_string(),
            ..Consumed::default()
        }
    }

    pub fn index_write(&mut self, name: &str, global: bool, units: f64) {
        let e = self
            .indexes
            .entry(name.to_string())
            .or_insert((global, 0.0, 0.0));
        e.2 += units;
    }

    pub fn index_read(&mut self, name: &str, global: bool, units: f64) {
        let e = self
            .indexes
            .entry(name.to_string())
            .or_insert((global, 0.0, 0.0));
        e.1 += units;
    }

    /// Doubles everything (transactions).
    pub fn doubled(mut self) -> Self {
        self.read *= 2.0;
        self.write *= 2.0;
        for v in self.indexes.values_mut() {
            v.1 *= 2.0;
            v.2 *= 2.0;
        }
        self
    }

    pub fn merge(&mut self, other: &Consumed) {
        self.read += other.read;
        self.write += other.write;
        for (k, v) in &other.indexes {
            let e = self.indexes.entry(k.clone()).or_insert((v.0, 0.0, 0.0));
            e.1 += v.1;
            e.2 += v.2;
        }
    }

    /// The wire `ConsumedCapacity`, or `None` when not asked for.
    pub fn wire(&self, report: Report) -> Option<Value> {
        if report == Report::None {
            return None;
        }
        let idx_total: f64 = self.indexes.values().map(|v| v.1 + v.2).sum();
        let idx_read: f64 = self.indexes.values().map(|v| v.1).sum();
        let idx_write: f64 = self.indexes.values().map(|v| v.2).sum();
        let mut m = Map::new();
        m.insert("TableName".into(), json!(self.table));
        m.insert(
            "CapacityUnits".into(),
            json!(self.read + self.write + idx_total),
        );
        if self.read + idx_read > 0.0 {
            m.insert("ReadCapacityUnits".into(), json!(self.read + idx_read));
        }
        if self.write + idx_write > 0.0 {
            m.insert("WriteCapacityUnits".into(), json!(self.write + idx_write));
        }
        if report == Report::Indexes {
            m.insert("Table".into(), units(self.read, self.write));
            let mut lsi = Map::new();
            let mut gsi = Map::new();
            for (name, (global, r, w)) in &self.indexes {
                let target = if *global { &mut gsi } else { &mut lsi };
                target.insert(name.clone(), units(*r, *w));
            }
            if !lsi.is_empty() {
                m.insert("LocalSecondaryIndexes".into(), Value::Object(lsi));
            }
            if !gsi.is_empty() {
                m.insert("GlobalSecondaryIndexes".into(), Value::Object(gsi));
            }
        }
        Some(Value::Object(m))
    }
}

fn units(read: f64, write: f64) -> Value {
    let mut m = Map::new();
    m.insert("CapacityUnits".into(), json!(read + write));
    if read > 0.0 {
        m.insert("ReadCapacityUnits".into(), json!(read));
    }
    if write > 0.0 {
        m.insert("WriteCapacityUnits".into(), json!(write));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_up_and_halve() {
        assert_eq!(read_units(0, false), 0.5);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(10_000, false), 1.5);
        assert_eq!(write_units(1), 1.0);
        assert_eq!(write_units(1025), 2.0);
    }
}
