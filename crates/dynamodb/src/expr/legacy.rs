//! The pre-expression request parameters (`QueryFilter`, `ScanFilter`,
//! `KeyConditions`, `Expected`, `AttributeUpdates`) lowered to the same
//! condition and update trees as expressions, so one evaluator serves both.
//! Attribute names here are literal: no placeholders, no reserved words.

use serde_json::Value as Json;

use super::ast::{CmpOp, Cond, Operand, Path, UpdateAction};
use super::eval::{Condition, UpdateExpr};
use super::ExprError;
use crate::types::AttributeValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegacyContext {
    Filter,
}

fn invalid(msg: impl std::fmt::Display) -> ExprError {
    ExprError::Validation(format!("One or more parameter values were invalid: {msg}"))
}

fn parse_value(v: &Json) -> Result<AttributeValue, ExprError> {
    AttributeValue::from_json(v).map_err(|e| ExprError::Validation(e.message().to_owned()))
}

fn value_list(spec: &serde_json::Map<String, Json>) -> Result<Vec<AttributeValue>, ExprError> {
    match spec.get("AttributeValueList") {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(a)) => a.iter().map(parse_value).collect(),
        Some(_) => Err(ExprError::Validation(
            "Start of structure or map found where not expected".to_owned(),
        )),
    }
}

const OPERATORS: &str =
    "[IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]";

/// One `{AttributeValueList, ComparisonOperator}` on attribute `name`.
fn comparison(name: &str, op: &str, mut values: Vec<AttributeValue>) -> Result<Cond, ExprError> {
    let path = || Operand::Path(Path::attr(name));
    let count = |n: usize, values: &[AttributeValue]| {
        if values.len() == n {
            Ok(())
        } else {
            Err(invalid(format!(
                "Invalid number of argument(s) for the {op} ComparisonOperator"
            )))
        }
    };
    let types = |values: &[AttributeValue], ok: &[&str]| match values
        .iter()
        .find(|v| !ok.contains(&v.type_name()))
    {
        Some(v) => Err(invalid(format!(
            "ComparisonOperator {op} is not valid for {} AttributeValue type",
            v.type_name()
        ))),
        None => Ok(()),
    };
    const SCALARS: &[&str] = &["S", "N", "B"];
    const SCALARS_AND_SETS: &[&str] = &["S", "N", "B", "SS", "NS", "BS"];
    Ok(match op {
        "EQ" | "NE" => {
            count(1, &values)?;
            types(&values, SCALARS_AND_SETS)?;
            let cmp = if op == "EQ" { CmpOp::Eq } else { CmpOp::Ne };
            Cond::Cmp(cmp, path(), Operand::Value(values.remove(0)))
        }
        "LE" | "LT" | "GE" | "GT" => {
            count(1, &values)?;
            types(&values, SCALARS)?;
            let cmp = match op {
                "LE" => CmpOp::Le,
                "LT" => CmpOp::Lt,
                "GE" => CmpOp::Ge,
                _ => CmpOp::Gt,
            };
            Cond::Cmp(cmp, path(), Operand::Value(values.remove(0)))
        }
        "NOT_NULL" | "NULL" => {
            count(0, &values)?;
            if op == "NULL" {
                Cond::NotExists(Path::attr(name))
            } else {
                Cond::Exists(Path::attr(name))
            }
        }
        "CONTAINS" | "NOT_CONTAINS" => {
            count(1, &values)?;
            types(&values, SCALARS)?;
            let c = Cond::Contains(path(), Operand::Value(values.remove(0)));
            if op == "CONTAINS" {
                c
            } else {
                Cond::Not(Box::new(c))
            }
        }
        "BEGINS_WITH" => {
            count(1, &values)?;
            types(&values, &["S", "B"])?;
            Cond::BeginsWith(path(), Operand::Value(values.remove(0)))
        }
        "IN" => {
            if values.is_empty() {
                return Err(invalid(format!("Invalid number of argument(s) for the {op} ComparisonOperator")));
            }
            types(&values, SCALARS)?;
            Cond::In(path(), values.into_iter().map(Operand::Value).collect())
        }
        "BETWEEN" => {
            count(2, &values)?;
            types(&values, SCALARS)?;
            let hi = values.remove(1);
            let lo = values.remove(0);
            match lo.scalar_cmp(&hi) {
                None => return Err(invalid("AttributeValues inside AttributeValueList must be of same type")),
                Some(std::cmp::Ordering::Greater) => {
                    return Err(invalid(
                        "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
                    ))
                }
                _ => {}
            }
            Cond::Between(path(), Operand::Value(lo), Operand::Value(hi))
        }
        other => {
            return Err(ExprError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: {OPERATORS}"
            )))
        }
    })
}

pub(crate) fn legacy_condition(
    name: &str,
    spec: &Json,
    _ctx: LegacyContext,
) -> Result<Cond, ExprError> {
    let Json::Object(spec) = spec else {
        return Err(ExprError::Validation(
            "Unexpected value type in payload".to_owned(),
        ));
    };
    let op = match spec.get("ComparisonOperator") {
        Some(Json::String(s)) => s.as_str(),
        _ => {
            return Err(invalid(format!(
                "ComparisonOperator must be specified for attribute {name}"
            )))
        }
    };
    comparison(name, op, value_list(spec)?)
}

fn combine(conds: Vec<Cond>, conditional_operator: Option<&str>) -> Result<Condition, ExprError> {
    let or = match conditional_operator {
        None | Some("AND") => false,
        Some("OR") => true,
        Some(other) => {
            return Err(ExprError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]"
            )))
        }
    };
    let root = conds
        .into_iter()
        .reduce(|a, b| {
            if or {
                Cond::Or(Box::new(a), Box::new(b))
            } else {
                Cond::And(Box::new(a), Box::new(b))
            }
        })
        .unwrap_or(Cond::Const(true));
    Ok(Condition { root })
}

