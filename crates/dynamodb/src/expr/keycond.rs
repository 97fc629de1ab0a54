//! Query key conditions: a `KeyConditionExpression` (or legacy
//! `KeyConditions`) checked against the table's or index's key schema and
//! reduced to an equality on the partition key plus an optional range
//! condition on the sort key, which storage turns into a key-range scan.

use super::ast::{CmpOp, Cond, Operand, Path};
use super::eval::{begins_with, compare};
use super::legacy::{legacy_condition, LegacyContext};
use super::parser::parse_condition_tree;
use super::{ExprError, ExprInput, UsedPlaceholders};
use crate::types::AttributeValue;

/// A condition on the sort key.
#[derive(Debug, Clone, PartialEq)]
pub enum SortCondition {
    Eq(AttributeValue),
    Lt(AttributeValue),
    Le(AttributeValue),
    Gt(AttributeValue),
    Ge(AttributeValue),
    Between(AttributeValue, AttributeValue),
    BeginsWith(AttributeValue),
}

impl SortCondition {
    /// True if a sort-key value satisfies the condition (same-type values
    /// compare in DynamoDB key order; other types never match).
    pub fn matches(&self, v: &AttributeValue) -> bool {
        let cmp = |op, b: &AttributeValue| compare(op, Some(v), Some(b));
        match self {
            SortCondition::Eq(b) => cmp(CmpOp::Eq, b),
            SortCondition::Lt(b) => cmp(CmpOp::Lt, b),
            SortCondition::Le(b) => cmp(CmpOp::Le, b),
            SortCondition::Gt(b) => cmp(CmpOp::Gt, b),
            SortCondition::Ge(b) => cmp(CmpOp::Ge, b),
            SortCondition::Between(lo, hi) => cmp(CmpOp::Ge, lo) && cmp(CmpOp::Le, hi),
            SortCondition::BeginsWith(p) => begins_with(v, p),
        }
    }

    /// The values the condition compares with.
    pub fn values(&self) -> Vec<&AttributeValue> {
        match self {
            SortCondition::Eq(v)
            | SortCondition::Lt(v)
            | SortCondition::Le(v)
            | SortCondition::Gt(v)
            | SortCondition::Ge(v)
            | SortCondition::BeginsWith(v) => vec![v],
            SortCondition::Between(a, b) => vec![a, b],
        }
    }
}

/// A validated key condition: `partition = value` and maybe a sort-key condition.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyCondition {
    pub partition: (String, AttributeValue),
    pub sort: Option<(String, SortCondition)>,
}

impl KeyCondition {
    /// Every value the condition compares with, by key name, so callers can
    /// check them against the schema's attribute types.
    pub fn values(&self) -> Vec<(&str, &AttributeValue)> {
        let mut v = vec![(self.partition.0.as_str(), &self.partition.1)];
        if let Some((name, c)) = &self.sort {
            v.extend(c.values().into_iter().map(|x| (name.as_str(), x)));
        }
        v
    }
}

fn invalid_op(op: &str) -> ExprError {
    ExprError::Validation(format!(
        "Invalid operator used in KeyConditionExpression: {op}"
    ))
}

fn v(msg: &str) -> ExprError {
    ExprError::Validation(msg.to_owned())
}

fn flatten<'c>(c: &'c Cond, out: &mut Vec<&'c Cond>) -> Result<(), ExprError> {
    match c {
        Cond::And(a, b) => {
            flatten(a, out)?;
            flatten(b, out)
        }
        Cond::Or(..) => Err(invalid_op("OR")),
        Cond::Not(..) => Err(invalid_op("NOT")),
        Cond::In(..) => Err(invalid_op("IN")),
        Cond::Exists(..) => Err(invalid_op("attribute_exists")),
        Cond::NotExists(..) => Err(invalid_op("attribute_not_exists")),
        Cond::Type(..) => Err(invalid_op("attribute_type")),
        Cond::Contains(..) => Err(invalid_op("contains")),
        Cond::Cmp(CmpOp::Ne, ..) => Err(invalid_op("<>")),
        other => {
            out.push(other);
            Ok(())
        }
    }
}

fn key_name(p: &Path) -> Result<String, ExprError> {
    if !p.is_top_level() {
        return Err(v(
            "KeyConditionExpressions cannot have conditions on nested attributes",
        ));
    }
    Ok(p.top().to_owned())
}

fn value_of(o: &Operand) -> Result<AttributeValue, ExprError> {
    match o {
        Operand::Value(v) => Ok(v.clone()),
        Operand::Size(_) => Err(invalid_op("size")),
        _ => Err(v("Invalid KeyConditionExpression: Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition")),
    }
}

