//! DynamoDB expressions: parsing and evaluation of `ConditionExpression`,
//! `FilterExpression`, `KeyConditionExpression`, `UpdateExpression` and
//! `ProjectionExpression`, plus the legacy parameters boto3 still sends
//! (`KeyConditions`, `QueryFilter`, `ScanFilter`, `Expected`,
//! `AttributeUpdates`, `AttributesToGet`), all lowered to the same trees.
//!
//! Everything here is pure: no I/O, no tables, no clocks. Operations parse
//! each expression of a request with one shared [`UsedPlaceholders`], then call
//! [`UsedPlaceholders::check_all_used`], then evaluate against items.
//!
//! Errors are [`ExprError::Validation`] carrying DynamoDB's exact
//! `ValidationException` message. Two stages, worth knowing for callers:
//! - parse-stage errors (`parse_*`, [`key_condition`], the legacy converters,
//!   [`UsedPlaceholders::check_all_used`], [`ExprInput::validate`]) are request
//!   validation; DynamoDB's PutItem/UpdateItem/DeleteItem prefix such messages
//!   with `"1 validation error detected: "` (GetItem, Query, Scan and the
//!   batch/transaction operations do not);
//! - evaluation-stage errors ([`UpdateExpr::apply`]) are reported as they are.

use std::collections::{HashMap, HashSet};

use crate::types::AttributeValue;

mod ast;
mod eval;
mod keycond;
mod legacy;
mod lexer;
mod parser;
pub mod reserved;

pub use ast::{Path, PathElement};
pub use eval::{
    parse_condition, parse_projection, parse_update, Condition, Projection, UpdateExpr,
};
pub use keycond::{key_condition, key_condition_from_legacy, KeyCondition, SortCondition};
pub use legacy::{
    condition_from_expected, condition_from_legacy_filter, update_from_attribute_updates,
};

/// The placeholders a request supplies (`ExpressionAttributeNames`,
/// `ExpressionAttributeValues`), borrowed for parsing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExprInput<'a> {
    pub names: Option<&'a HashMap<String, String>>,
    pub values: Option<&'a HashMap<String, AttributeValue>>,
}

impl ExprInput<'_> {
    /// DynamoDB's checks on the maps themselves: not empty when given, keys
    /// spelled `#name` / `:value`.
    pub fn validate(&self) -> Result<(), ExprError> {
        let key_ok = |k: &str, sigil: char| {
            let mut chars = k.chars();
            chars.next() == Some(sigil)
                && !k[1..].is_empty()
                && k[1..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        if let Some(names) = self.names {
            if names.is_empty() {
                return Err(ExprError::Validation(
                    "ExpressionAttributeNames must not be empty".to_owned(),
                ));
            }
            let mut keys: Vec<&String> = names.keys().collect();
            keys.sort();
            if let Some(k) = keys.into_iter().find(|k| !key_ok(k, '#')) {
                return Err(ExprError::Validation(format!(
                    "ExpressionAttributeNames contains invalid key: Syntax error; key: \"{k}\""
                )));
            }
        }
        if let Some(values) = self.values {
            if values.is_empty() {
                return Err(ExprError::Validation(
                    "ExpressionAttributeValues must not be empty".to_owned(),
                ));
            }
            let mut keys: Vec<&String> = values.keys().collect();
            keys.sort();
            if let Some(k) = keys.into_iter().find(|k| !key_ok(k, ':')) {
                return Err(ExprError::Validation(format!(
                    "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{k}\""
                )));
            }
        }
        Ok(())
    }
}

/// An expression failure, with DynamoDB's exact `ValidationException` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    #[error("{0}")]
    Validation(String),
}

impl ExprError {
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            ExprError::Validation(m) => m,
        }
    }
}

/// The placeholders the expressions of one request referred to, so unused
/// ones can be rejected as DynamoDB does.
#[derive(Debug, Clone, Default)]
pub struct UsedPlaceholders {
    names: HashSet<String>,
    values: HashSet<String>,
}

impl UsedPlaceholders {
    /// Nothing used yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `#names` referred to so far.
    pub fn names(&self) -> &HashSet<String> {
        &self.names
    }

    /// `:values` referred to so far.
    pub fn values(&self) -> &HashSet<String> {
        &self.values
    }

    /// Errors if `input` supplies a name or value no expression used:
    /// "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}".
    /// Names are checked before values; keys are listed sorted.
    pub fn check_all_used(&self, input: &ExprInput) -> Result<(), ExprError> {
        fn unused<T>(
            what: &str,
            map: Option<&HashMap<String, T>>,
            used: &HashSet<String>,
        ) -> Result<(), ExprError> {
            let Some(map) = map else { return Ok(()) };
            let mut keys: Vec<&str> = map
                .keys()
                .filter(|k| !used.contains(*k))
                .map(String::as_str)
                .collect();
            if keys.is_empty() {
                return Ok(());
            }
            keys.sort_unstable();
            Err(ExprError::Validation(format!(
                "Value provided in {what} unused in expressions: keys: {{{}}}",
                keys.join(", ")
            )))
        }
        unused("ExpressionAttributeNames", input.names, &self.names)?;
        unused("ExpressionAttributeValues", input.values, &self.values)
    }
}

#[cfg(test)]
mod tests;
