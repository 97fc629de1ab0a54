//! A function's resource-based policy: `AddPermission`, `GetPolicy` and `RemovePermission`
//! (`/2015-03-31/functions/{name}/policy[/{StatementId}]`).
//!
//! Statements are built the way Lambda builds them (principal forms, `Condition` keys for
//! `SourceArn`, `SourceAccount`, `PrincipalOrgID`, `EventSourceToken`, `FunctionUrlAuthType`,
//! `InvokedViaFunctionUrl`) and kept as one policy document per function in the store
//! ([`gust_store::PolicyStore`]). Each change gives the function a new `RevisionId`, as in
//! Lambda, and honours a `RevisionId` precondition.
//!
//! Gust records policies but does not enforce them: every caller with the installation's
//! credentials may invoke, and a function URL with `AuthType: NONE` answers the public
//! without the `lambda:InvokeFunctionUrl` statement Lambda requires. Tools that add the
//! statement (the AWS docs' own steps, SAM, Terraform, CDK) work unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::LambdaError;
use crate::handlers;
use crate::request::Reply;
use crate::Api;

/// `AddPermissionRequest` (body part).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddPermissionRequest {
    pub statement_id: Option<String>,
    pub action: Option<String>,
    pub principal: Option<String>,
    pub source_arn: Option<String>,
    pub source_account: Option<String>,
    pub event_source_token: Option<String>,
    pub revision_id: Option<String>,
    #[serde(rename = "PrincipalOrgID")]
    pub principal_org_id: Option<String>,
    pub function_url_auth_type: Option<String>,
    pub invoked_via_function_url: Option<bool>,
}

/// The stored policy document (IAM policy JSON).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Policy {
    version: String,
    id: String,
    statement: Vec<Value>,
}

impl Policy {
    fn new() -> Policy {
        Policy {
            version: "2012-10-17".into(),
            id: "default".into(),
            statement: Vec::new(),
        }
    }

    fn sid_index(&self, sid: &str) -> Option<usize> {
        self.statement
            .iter()
            .position(|s| s.get("Sid").and_then(Value::as_str) == Some(sid))
    }
}

fn encode(v: &impl Serialize) -> Result<String, LambdaError> {
    serde_json::to_string(v).map_err(|e| LambdaError::Internal(format!("encoding the policy: {e}")))
}

async fn load(api: &Api, name: &str) -> Result<Option<Policy>, LambdaError> {
    match api.state.store.get_function_policy(name).await? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            LambdaError::Internal(format!("the stored policy of {name} is unreadable: {e}"))
        }),
    }
}

fn validation(value: &str, member: &str, rule: &str) -> LambdaError {
    LambdaError::Validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {rule}"
    ))
}

fn required<'a>(v: &'a Option<String>, member: &str) -> Result<&'a str, LambdaError> {
    v.as_deref().ok_or_else(|| {
        LambdaError::Validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// `Principal` as Lambda writes it: `*`, a service, an account (as its root ARN) or an ARN.
fn principal(p: &str) -> Value {
    if p == "*" {
        Value::from("*")
    } else if p.len() == 12 && p.chars().all(|c| c.is_ascii_digit()) {
        json!({ "AWS": format!("arn:aws:iam::{p}:root") })
    } else if p.starts_with("arn:") {
        json!({ "AWS": p })
    } else {
        json!({ "Service": p })
    }
}

/// Builds the statement `AddPermission` stores, after checking each member's constraint.
fn statement(input: &AddPermissionRequest, resource: &str) -> Result<(String, Value), LambdaError> {
    let sid = required(&input.statement_id, "statementId")?;
    let sid_ok = !sid.is_empty()
        && sid.len() <= 100
        && sid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !sid_ok {
        return Err(validation(
            sid,
            "statementId",
            "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)",
        ));
    }
    let action = required(&input.action, "action")?;
    let action_ok = action == "*"
        || action == "lambda:*"
        || action
            .strip_prefix("lambda:")
            .is_some_and(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_alphabetic()));
    if !action_ok {
        return Err(validation(
            action,
            "action",
            "Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])",
        ));
    }
    let principal_text = required(&input.principal, "principal")?;
    if principal_text.is_empty() || principal_text.chars().any(char::is_whitespace) {
        return Err(validation(
            principal_text,
            "principal",
            "Member must satisfy regular expression pattern: [^\\s]+",
        ));
    }
    let mut condition = Map::new();
    let mut add = |op: &str, key: &str, value: Value| {
        let entry = condition
            .entry(op.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(m) = entry.as_object_mut() {
            m.insert(key.to_string(), value);
        }
    };
    if let Some(a) = &input.source_account {
        if a.len() != 12 || !a.chars().all(|c| c.is_ascii_digit()) {
            return Err(validation(
                a,
                "sourceAccount",
                "Member must satisfy regular expression pattern: \\d{12}",
            ));
        }
        add("StringEquals", "AWS:SourceAccount", Value::from(a.as_str()));
    }
    if let Some(t) = &input.event_source_token {
        add(
            "StringEquals",
            "lambda:EventSourceToken",
            Value::from(t.as_str()),
        );
    }
    if let Some(o) = &input.principal_org_id {
        add(
            "StringEquals",
            "aws:PrincipalOrgID",
            Value::from(o.as_str()),
        );
    }
    if let Some(t) = &input.function_url_auth_type {
        if !matches!(t.as_str(), "NONE" | "AWS_IAM") {
            return Err(validation(
                t,
                "functionUrlAuthType",
                "Member must satisfy enum value set: [AWS_IAM, NONE]",
            ));
        }
        add(
            "StringEquals",
            "lambda:FunctionUrlAuthType",
            Value::from(t.as_str()),
        );
    }
    if input.invoked_via_function_url == Some(true) {
        add("Bool", "lambda:InvokedViaFunctionUrl", Value::from("true"));
    }
    if let Some(arn) = &input.source_arn {
        if !arn.starts_with("arn:") {
            return Err(validation(
                arn,
                "sourceArn",
                "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:([a-z]{2}(-gov)?-[a-z]+-\\d{1})?:(\\d{12})?:(.*)",
            ));
        }
        add("ArnLike", "AWS:SourceArn", Value::from(arn.as_str()));
    }
    let mut s = json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal(principal_text),
        "Action": action,
        "Resource": resource,
    });
    if !condition.is_empty() {
        s["Condition"] = Value::Object(condition);
    }
    Ok((sid.to_string(), s))
}

