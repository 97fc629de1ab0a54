//! Evaluation: conditions against an item, updates applied to an item,
//! projections cut from an item. Semantics are DynamoDB's: comparisons of
//! different types (or with a missing attribute) are false rather than
//! errors, `<>` is the negation of `=`, and update right-hand sides read the
//! item as it was before the update.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::ast::{CmpOp, Cond, Operand, Path, PathElement, UpdateAction};
use super::parser::{parse_condition_tree, parse_projection_paths, parse_update_actions};
use super::{ExprError, ExprInput, UsedPlaceholders};
use crate::types::{AttributeValue, Item, Number};

/// A parsed condition (condition, filter or key-condition expression, or a
/// legacy `Expected` / `QueryFilter` / `ScanFilter`).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub(crate) root: Cond,
}

/// Parses a condition. `kind` names the parameter in messages:
/// "ConditionExpression", "FilterExpression" or "KeyConditionExpression".
pub fn parse_condition(
    expr: &str,
    kind: &'static str,
    input: &ExprInput,
    used: &mut UsedPlaceholders,
) -> Result<Condition, ExprError> {
    parse_condition_tree(expr, kind, input, used).map(|root| Condition { root })
}

impl Condition {
    /// The condition that holds for every item (an absent condition).
    pub fn always() -> Condition {
        Condition {
            root: Cond::Const(true),
        }
    }

    /// Both conditions.
    pub fn and(self, other: Condition) -> Condition {
        Condition {
            root: Cond::And(Box::new(self.root), Box::new(other.root)),
        }
    }

    /// Evaluates against an item (use an empty item for "no item"). Never
    /// fails today; the `Result` leaves room for DynamoDB's runtime errors.
    pub fn eval(&self, item: &Item) -> Result<bool, ExprError> {
        Ok(eval_cond(&self.root, item))
    }
}

fn operand_value<'a>(op: &'a Operand, item: &'a Item) -> Option<Cow<'a, AttributeValue>> {
    match op {
        Operand::Path(p) => p.get(item).map(Cow::Borrowed),
        Operand::Value(v) => Some(Cow::Borrowed(v)),
        Operand::Size(inner) => {
            let v = operand_value(inner, item)?;
            size_of(&v).map(|n| Cow::Owned(AttributeValue::N(Number::from_u64(n as u64))))
        }
        // Update-only operands never reach conditions.
        _ => None,
    }
}

/// `size()`: string and binary lengths in bytes, element counts for sets,
/// lists and maps; undefined for other types.
fn size_of(v: &AttributeValue) -> Option<usize> {
    Some(match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.len(),
        AttributeValue::Ss(s) => s.len(),
        AttributeValue::Ns(s) => s.len(),
        AttributeValue::Bs(s) => s.len(),
        AttributeValue::L(l) => l.len(),
        AttributeValue::M(m) => m.len(),
        _ => return None,
    })
}

pub(crate) fn compare(op: CmpOp, a: Option<&AttributeValue>, b: Option<&AttributeValue>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return op == CmpOp::Ne;
    };
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        _ => match a.scalar_cmp(b) {
            Some(o) => match op {
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::Le => o != Ordering::Greater,
                CmpOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            },
            None => false,
        },
    }
}

pub(crate) fn begins_with(a: &AttributeValue, b: &AttributeValue) -> bool {
    match (a, b) {
        (AttributeValue::S(x), AttributeValue::S(y)) => x.starts_with(y.as_str()),
        (AttributeValue::B(x), AttributeValue::B(y)) => x.starts_with(y),
        _ => false,
    }
}

pub(crate) fn contains(a: &AttributeValue, b: &AttributeValue) -> bool {
    match (a, b) {
        (AttributeValue::S(x), AttributeValue::S(y)) => x.contains(y.as_str()),
        (AttributeValue::B(x), AttributeValue::B(y)) => {
            y.is_empty() || x.windows(y.len()).any(|w| w == y.as_slice())
        }
        (AttributeValue::Ss(s), AttributeValue::S(y)) => s.contains(y),
        (AttributeValue::Ns(s), AttributeValue::N(y)) => s.contains(y),
        (AttributeValue::Bs(s), AttributeValue::B(y)) => s.contains(y),
        (AttributeValue::L(l), y) => l.contains(y),
        _ => false,
    }
}

