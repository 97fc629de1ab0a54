//! One handler per DynamoDB operation, and the request-level rules they share (table lookup,
//! `ReturnValues`, expressions versus legacy parameters, projections).
//!
//! Handlers take a parsed input and return the response body; they never see HTTP.

use std::sync::Arc;

use serde_json::Value;

use crate::catalog::TableMeta;
use crate::error::{table_not_found, validation, Result};
use crate::expr::{self, Condition, ExprInput, Projection, UsedPlaceholders};
use crate::wire::{Names, Values};
use crate::DynamoDb;

pub(crate) mod batch;
pub(crate) mod items;
pub(crate) mod query;
pub(crate) mod tables;

/// A response body.
pub type Body = Vec<u8>;

pub(crate) fn json_body(v: &Value) -> Body {
    serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec())
}

impl DynamoDb {
    /// The table an item operation names; `ResourceNotFoundException` if there is none.
    pub(crate) fn item_table(&self, name: &str) -> Result<Arc<TableMeta>> {
        self.store.table(name).ok_or_else(table_not_found)
    }
}

/// `ReturnValues`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnValues {
    None,
    AllOld,
    UpdatedOld,
    AllNew,
    UpdatedNew,
}

impl ReturnValues {
    /// Parses `ReturnValues`, allowing only `NONE`/`ALL_OLD` unless `update`.
    pub fn parse(s: Option<&str>, update: bool) -> Result<ReturnValues> {
        let rv = match s {
            None | Some("NONE") => ReturnValues::None,
            Some("ALL_OLD") => ReturnValues::AllOld,
            Some("UPDATED_OLD") => ReturnValues::UpdatedOld,
            Some("ALL_NEW") => ReturnValues::AllNew,
            Some("UPDATED_NEW") => ReturnValues::UpdatedNew,
            Some(other) => {
                return Err(validation(format!(
                    "1 validation error detected: Value '{other}' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]"
                )))
            }
        };
        if !update && !matches!(rv, ReturnValues::None | ReturnValues::AllOld) {
            return Err(validation("Return values set to invalid value"));
        }
        Ok(rv)
    }
}

/// `ReturnValuesOnConditionCheckFailure = ALL_OLD`?
pub fn old_on_failure(s: Option<&str>) -> Result<bool> {
    match s {
        None | Some("NONE") => Ok(false),
        Some("ALL_OLD") => Ok(true),
        Some(other) => Err(validation(format!(
            "1 validation error detected: Value '{other}' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]"
        ))),
    }
}

/// The expression context of one request: its placeholder maps and which were used.
pub(crate) struct Exprs<'a> {
    pub input: ExprInput<'a>,
    pub used: UsedPlaceholders,
    /// Whether the request has any expression (placeholders need one).
    has_expression: bool,
}

impl<'a> Exprs<'a> {
    pub fn new(names: Option<&'a Names>, values: Option<&'a Values>) -> Self {
        Exprs {
            input: ExprInput { names, values },
            used: UsedPlaceholders::default(),
            has_expression: false,
        }
    }

    /// Notes the expression parameters present, for [`Exprs::finish`].
    pub fn expressions(&mut self, present: &[Option<&String>]) {
        self.has_expression |= present.iter().any(Option::is_some);
    }

    /// Refuses placeholders without expressions, and unused placeholders.
    pub fn finish(&self) -> Result<()> {
        if !self.has_expression {
            if self.input.names.is_some() {
                return Err(validation(
                    "ExpressionAttributeNames can only be specified when using expressions",
                ));
            }
            if self.input.values.is_some() {
                return Err(validation(
                    "ExpressionAttributeValues can only be specified when using expressions",
                ));
            }
            return Ok(());
        }
        self.input.validate()?;
        self.used.check_all_used(&self.input)?;
        Ok(())
    }

    /// A condition from `ConditionExpression` or the legacy `Expected`.
    pub fn condition(
        &mut self,
        expression: Option<&String>,
        expected: Option<&Value>,
        conditional_operator: Option<&String>,
    ) -> Result<Option<Condition>> {
        if let (Some(_), Some(_)) = (expression, expected) {
            return Err(mixed("Expected", "ConditionExpression"));
        }
        if let Some(e) = expression {
            self.has_expression = true;
            return Ok(Some(expr::parse_condition(
                e,
                "ConditionExpression",
                &self.input,
                &mut self.used,
            )?));
        }
        if let Some(ex) = expected {
            return Ok(Some(expr::condition_from_expected(
                ex,
                conditional_operator.map(String::as_str),
            )?));
        }
        if conditional_operator.is_some() {
            return Err(validation(
                "ConditionalOperator cannot be used without Expected",
            ));
        }
        Ok(None)
    }

    /// A projection from `ProjectionExpression` or the legacy `AttributesToGet`.
    pub fn projection(
        &mut self,
        expression: Option<&String>,
        attributes_to_get: Option<&Vec<String>>,
    ) -> Result<Option<Projection>> {
        if let (Some(_), Some(_)) = (expression, attributes_to_get) {
            return Err(mixed("AttributesToGet", "ProjectionExpression"));
        }
        if let Some(e) = expression {
            self.has_expression = true;
            return Ok(Some(expr::parse_projection(
                e,
                &self.input,
                &mut self.used,
            )?));
        }
        if let Some(attrs) = attributes_to_get {
            if attrs.is_empty() {
                return Err(validation("1 validation error detected: Value '[]' at 'attributesToGet' failed to satisfy constraint: Member must have length greater than or equal to 1"));
            }
            return Ok(Some(Projection::from_attributes_to_get(attrs)));
        }
        Ok(None)
    }

    /// A filter from `FilterExpression` or a legacy `QueryFilter`/`ScanFilter`.
    pub fn filter(
        &mut self,
        expression: Option<&String>,
        legacy: Option<&Value>,
        legacy_name: &str,
        conditional_operator: Option<&String>,
    ) -> Result<Option<Condition>> {
        if let (Some(_), Some(_)) = (expression, legacy) {
            return Err(mixed(legacy_name, "FilterExpression"));
        }
        if let Some(e) = expression {
            self.has_expression = true;
            return Ok(Some(expr::parse_condition(
                e,
                "FilterExpression",
                &self.input,
                &mut self.used,
            )?));
        }
        if let Some(f) = legacy {
            return Ok(Some(expr::condition_from_legacy_filter(
                f,
                conditional_operator.map(String::as_str),
            )?));
        }
        Ok(None)
    }
}

/// DynamoDB's message for a request mixing legacy and expression parameters.
pub(crate) fn mixed(legacy: &str, expression: &str) -> crate::error::DdbError {
    validation(format!(
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{legacy}}} Expression parameters: {{{expression}}}"
    ))
}