/// `AddPermission`: 201 with the new statement (as a JSON string).
pub(crate) async fn add_permission(
    api: &Api,
    name: &str,
    input: AddPermissionRequest,
) -> Result<Reply, LambdaError> {
    let resource = gust_model::function_arn(&api.state.region, name);
    let (sid, stmt) = statement(&input, &resource)?;
    let (sid_in, stmt_in) = (sid.clone(), stmt.clone());
    handlers::modify_policy(api, name, input.revision_id.as_deref(), move || async move {
        let mut policy = load(api, name).await?.unwrap_or_else(Policy::new);
        if policy.sid_index(&sid_in).is_some() {
            return Err(LambdaError::Conflict(format!(
                "The statement id ({sid_in}) provided already exists. Please provide a new statement id, or remove the existing statement."
            )));
        }
        policy.statement.push(stmt_in);
        api.state
            .store
            .put_function_policy(name, &encode(&policy)?)
            .await
            .map_err(LambdaError::from)
    })
    .await?;
    tracing::info!(function = name, sid = %sid, "permission added");
    Reply::json(201, &json!({ "Statement": encode(&stmt)? }))
}

/// `GetPolicy`: the policy as a JSON string, and the function's `RevisionId`.
pub(crate) async fn get_policy(api: &Api, name: &str) -> Result<Reply, LambdaError> {
    let record = handlers::require(api, name).await?;
    let policy = load(api, name)
        .await?
        .filter(|p| !p.statement.is_empty())
        .ok_or_else(|| {
            LambdaError::NotFound("The resource you requested does not exist.".into())
        })?;
    Reply::json(
        200,
        &json!({ "Policy": encode(&policy)?, "RevisionId": record.revision_id }),
    )
}

/// `RemovePermission`: 204.
pub(crate) async fn remove_permission(
    api: &Api,
    name: &str,
    sid: &str,
    revision: Option<&str>,
) -> Result<Reply, LambdaError> {
    handlers::modify_policy(api, name, revision, move || async move {
        let Some(mut policy) = load(api, name).await? else {
            return Err(LambdaError::NotFound(
                "No policy is associated with the given resource.".into(),
            ));
        };
        let Some(i) = policy.sid_index(sid) else {
            return Err(LambdaError::NotFound(format!(
                "Statement {sid} is not found in resource policy."
            )));
        };
        policy.statement.remove(i);
        if policy.statement.is_empty() {
            api.state.store.delete_function_policy(name).await?;
        } else {
            api.state
                .store
                .put_function_policy(name, &encode(&policy)?)
                .await?;
        }
        Ok(())
    })
    .await?;
    tracing::info!(function = name, sid, "permission removed");
    Ok(Reply::empty(204))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(sid: &str, action: &str, principal: &str) -> AddPermissionRequest {
        AddPermissionRequest {
            statement_id: Some(sid.into()),
            action: Some(action.into()),
            principal: Some(principal.into()),
            ..AddPermissionRequest::default()
        }
    }

    #[test]
    fn statements_as_lambda_writes_them() {
        let mut r = req("url", "lambda:InvokeFunctionUrl", "*");
        r.function_url_auth_type = Some("NONE".into());
        let (sid, s) = statement(&r, "arn:f").expect("valid");
        assert_eq!(sid, "url");
        assert_eq!(
            s,
            json!({"Sid": "url", "Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunctionUrl",
                   "Resource": "arn:f",
                   "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}})
        );
        let mut r = req("s3", "lambda:InvokeFunction", "s3.amazonaws.com");
        r.source_arn = Some("arn:aws:s3:::bucket".into());
        r.source_account = Some("123456789012".into());
        let (_, s) = statement(&r, "arn:f").expect("valid");
        assert_eq!(s["Principal"], json!({"Service": "s3.amazonaws.com"}));
        assert_eq!(
            s["Condition"],
            json!({"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::bucket"},
                   "StringEquals": {"AWS:SourceAccount": "123456789012"}})
        );
        let (_, s) = statement(&req("a", "lambda:*", "123456789012"), "arn:f").expect("valid");
        assert_eq!(
            s["Principal"],
            json!({"AWS": "arn:aws:iam::123456789012:root"})
        );
    }

    #[test]
    fn bad_members_are_validation_errors() {
        for r in [
            req("bad id", "lambda:InvokeFunction", "*"),
            req("a", "s3:GetObject", "*"),
            req("a", "lambda:InvokeFunction", "two words"),
            AddPermissionRequest {
                statement_id: Some("a".into()),
                ..AddPermissionRequest::default()
            },
        ] {
            let e = statement(&r, "arn:f").err().map(|e| e.code());
            assert_eq!(e, Some("ValidationException"), "{r:?}");
        }
    }
}
