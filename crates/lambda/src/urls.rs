//! Lambda function URLs: `CreateFunctionUrlConfig`, `GetFunctionUrlConfig`,
//! `UpdateFunctionUrlConfig`, `DeleteFunctionUrlConfig` and `ListFunctionUrlConfigs`
//! (`/2021-10-31/functions/{name}/url[s]`).
//!
//! A URL configuration is stored beside the function ([`gust_store::ApiStore`]); the gateway
//! serves it. `FunctionUrl` points at the gateway (`{gateway_url}/lambda-url/{url_id}/`, which
//! any HTTP client can reach without choosing a `Host` header) or, when the server did not say
//! where its gateway is, at Lambda's own form `https://{url_id}.lambda-url.{region}.on.aws/`
//! (the gateway also routes by that `Host`).
//!
//! Gust has only `$LATEST`, so a `Qualifier` can only name an alias, and there are none: such
//! requests get Lambda's answer for an unknown alias. Changes happen under the function's lock
//! so they are ordered with `DeleteFunction`, which removes the URL in the store.
//!
//! Not enforced here: Lambda requires a `lambda:InvokeFunctionUrl` permission statement before
//! an `AuthType: NONE` URL answers the public; Gust has no resource policies and serves it
//! right away.

use gust_model::{function_arn, CorsConfig, FunctionUrlConfig};

use crate::error::LambdaError;
use crate::request::Reply;
use crate::wire::{
    CorsIn, FunctionUrlConfigOut, FunctionUrlConfigRequest, ListFunctionUrlConfigsResponse,
};
use crate::Api;

/// Lambda's message when the function (or the alias a qualifier names) is missing, in
/// `Create`, `Update` and `List`.
const FUNCTION_MISSING: &str = "Function does not exist";
/// Lambda's message when the URL configuration (or its function) is missing, in `Get`,
/// `Delete` and `Update`.
const RESOURCE_MISSING: &str = "The resource you requested does not exist.";

/// Length of a url id, as in Lambda's `https://<32 chars>.lambda-url.<region>.on.aws/`.
pub const URL_ID_LEN: usize = 32;

/// Lambda's timestamp for URL configurations: microseconds, `Z`.
fn now_micros() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// 32 random lowercase letters and digits (from two v4 UUIDs: about 165 random bits).
pub fn new_url_id() -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut id = String::with_capacity(URL_ID_LEN);
    for _ in 0..2 {
        let mut n = uuid::Uuid::new_v4().as_u128();
        for _ in 0..URL_ID_LEN / 2 {
            id.push(char::from(ALPHABET[(n % 36) as usize]));
            n /= 36;
        }
    }
    id
}

/// The `FunctionUrl` of `url_id` on this installation.
pub(crate) fn function_url(api: &Api, url_id: &str) -> String {
    match &api.state.gateway_url {
        Some(base) => format!("{}/lambda-url/{url_id}/", base.trim_end_matches('/')),
        None => format!("https://{url_id}.lambda-url.{}.on.aws/", api.state.region),
    }
}

fn output(api: &Api, c: &FunctionUrlConfig, with_modified: bool) -> FunctionUrlConfigOut {
    FunctionUrlConfigOut {
        function_url: function_url(api, &c.url_id),
        function_arn: function_arn(&api.state.region, &c.function),
        auth_type: c.auth_type.clone(),
        cors: c.cors.clone(),
        creation_time: c.creation_time.clone(),
        last_modified_time: with_modified.then(|| c.last_modified_time.clone()),
        invoke_mode: c.invoke_mode.clone(),
    }
}

fn enum_error(value: &str, member: &str, allowed: &str) -> LambdaError {
    LambdaError::Validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy enum value set: [{allowed}]"
    ))
}

fn check_auth_type(value: &str) -> Result<String, LambdaError> {
    match value {
        "NONE" | "AWS_IAM" => Ok(value.to_string()),
        other => Err(enum_error(other, "authType", "AWS_IAM, NONE")),
    }
}

fn check_invoke_mode(value: &str) -> Result<String, LambdaError> {
    match value {
        "BUFFERED" | "RESPONSE_STREAM" => Ok(value.to_string()),
        other => Err(enum_error(other, "invokeMode", "BUFFERED, RESPONSE_STREAM")),
    }
}