pub(crate) fn eval_cond(c: &Cond, item: &Item) -> bool {
    match c {
        Cond::Const(b) => *b,
        Cond::Cmp(op, l, r) => {
            let (a, b) = (operand_value(l, item), operand_value(r, item));
            compare(*op, a.as_deref(), b.as_deref())
        }
        Cond::Between(v, lo, hi) => {
            let (Some(v), Some(lo), Some(hi)) = (
                operand_value(v, item),
                operand_value(lo, item),
                operand_value(hi, item),
            ) else {
                return false;
            };
            matches!(lo.scalar_cmp(&v), Some(Ordering::Less | Ordering::Equal))
                && matches!(v.scalar_cmp(&hi), Some(Ordering::Less | Ordering::Equal))
        }
        Cond::In(v, list) => {
            let Some(v) = operand_value(v, item) else {
                return false;
            };
            list.iter()
                .any(|o| operand_value(o, item).is_some_and(|x| *x == *v))
        }
        Cond::Exists(p) => p.get(item).is_some(),
        Cond::NotExists(p) => p.get(item).is_none(),
        Cond::Type(p, t) => match (p.get(item), operand_value(t, item).as_deref()) {
            (Some(v), Some(AttributeValue::S(t))) => v.type_name() == t,
            _ => false,
        },
        Cond::BeginsWith(a, b) => match (operand_value(a, item), operand_value(b, item)) {
            (Some(a), Some(b)) => begins_with(&a, &b),
            _ => false,
        },
        Cond::Contains(a, b) => match (operand_value(a, item), operand_value(b, item)) {
            (Some(a), Some(b)) => contains(&a, &b),
            _ => false,
        },
        Cond::And(a, b) => eval_cond(a, item) && eval_cond(b, item),
        Cond::Or(a, b) => eval_cond(a, item) || eval_cond(b, item),
        Cond::Not(a) => !eval_cond(a, item),
    }
}

// ----- updates -----

/// Message when an update reads or navigates through a missing attribute.
pub const MSG_MISSING: &str =
    "The provided expression refers to an attribute that does not exist in the item";
/// Message when an update path crosses a value of the wrong type.
pub const MSG_BAD_PATH: &str =
    "The document path provided in the update expression is invalid for update";
/// Message when an update operand has the wrong type at run time.
pub const MSG_BAD_TYPE: &str = "An operand in the update expression has an incorrect data type";

fn v_err(m: &str) -> ExprError {
    ExprError::Validation(m.to_owned())
}

/// A parsed update (an `UpdateExpression` or legacy `AttributeUpdates`).
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateExpr {
    pub(crate) actions: Vec<UpdateAction>,
}

/// Parses an `UpdateExpression`.
pub fn parse_update(
    expr: &str,
    input: &ExprInput,
    used: &mut UsedPlaceholders,
) -> Result<UpdateExpr, ExprError> {
    parse_update_actions(expr, input, used).map(|actions| UpdateExpr { actions })
}

fn eval_update_operand(op: &Operand, item: &Item) -> Result<AttributeValue, ExprError> {
    match op {
        Operand::Path(p) => p.get(item).cloned().ok_or_else(|| v_err(MSG_MISSING)),
        Operand::Value(v) => Ok(v.clone()),
        Operand::IfNotExists(p, d) => match p.get(item) {
            Some(v) => Ok(v.clone()),
            None => eval_update_operand(d, item),
        },
        Operand::ListAppend(a, b) => {
            match (eval_update_operand(a, item)?, eval_update_operand(b, item)?) {
                (AttributeValue::L(mut x), AttributeValue::L(y)) => {
                    x.extend(y);
                    Ok(AttributeValue::L(x))
                }
                _ => Err(v_err(MSG_BAD_TYPE)),
            }
        }
        Operand::Plus(a, b) | Operand::Minus(a, b) => {
            match (eval_update_operand(a, item)?, eval_update_operand(b, item)?) {
                (AttributeValue::N(x), AttributeValue::N(y)) => {
                    let r = if matches!(op, Operand::Plus(..)) {
                        x.checked_add(&y)
                    } else {
                        x.checked_sub(&y)
                    };
                    r.map(AttributeValue::N)
                        .map_err(|e| ExprError::Validation(e.message().to_owned()))
                }
                _ => Err(v_err(MSG_BAD_TYPE)),
            }
        }
        Operand::Size(_) => Err(v_err(MSG_BAD_TYPE)),
    }
}

