//! The Gust APIs extension: `PUT`/`GET`/`DELETE /gust/v1/apis/{name}` and `GET /gust/v1/apis`,
//! SigV4-signed like every control request, answering errors in Lambda's REST-JSON shape.
//!
//! The body of `PUT` and every answer is an [`ApiDefinition`] as JSON (snake_case members,
//! CORS in Lambda's PascalCase `Cors` shape); `name` may be left out of the body, and must
//! match the path when present. A `PUT` is refused unless the definition validates, every
//! routed function exists, and none of its domains is already claimed by another API. The
//! gateway serves what is stored; this module never talks to it.

use bytes::Bytes;
use gust_model::api::API_SCHEMA_VERSION;
use gust_model::ApiDefinition;
use serde_json::Value;

use crate::error::LambdaError;
use crate::handlers::find;
use crate::request::Reply;
use crate::wire::ApiList;
use crate::Api;

/// The lock key that orders every API write (function names cannot contain a NUL).
const APIS_LOCK: &str = "\0apis";

fn api_not_found(name: &str) -> LambdaError {
    LambdaError::NotFound(format!("API not found: {name}"))
}

/// Reads a `PUT` body into a definition named `name`.
fn parse_definition(name: &str, body: &[u8]) -> Result<ApiDefinition, LambdaError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| {
        LambdaError::Serialization(format!("could not parse the API definition as JSON: {e}"))
    })?;
    let Some(obj) = value.as_object_mut() else {
        return Err(LambdaError::InvalidParameter(
            "the API definition must be a JSON object".into(),
        ));
    };
    match obj.get("name") {
        None => {
            obj.insert("name".into(), Value::from(name));
        }
        Some(Value::String(n)) if n == name => {}
        Some(other) => {
            return Err(LambdaError::InvalidParameter(format!(
                "the API name in the body ({other}) does not match the name in the path ({name})"
            )))
        }
    }
    let mut def: ApiDefinition = serde_json::from_value(value)
        .map_err(|e| LambdaError::InvalidParameter(format!("invalid API definition: {e}")))?;
    if def.schema_version > API_SCHEMA_VERSION {
        return Err(LambdaError::InvalidParameter(format!(
            "API definition schema_version {} is newer than this Gust supports ({API_SCHEMA_VERSION})",
            def.schema_version
        )));
    }
    def.schema_version = API_SCHEMA_VERSION;
    def.validate()
        .map_err(|e| LambdaError::InvalidParameter(e.0))?;
    Ok(def)
}

/// `PUT /gust/v1/apis/{name}`: 201 when created, 200 when replaced; the stored definition.
pub(crate) async fn put(api: &Api, name: &str, body: Bytes) -> Result<Reply, LambdaError> {
    let mut def = parse_definition(name, &body)?;
    for route in def.routes.iter().filter(|r| r.mock.is_none()) {
        if find(api, &route.function).await?.is_none() {
            return Err(LambdaError::NotFound(format!(
                "Function not found: {} (route \"{}\" of API {name})",
                gust_model::function_arn(&api.state.region, &route.function),
                route.route_key
            )));
        }
    }
    let store = &api.state.store;
    let _guard = api.shared.lock(APIS_LOCK).await;
    let others = store.list_apis().await?;
    let mut existed = false;
    for other in &others {
        if other.name == def.name {
            existed = true;
            continue;
        }
        if let Some(d) = def
            .domains
            .iter()
            .find(|d| other.domains.iter().any(|o| o.eq_ignore_ascii_case(d)))
        {
            return Err(LambdaError::Conflict(format!(
                "Domain \"{d}\" is already served by API {}",
                other.name
            )));
        }
    }
    def.last_modified = gust_model::rfc3339_millis(time::OffsetDateTime::now_utc());
    store.put_api(&def).await?;
    tracing::info!(api = %def.name, routes = def.routes.len(), created = !existed, "API stored");
    Reply::json(if existed { 200 } else { 201 }, &def)
}

/// `GET /gust/v1/apis/{name}`.
pub(crate) async fn get(api: &Api, name: &str) -> Result<Reply, LambdaError> {
    let def = api
        .state
        .store
        .get_api(name)
        .await?
        .ok_or_else(|| api_not_found(name))?;
    Reply::json(200, &def)
}

/// `GET /gust/v1/apis`: every API, ordered by name.
pub(crate) async fn list(api: &Api) -> Result<Reply, LambdaError> {
    let apis = api.state.store.list_apis().await?;
    Reply::json(200, &ApiList { apis })
}

/// `DELETE /gust/v1/apis/{name}`: 204.
pub(crate) async fn delete(api: &Api, name: &str) -> Result<Reply, LambdaError> {
    let _guard = api.shared.lock(APIS_LOCK).await;
    if !api.state.store.delete_api(name).await? {
        return Err(api_not_found(name));
    }
    tracing::info!(api = name, "API deleted");
    Ok(Reply::empty(204))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_path_and_body() {
        let d = parse_definition("shop", br#"{"routes":[]}"#).expect("name from the path");
        assert_eq!(d.name, "shop");
        let e = parse_definition("shop", br#"{"name":"other"}"#)
            .err()
            .map(|e| e.code());
        assert_eq!(e, Some("InvalidParameterValueException"));
        let e = parse_definition("shop", b"[1]").err().map(|e| e.code());
        assert_eq!(e, Some("InvalidParameterValueException"));
        let e = parse_definition("shop", b"{").err().map(|e| e.code());
        assert_eq!(e, Some("SerializationException"));
        let e = parse_definition("bad name", b"{}").err().map(|e| e.code());
        assert_eq!(e, Some("InvalidParameterValueException"));
        let e = parse_definition(
            "shop",
            br#"{"routes":[{"route_key":"GET users","function":"f"}]}"#,
        )
        .err()
        .map(|e| e.to_string());
        assert!(e.is_some_and(|m| m.contains("Invalid route key")));
    }
}