/// One leaf as (key name, condition).
fn leaf(c: &Cond) -> Result<(String, SortCondition), ExprError> {
    match c {
        Cond::Cmp(op, l, r) => {
            let (path, value, op) = match (l, r) {
                (Operand::Path(p), other) => (p, value_of(other)?, *op),
                (other, Operand::Path(p)) => (p, value_of(other)?, op.flipped()),
                (Operand::Size(_), _) | (_, Operand::Size(_)) => return Err(invalid_op("size")),
                _ => return Err(v("Invalid KeyConditionExpression: Invalid condition in KeyConditionExpression: No key attribute specified")),
            };
            let cond = match op {
                CmpOp::Eq => SortCondition::Eq(value),
                CmpOp::Lt => SortCondition::Lt(value),
                CmpOp::Le => SortCondition::Le(value),
                CmpOp::Gt => SortCondition::Gt(value),
                CmpOp::Ge => SortCondition::Ge(value),
                CmpOp::Ne => return Err(invalid_op("<>")),
            };
            Ok((key_name(path)?, cond))
        }
        Cond::Between(Operand::Path(p), lo, hi) => Ok((key_name(p)?, SortCondition::Between(value_of(lo)?, value_of(hi)?))),
        Cond::Between(Operand::Size(_), ..) => Err(invalid_op("size")),
        Cond::Between(..) => Err(v("Invalid KeyConditionExpression: Invalid condition in KeyConditionExpression: No key attribute specified")),
        Cond::BeginsWith(Operand::Path(p), prefix) => Ok((key_name(p)?, SortCondition::BeginsWith(value_of(prefix)?))),
        Cond::BeginsWith(..) => Err(v("Invalid KeyConditionExpression: Invalid condition in KeyConditionExpression: No key attribute specified")),
        _ => Err(v("Query key condition not supported")),
    }
}

pub(crate) fn assemble(
    leaves: Vec<(String, SortCondition)>,
    partition_key: &str,
    sort_key: Option<&str>,
) -> Result<KeyCondition, ExprError> {
    for (i, (name, _)) in leaves.iter().enumerate() {
        if leaves[..i].iter().any(|(n, _)| n == name) {
            return Err(v(
                "KeyConditionExpressions must only contain one condition per key",
            ));
        }
    }
    let mut partition = None;
    let mut sort = None;
    let mut stray = false;
    for (name, cond) in leaves {
        if name == partition_key {
            match cond {
                SortCondition::Eq(val) => partition = Some((name, val)),
                _ => return Err(v("Query key condition not supported")),
            }
        } else if Some(name.as_str()) == sort_key {
            sort = Some((name, cond));
        } else {
            stray = true;
        }
    }
    let Some(partition) = partition else {
        return Err(ExprError::Validation(format!(
            "Query condition missed key schema element: {partition_key}"
        )));
    };
    if stray {
        return Err(match sort_key {
            Some(sk) if sort.is_none() => {
                ExprError::Validation(format!("Query condition missed key schema element: {sk}"))
            }
            _ => v("Query key condition not supported"),
        });
    }
    Ok(KeyCondition { partition, sort })
}

/// Parses and validates a `KeyConditionExpression` against a key schema
/// (the table's or the queried index's).
pub fn key_condition(
    expr: &str,
    input: &ExprInput,
    used: &mut UsedPlaceholders,
    partition_key: &str,
    sort_key: Option<&str>,
) -> Result<KeyCondition, ExprError> {
    let root = parse_condition_tree(expr, "KeyConditionExpression", input, used)?;
    let mut leaves = Vec::new();
    flatten(&root, &mut leaves)?;
    let leaves = leaves
        .into_iter()
        .map(leaf)
        .collect::<Result<Vec<_>, _>>()?;
    assemble(leaves, partition_key, sort_key)
}

/// Validates legacy `KeyConditions` (`{attr: {AttributeValueList, ComparisonOperator}}`)
/// against a key schema. Only EQ, LE, LT, GE, GT, BEGINS_WITH and BETWEEN are indexable.
pub fn key_condition_from_legacy(
    conditions: &serde_json::Value,
    partition_key: &str,
    sort_key: Option<&str>,
) -> Result<KeyCondition, ExprError> {
    let serde_json::Value::Object(map) = conditions else {
        return Err(v("KeyConditions must be a map"));
    };
    let mut leaves = Vec::new();
    for (name, spec) in map {
        let cond = legacy_condition(name, spec, LegacyContext::Filter)?;
        let sc = match cond {
            Cond::Cmp(CmpOp::Eq, _, Operand::Value(x)) => SortCondition::Eq(x),
            Cond::Cmp(CmpOp::Lt, _, Operand::Value(x)) => SortCondition::Lt(x),
            Cond::Cmp(CmpOp::Le, _, Operand::Value(x)) => SortCondition::Le(x),
            Cond::Cmp(CmpOp::Gt, _, Operand::Value(x)) => SortCondition::Gt(x),
            Cond::Cmp(CmpOp::Ge, _, Operand::Value(x)) => SortCondition::Ge(x),
            Cond::Between(_, Operand::Value(a), Operand::Value(b)) => SortCondition::Between(a, b),
            Cond::BeginsWith(_, Operand::Value(x)) => SortCondition::BeginsWith(x),
            _ => {
                return Err(v(
                    "Attempted conditional constraint is not an indexable operation",
                ))
            }
        };
        leaves.push((name.clone(), sc));
    }
    assemble(leaves, partition_key, sort_key)
}