/// Where the last element of a path lives.
enum Slot<'a> {
    Map(&'a mut BTreeMap<String, AttributeValue>, String),
    List(&'a mut Vec<AttributeValue>, usize),
}

/// Walks to the container of `path`'s last element. `Ok(None)` when an
/// intermediate step is missing and `missing_ok`.
fn slot<'a>(
    item: &'a mut Item,
    path: &Path,
    missing_ok: bool,
) -> Result<Option<Slot<'a>>, ExprError> {
    let els = path.elements();
    let Some((last, init)) = els.split_last() else {
        return Err(v_err(MSG_BAD_PATH));
    };
    let mut map: Option<&'a mut BTreeMap<String, AttributeValue>> = Some(item);
    let mut list: Option<&'a mut Vec<AttributeValue>> = None;
    for (i, el) in init.iter().enumerate() {
        let child = match (el, map.take(), list.take()) {
            (PathElement::Attr(a), Some(m), _) => m.get_mut(a),
            (PathElement::Index(n), _, Some(l)) => l.get_mut(*n),
            _ => return Err(v_err(MSG_BAD_PATH)),
        };
        let Some(child) = child else {
            return if missing_ok {
                Ok(None)
            } else {
                Err(v_err(MSG_MISSING))
            };
        };
        match (&els[i + 1], child) {
            (PathElement::Attr(_), AttributeValue::M(m)) => map = Some(m),
            (PathElement::Index(_), AttributeValue::L(l)) => list = Some(l),
            _ => return Err(v_err(MSG_BAD_PATH)),
        }
    }
    Ok(Some(match (last, map, list) {
        (PathElement::Attr(a), Some(m), _) => Slot::Map(m, a.clone()),
        (PathElement::Index(n), _, Some(l)) => Slot::List(l, *n),
        _ => return Err(v_err(MSG_BAD_PATH)),
    }))
}

fn set_at(item: &mut Item, path: &Path, v: AttributeValue) -> Result<(), ExprError> {
    match slot(item, path, false)? {
        Some(Slot::Map(m, k)) => {
            m.insert(k, v);
        }
        Some(Slot::List(l, i)) => {
            if i < l.len() {
                l[i] = v;
            } else {
                l.push(v);
            }
        }
        None => return Err(v_err(MSG_MISSING)),
    }
    Ok(())
}

fn remove_at(item: &mut Item, path: &Path) -> Result<(), ExprError> {
    match slot(item, path, true)? {
        Some(Slot::Map(m, k)) => {
            m.remove(&k);
        }
        Some(Slot::List(l, i)) if i < l.len() => {
            l.remove(i);
        }
        Some(Slot::List(..)) | None => {}
    }
    Ok(())
}

fn get_at<'a>(item: &'a Item, path: &Path) -> Option<&'a AttributeValue> {
    path.get(item)
}

fn set_union<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let mut v: Vec<T> = a.iter().chain(b.iter()).cloned().collect();
    v.sort();
    v.dedup();
    v
}

fn set_minus<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    a.iter().filter(|x| !b.contains(x)).cloned().collect()
}

fn add_values(
    cur: Option<&AttributeValue>,
    v: &AttributeValue,
) -> Result<AttributeValue, ExprError> {
    use AttributeValue::*;
    Ok(match (cur, v) {
        (None, N(_) | Ss(_) | Ns(_) | Bs(_)) => v.clone(),
        (Some(N(a)), N(b)) => N(a
            .checked_add(b)
            .map_err(|e| ExprError::Validation(e.message().to_owned()))?),
        (Some(Ss(a)), Ss(b)) => Ss(set_union(a, b)),
        (Some(Ns(a)), Ns(b)) => Ns(set_union(a, b)),
        (Some(Bs(a)), Bs(b)) => Bs(set_union(a, b)),
        _ => return Err(v_err(MSG_BAD_TYPE)),
    })
}

fn delete_values(
    cur: &AttributeValue,
    v: &AttributeValue,
) -> Result<Option<AttributeValue>, ExprError> {
    use AttributeValue::*;
    let out = match (cur, v) {
        (Ss(a), Ss(b)) => Ss(set_minus(a, b)),
        (Ns(a), Ns(b)) => Ns(set_minus(a, b)),
        (Bs(a), Bs(b)) => Bs(set_minus(a, b)),
        _ => return Err(v_err(MSG_BAD_TYPE)),
    };
    let empty = match &out {
        Ss(s) => s.is_empty(),
        Ns(s) => s.is_empty(),
        Bs(s) => s.is_empty(),
        _ => false,
    };
    Ok(if empty { None } else { Some(out) })
}

/// Orders REMOVE paths so removing one never shifts a later one's index:
/// deeper/larger list indexes first.
fn remove_order(a: &Path, b: &Path) -> Ordering {
    b.elements().cmp(a.elements())
}