/// `QueryFilter` / `ScanFilter` (or `KeyConditions` evaluated as a filter):
/// `{attr: {AttributeValueList, ComparisonOperator}}`, joined by
/// `ConditionalOperator` (AND by default). An empty map always holds.
pub fn condition_from_legacy_filter(
    conditions: &Json,
    conditional_operator: Option<&str>,
) -> Result<Condition, ExprError> {
    let Json::Object(map) = conditions else {
        return Err(ExprError::Validation(
            "Unexpected value type in payload".to_owned(),
        ));
    };
    let conds = map
        .iter()
        .map(|(n, s)| legacy_condition(n, s, LegacyContext::Filter))
        .collect::<Result<Vec<_>, _>>()?;
    combine(conds, conditional_operator)
}

/// `Expected`: `{attr: {Value, Exists, ComparisonOperator, AttributeValueList}}`.
pub fn condition_from_expected(
    expected: &Json,
    conditional_operator: Option<&str>,
) -> Result<Condition, ExprError> {
    let Json::Object(map) = expected else {
        return Err(ExprError::Validation(
            "Unexpected value type in payload".to_owned(),
        ));
    };
    let mut conds = Vec::new();
    for (name, spec) in map {
        let Json::Object(s) = spec else {
            return Err(ExprError::Validation(
                "Unexpected value type in payload".to_owned(),
            ));
        };
        let value = match s.get("Value") {
            None | Some(Json::Null) => None,
            Some(v) => Some(parse_value(v)?),
        };
        let exists = match s.get("Exists") {
            None | Some(Json::Null) => None,
            Some(Json::Bool(b)) => Some(*b),
            Some(_) => {
                return Err(ExprError::Validation(
                    "STRING_VALUE cannot be converted to Boolean".to_owned(),
                ))
            }
        };
        if let Some(Json::String(op)) = s.get("ComparisonOperator") {
            if exists.is_some() {
                return Err(invalid(format!(
                    "Exists and ComparisonOperator cannot be used together for Attribute: {name}"
                )));
            }
            let mut values = value_list(s)?;
            if let Some(v) = value {
                if !values.is_empty() {
                    return Err(invalid(format!(
                        "Value and AttributeValueList cannot be used together for Attribute: {name}"
                    )));
                }
                values.push(v);
            }
            conds.push(comparison(name, op, values)?);
            continue;
        }
        match (exists.unwrap_or(true), value) {
            (true, Some(v)) => conds.push(Cond::Cmp(CmpOp::Eq, Operand::Path(Path::attr(name)), Operand::Value(v))),
            (true, None) => {
                return Err(invalid(format!("Value must be provided when Exists is true for Attribute: {name}")))
            }
            (false, Some(_)) => {
                return Err(invalid("Cannot expect an attribute to have a specified value while expecting it to not exist"))
            }
            (false, None) => conds.push(Cond::NotExists(Path::attr(name))),
        }
    }
    combine(conds, conditional_operator)
}

/// `AttributeUpdates`: `{attr: {Action: PUT|ADD|DELETE, Value}}` (PUT by default).
/// ADD adds numbers, unions sets, appends lists and creates missing
/// attributes; DELETE without a value removes the attribute, with a set value
/// removes those elements.
pub fn update_from_attribute_updates(updates: &Json) -> Result<UpdateExpr, ExprError> {
    let Json::Object(map) = updates else {
        return Err(ExprError::Validation(
            "Unexpected value type in payload".to_owned(),
        ));
    };
    let mut actions = Vec::new();
    for (name, spec) in map {
        let Json::Object(s) = spec else {
            return Err(ExprError::Validation(
                "Unexpected value type in payload".to_owned(),
            ));
        };
        let value = match s.get("Value") {
            None | Some(Json::Null) => None,
            Some(v) => Some(parse_value(v)?),
        };
        let action = match s.get("Action") {
            None | Some(Json::Null) => "PUT",
            Some(Json::String(a)) => a.as_str(),
            Some(_) => {
                return Err(ExprError::Validation(
                    "NUMBER_VALUE cannot be converted to String".to_owned(),
                ))
            }
        };
        let path = Path::attr(name);
        let is_set = |v: &AttributeValue| {
            matches!(
                v,
                AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
            )
        };
        actions.push(match (action, value) {
            ("DELETE", None) => UpdateAction::Remove(path),
            (_, None) if matches!(action, "PUT" | "ADD") => {
                return Err(invalid("Only DELETE action is allowed when no attribute value is specified"))
            }
            ("PUT", Some(v)) => UpdateAction::Set(path, Operand::Value(v)),
            ("DELETE", Some(v)) if is_set(&v) => UpdateAction::Delete(path, v),
            ("DELETE", Some(v)) => {
                return Err(invalid(format!("DELETE action with value is not supported for the type {}", v.type_name())))
            }
            ("ADD", Some(v)) if is_set(&v) || matches!(v, AttributeValue::N(_)) => UpdateAction::Add(path, v),
            ("ADD", Some(v @ AttributeValue::L(_))) => UpdateAction::Set(
                path.clone(),
                Operand::ListAppend(
                    Box::new(Operand::IfNotExists(path, Box::new(Operand::Value(AttributeValue::L(Vec::new()))))),
                    Box::new(Operand::Value(v)),
                ),
            ),
            ("ADD", Some(v)) => return Err(invalid(format!("ADD action is not supported for the type {}", v.type_name()))),
            (other, _) => {
                return Err(ExprError::Validation(format!(
                    "1 validation error detected: Value '{other}' at 'attributeUpdates.{name}.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"
                )))
            }
        });
    }
    Ok(UpdateExpr { actions })
}