/// Checks `Cors` against the model's constraints (list sizes, member lengths, `MaxAge`) with
/// Lambda's messages, then the combination rules of [`CorsConfig::validate`].
fn check_cors(c: CorsIn) -> Result<CorsConfig, LambdaError> {
    let constraint = |value: String, member: &str, rule: String| {
        LambdaError::Validation(format!(
            "1 validation error detected: Value '{value}' at 'cors.{member}' failed to satisfy constraint: {rule}"
        ))
    };
    let list = |items: Option<Vec<String>>,
                member: &str,
                max_items: usize,
                min_len: usize,
                max_len: usize|
     -> Result<Vec<String>, LambdaError> {
        let items = items.unwrap_or_default();
        if items.len() > max_items {
            return Err(constraint(
                format!("[{}]", items.join(", ")),
                member,
                format!("Member must have length less than or equal to {max_items}"),
            ));
        }
        if let Some(bad) = items
            .iter()
            .find(|i| i.len() < min_len || i.len() > max_len)
        {
            return Err(constraint(
                format!("[{}]", items.join(", ")),
                member,
                format!("Member must satisfy constraint: [Member must have length less than or equal to {max_len}, Member must have length greater than or equal to {min_len}] ('{bad}')"),
            ));
        }
        Ok(items)
    };
    let max_age = match c.max_age {
        None => None,
        Some(a @ 0..=86_400) => Some(a as u32),
        Some(a) if a < 0 => {
            return Err(constraint(
                a.to_string(),
                "maxAge",
                "Member must have value greater than or equal to 0".into(),
            ))
        }
        Some(a) => {
            return Err(constraint(
                a.to_string(),
                "maxAge",
                "Member must have value less than or equal to 86400".into(),
            ))
        }
    };
    let cors = CorsConfig {
        allow_credentials: c.allow_credentials.unwrap_or(false),
        allow_headers: list(c.allow_headers, "allowHeaders", 100, 0, 1024)?,
        allow_methods: list(c.allow_methods, "allowMethods", 6, 0, 6)?,
        allow_origins: list(c.allow_origins, "allowOrigins", 100, 1, 253)?,
        expose_headers: list(c.expose_headers, "exposeHeaders", 100, 0, 1024)?,
        max_age,
    };
    cors.validate()
        .map_err(|e| LambdaError::InvalidParameter(e.0))?;
    Ok(cors)
}

/// An empty `Cors` (`{}`) means no CORS settings: stored and reported as absent.
fn non_empty(cors: CorsConfig) -> Option<CorsConfig> {
    (cors != CorsConfig::default()).then_some(cors)
}

/// `CreateFunctionUrlConfig`: 201.
pub(crate) async fn create(
    api: &Api,
    name: &str,
    qualifier: Option<&str>,
    input: FunctionUrlConfigRequest,
) -> Result<Reply, LambdaError> {
    let auth_type = match input.auth_type.as_deref() {
        Some(a) => check_auth_type(a)?,
        None => {
            return Err(LambdaError::Validation(
                "1 validation error detected: Value null at 'authType' failed to satisfy constraint: Member must not be null".into(),
            ))
        }
    };
    let invoke_mode = check_invoke_mode(input.invoke_mode.as_deref().unwrap_or("BUFFERED"))?;
    let cors = input.cors.map(check_cors).transpose()?.and_then(non_empty);
    let state = &api.state;
    let _guard = api.shared.lock(name).await;
    if state.store.get_function(name).await?.is_none() {
        return Err(LambdaError::NotFound(FUNCTION_MISSING.into()));
    }
    if qualifier.is_some() {
        return Err(LambdaError::NotFound(FUNCTION_MISSING.into()));
    }
    if state.store.get_function_url(name).await?.is_some() {
        return Err(LambdaError::Conflict(format!(
            "Failed to create function url config for [functionArn = {}]. Error message:  FunctionUrlConfig exists for this Lambda function",
            function_arn(&state.region, name)
        )));
    }
    let now = now_micros();
    let config = FunctionUrlConfig {
        schema_version: gust_model::api::API_SCHEMA_VERSION,
        function: name.to_string(),
        url_id: new_url_id(),
        auth_type,
        cors,
        invoke_mode,
        creation_time: now.clone(),
        last_modified_time: now,
    };
    state.store.put_function_url(&config).await?;
    tracing::info!(function = name, url_id = %config.url_id, auth_type = %config.auth_type, "function URL created");
    Reply::json(201, &output(api, &config, false))
}

/// The stored configuration of `name`, or the error `Get`/`Delete` give for it.
async fn existing(
    api: &Api,
    name: &str,
    qualifier: Option<&str>,
) -> Result<FunctionUrlConfig, LambdaError> {
    if qualifier.is_some() {
        return Err(LambdaError::NotFound(RESOURCE_MISSING.into()));
    }
    api.state
        .store
        .get_function_url(name)
        .await?
        .ok_or_else(|| LambdaError::NotFound(RESOURCE_MISSING.into()))
}

/// `GetFunctionUrlConfig`.
pub(crate) async fn get(
    api: &Api,
    name: &str,
    qualifier: Option<&str>,
) -> Result<Reply, LambdaError> {
    let config = existing(api, name, qualifier).await?;
    Reply::json(200, &output(api, &config, true))
}

