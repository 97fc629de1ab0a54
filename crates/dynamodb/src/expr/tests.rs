//! Behaviour tests for the expression engine, written as DynamoDB's
//! observable behaviour: parse errors with exact messages, evaluation results.

use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::types::{item_from_json, AttributeValue, Item};

struct Ctx {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

fn ctx(names: &[(&str, &str)], values: serde_json::Value) -> Ctx {
    let values = match values {
        serde_json::Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| {
                let av = AttributeValue::from_json(&v).unwrap_or_else(|e| panic!("{k}: {e}"));
                (k, av)
            })
            .collect(),
        _ => HashMap::new(),
    };
    Ctx {
        names: names
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        values,
    }
}

impl Ctx {
    fn input(&self) -> ExprInput<'_> {
        ExprInput {
            names: Some(&self.names),
            values: Some(&self.values),
        }
    }
}

fn item(v: serde_json::Value) -> Item {
    item_from_json(&v).unwrap_or_else(|e| panic!("{e}"))
}

/// Evaluates a condition built from `expr` with values `:a`, `:b`, … taken
/// from `values`.
fn cond(expr: &str, values: serde_json::Value, it: &Item) -> bool {
    let c = ctx(&[], values);
    let mut used = UsedPlaceholders::new();
    let parsed = parse_condition(expr, "ConditionExpression", &c.input(), &mut used)
        .unwrap_or_else(|e| panic!("{expr}: {e}"));
    parsed.eval(it).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn cond_err(expr: &str, names: &[(&str, &str)], values: serde_json::Value) -> String {
    let c = ctx(names, values);
    let mut used = UsedPlaceholders::new();
    match parse_condition(expr, "ConditionExpression", &c.input(), &mut used) {
        Err(e) => e.message().to_owned(),
        Ok(p) => panic!("{expr} parsed: {p:?}"),
    }
}

#[test]
fn smoke() {
    let it = item(json!({"a": {"N": "1"}}));
    assert!(cond("a = :a", json!({":a": {"N": "1"}}), &it));
    assert_eq!(
        cond_err("a == :a", &[], json!({":a": {"N": "1"}})),
        "Invalid ConditionExpression: Syntax error; token: \"=\", near: \"== :a\""
    );
}