impl UpdateExpr {
    /// Applies the update to `item` (an empty item when none exists yet). On
    /// error the item may be partly updated: apply to a copy.
    ///
    /// All SET right-hand sides are computed from the item as it was before
    /// the update; then SETs, REMOVEs (list removals by original index), ADDs
    /// and DELETEs are applied.
    pub fn apply(&self, item: &mut Item) -> Result<(), ExprError> {
        let mut sets = Vec::new();
        for a in &self.actions {
            if let UpdateAction::Set(p, op) = a {
                sets.push((p, eval_update_operand(op, item)?));
            }
        }
        for (p, v) in sets {
            set_at(item, p, v)?;
        }
        let mut removes: Vec<&Path> = self
            .actions
            .iter()
            .filter_map(|a| match a {
                UpdateAction::Remove(p) => Some(p),
                _ => None,
            })
            .collect();
        removes.sort_by(|a, b| remove_order(a, b));
        for p in removes {
            remove_at(item, p)?;
        }
        for a in &self.actions {
            match a {
                UpdateAction::Add(p, v) => {
                    let new = add_values(get_at(item, p), v)?;
                    set_at(item, p, new)?;
                }
                UpdateAction::Delete(p, v) => {
                    let Some(cur) = get_at(item, p) else { continue };
                    match delete_values(cur, v)? {
                        Some(new) => set_at(item, p, new)?,
                        None => remove_at(item, p)?,
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The top-level attributes the update writes, sorted and unique (for
    /// `ReturnValues` `UPDATED_OLD` / `UPDATED_NEW`).
    pub fn top_level_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .actions
            .iter()
            .map(|a| a.path().top().to_owned())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The paths the update writes, in expression order.
    pub fn paths(&self) -> Vec<&Path> {
        self.actions.iter().map(UpdateAction::path).collect()
    }

    /// DynamoDB's message if the update writes a key attribute:
    /// "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key".
    pub fn touches(&self, key_names: &[&str]) -> Option<String> {
        self.actions.iter().map(|a| a.path().top()).find(|t| key_names.contains(t)).map(|k| {
            format!("One or more parameter values were invalid: Cannot update attribute {k}. This attribute is part of the key")
        })
    }
}

// ----- projections -----

/// A parsed `ProjectionExpression` (or `AttributesToGet`).
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    paths: Vec<Path>,
}

/// Parses a `ProjectionExpression`.
pub fn parse_projection(
    expr: &str,
    input: &ExprInput,
    used: &mut UsedPlaceholders,
) -> Result<Projection, ExprError> {
    parse_projection_paths(expr, input, used).map(|paths| Projection { paths })
}

/// The requested parts of a value, as a tree.
#[derive(Debug, Default)]
struct Wanted {
    whole: bool,
    keys: BTreeMap<String, Wanted>,
    indexes: BTreeMap<usize, Wanted>,
}

impl Wanted {
    fn insert(&mut self, els: &[PathElement]) {
        let Some((first, rest)) = els.split_first() else {
            self.whole = true;
            return;
        };
        let child = match first {
            PathElement::Attr(a) => self.keys.entry(a.clone()).or_default(),
            PathElement::Index(i) => self.indexes.entry(*i).or_default(),
        };
        child.insert(rest);
    }

    fn project(&self, v: &AttributeValue) -> Option<AttributeValue> {
        if self.whole {
            return Some(v.clone());
        }
        match v {
            AttributeValue::M(m) if !self.keys.is_empty() => {
                let out: BTreeMap<String, AttributeValue> = self
                    .keys
                    .iter()
                    .filter_map(|(k, w)| {
                        m.get(k).and_then(|x| w.project(x)).map(|x| (k.clone(), x))
                    })
                    .collect();
                (!out.is_empty()).then_some(AttributeValue::M(out))
            }
            AttributeValue::L(l) if !self.indexes.is_empty() => {
                let out: Vec<AttributeValue> = self
                    .indexes
                    .iter()
                    .filter_map(|(i, w)| l.get(*i).and_then(|x| w.project(x)))
                    .collect();
                (!out.is_empty()).then_some(AttributeValue::L(out))
            }
            _ => None,
        }
    }
}

impl Projection {
    /// A projection of top-level attributes (legacy `AttributesToGet`).
    pub fn from_attributes_to_get(names: &[String]) -> Projection {
        Projection {
            paths: names.iter().map(Path::attr).collect(),
        }
    }

    /// The projected paths.
    pub fn paths(&self) -> &[Path] {
        &self.paths
    }

    /// The top-level attributes the projection reads, sorted and unique.
    pub fn top_level_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.paths.iter().map(|p| p.top().to_owned()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The parts of `item` the projection names, in their original nesting;
    /// list elements keep their relative order and are packed together.
    /// Missing paths are left out.
    pub fn apply(&self, item: &Item) -> Item {
        let mut root = Wanted::default();
        for p in &self.paths {
            root.insert(p.elements());
        }
        root.keys
            .iter()
            .filter_map(|(k, w)| {
                item.get(k)
                    .and_then(|v| w.project(v))
                    .map(|v| (k.clone(), v))
            })
            .collect()
    }
}