/// `UpdateFunctionUrlConfig`: members present replace the stored ones.
pub(crate) async fn update(
    api: &Api,
    name: &str,
    qualifier: Option<&str>,
    input: FunctionUrlConfigRequest,
) -> Result<Reply, LambdaError> {
    let auth_type = input
        .auth_type
        .as_deref()
        .map(check_auth_type)
        .transpose()?;
    let invoke_mode = input
        .invoke_mode
        .as_deref()
        .map(check_invoke_mode)
        .transpose()?;
    let cors = input.cors.map(check_cors).transpose()?;
    let state = &api.state;
    let _guard = api.shared.lock(name).await;
    if state.store.get_function(name).await?.is_none() || qualifier.is_some() {
        return Err(LambdaError::NotFound(FUNCTION_MISSING.into()));
    }
    let mut config = existing(api, name, None).await?;
    if let Some(a) = auth_type {
        config.auth_type = a;
    }
    if let Some(m) = invoke_mode {
        config.invoke_mode = m;
    }
    if let Some(c) = cors {
        config.cors = non_empty(c);
    }
    config.last_modified_time = now_micros();
    state.store.put_function_url(&config).await?;
    tracing::info!(function = name, url_id = %config.url_id, "function URL updated");
    Reply::json(200, &output(api, &config, true))
}

/// `DeleteFunctionUrlConfig`: 204.
pub(crate) async fn delete(
    api: &Api,
    name: &str,
    qualifier: Option<&str>,
) -> Result<Reply, LambdaError> {
    let _guard = api.shared.lock(name).await;
    existing(api, name, qualifier).await?;
    api.state.store.delete_function_url(name).await?;
    tracing::info!(function = name, "function URL deleted");
    Ok(Reply::empty(204))
}

/// `ListFunctionUrlConfigs`: at most one configuration (`$LATEST`'s) per function, so a
/// `Marker` always lies past the end.
pub(crate) async fn list(
    api: &Api,
    name: &str,
    marker: Option<&str>,
) -> Result<Reply, LambdaError> {
    if api.state.store.get_function(name).await?.is_none() {
        return Err(LambdaError::NotFound(FUNCTION_MISSING.into()));
    }
    let configs = match (marker, api.state.store.get_function_url(name).await?) {
        (None, Some(c)) => vec![output(api, &c, true)],
        _ => Vec::new(),
    };
    Reply::json(
        200,
        &ListFunctionUrlConfigsResponse {
            function_url_configs: configs,
            next_marker: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_ids_are_32_lowercase_alphanumerics_and_differ() {
        let a = new_url_id();
        let b = new_url_id();
        assert_eq!(a.len(), URL_ID_LEN);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_ne!(a, b);
    }

    #[test]
    fn timestamps_have_microseconds() {
        let t = now_micros();
        assert_eq!(t.len(), "2024-01-02T03:04:05.123456Z".len(), "{t}");
        assert!(t.ends_with('Z'));
    }

    #[test]
    fn cors_constraints() {
        let ok = check_cors(CorsIn {
            allow_origins: Some(vec!["https://example.com".into()]),
            allow_methods: Some(vec!["GET".into(), "*".into()]),
            max_age: Some(300),
            ..CorsIn::default()
        })
        .expect("valid");
        assert_eq!(ok.max_age, Some(300));
        let e = check_cors(CorsIn {
            max_age: Some(86_401),
            ..CorsIn::default()
        })
        .err()
        .map(|e| (e.code(), e.to_string()));
        assert_eq!(
            e,
            Some((
                "ValidationException",
                "1 validation error detected: Value '86401' at 'cors.maxAge' failed to satisfy constraint: Member must have value less than or equal to 86400".to_string()
            ))
        );
        let e = check_cors(CorsIn {
            allow_methods: Some(vec!["OPTIONSX".into()]),
            ..CorsIn::default()
        })
        .err()
        .map(|e| e.code());
        assert_eq!(e, Some("ValidationException"));
        let e = check_cors(CorsIn {
            allow_credentials: Some(true),
            allow_origins: Some(vec!["*".into()]),
            ..CorsIn::default()
        })
        .err()
        .map(|e| e.code());
        assert_eq!(e, Some("InvalidParameterValueException"));
    }

    #[test]
    fn enums() {
        assert!(check_auth_type("NONE").is_ok());
        assert!(check_auth_type("AWS_IAM").is_ok());
        assert_eq!(
            check_auth_type("none").err().map(|e| e.to_string()),
            Some("1 validation error detected: Value 'none' at 'authType' failed to satisfy constraint: Member must satisfy enum value set: [AWS_IAM, NONE]".into())
        );
        assert!(check_invoke_mode("RESPONSE_STREAM").is_ok());
        assert!(check_invoke_mode("STREAM").is_err());
    }
}
