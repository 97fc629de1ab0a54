//! HTTP APIs and function URLs: what the gateway serves, as the manifest, the control API and
//! the store describe it.
//!
//! An [`ApiDefinition`] is a named group of routes (`GET /users/{id}` → function) with one
//! payload format, an optional stage prefix, CORS settings and the `Host` names that select it.
//! A [`FunctionUrlConfig`] is Lambda's per-function URL (payload 2.0, no routes). Route keys are
//! parsed and checked here so the CLI, the control API and the gateway agree on them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the persisted [`ApiDefinition`] / [`FunctionUrlConfig`] layout.
pub const API_SCHEMA_VERSION: u32 = 1;

/// API Gateway's default integration timeout (REST APIs: 29 s).
pub const DEFAULT_INTEGRATION_TIMEOUT_MS: u32 = 29_000;
/// Shortest and longest integration timeouts accepted (HTTP APIs allow 50 ms to 30 s).
pub const MIN_INTEGRATION_TIMEOUT_MS: u32 = 50;
pub const MAX_INTEGRATION_TIMEOUT_MS: u32 = 30_000;

/// Which event shape a Lambda integration receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PayloadFormat {
    /// REST API proxy integration (`httpMethod`, `path`, `multiValueHeaders`, ...).
    #[serde(rename = "1.0")]
    V1,
    /// HTTP API (`version: "2.0"`, `routeKey`, `rawPath`, `requestContext.http`, ...).
    #[default]
    #[serde(rename = "2.0")]
    V2,
}

/// CORS settings, with the field names of API Gateway v2's and Lambda's `Cors` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CorsConfig {
    #[serde(default)]
    pub allow_credentials: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_origins: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// Seconds a browser may cache the preflight answer (0 to 86,400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
}

/// One route of an API: a route key and what answers it, a function or a fixed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    /// `METHOD /path` (`GET /users/{id}`, `ANY /{proxy+}`) or `$default`.
    pub route_key: String,
    /// Name of the function that answers (empty when `mock` answers).
    #[serde(default)]
    pub function: String,
    /// A fixed response the gateway returns itself, like API Gateway's MOCK integration
    /// (health checks, and the benchmark's no-op route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<MockResponse>,
}

/// The response of a MOCK route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MockResponse {
    #[serde(default = "default_mock_status")]
    pub status: u16,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
}

fn default_mock_status() -> u16 {
    200
}

/// A named HTTP API served by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiDefinition {
    #[serde(default = "api_schema_version")]
    pub schema_version: u32,
    /// `[A-Za-z0-9_-]{1,128}`; also the `apiId` in events.
    pub name: String,
    #[serde(default)]
    pub payload_format: PayloadFormat,
    /// Optional first path segment every route sits under (`prod` → `/prod/users`); events
    /// report it as `requestContext.stage` (`$default` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// `Host` names (custom domains) that select this API. An API with no domains answers on
    /// any host no other API claims.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsConfig>,
    #[serde(default = "default_integration_timeout")]
    pub integration_timeout_ms: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stage_variables: BTreeMap<String, String>,
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    /// `2024-01-02T03:04:05.000+0000`.
    #[serde(default)]
    pub last_modified: String,
}

fn api_schema_version() -> u32 {
    API_SCHEMA_VERSION
}

fn default_integration_timeout() -> u32 {
    DEFAULT_INTEGRATION_TIMEOUT_MS
}

/// Lambda's function URL configuration (`CreateFunctionUrlConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionUrlConfig {
    #[serde(default = "api_schema_version")]
    pub schema_version: u32,
    pub function: String,
    /// 32 lowercase letters and digits, as Lambda's url ids are; stable for the URL's life.
    pub url_id: String,
    /// `NONE` or `AWS_IAM`.
    pub auth_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsConfig>,
    /// `BUFFERED` or `RESPONSE_STREAM`.
    #[serde(default = "default_invoke_mode")]
    pub invoke_mode: String,
    pub creation_time: String,
    pub last_modified_time: String,
}

fn default_invoke_mode() -> String {
    "BUFFERED".to_string()
}

/// Why an API or route was refused; the message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidApi(pub String);

/// A route's HTTP method; `Any` matches every method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
    Any,
}

impl RouteMethod {
    pub fn parse(s: &str) -> Option<RouteMethod> {
        Some(match s {
            "GET" => RouteMethod::Get,
            "POST" => RouteMethod::Post,
            "PUT" => RouteMethod::Put,
            "PATCH" => RouteMethod::Patch,
            "DELETE" => RouteMethod::Delete,
            "HEAD" => RouteMethod::Head,
            "OPTIONS" => RouteMethod::Options,
            "ANY" => RouteMethod::Any,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RouteMethod::Get => "GET",
            RouteMethod::Post => "POST",
            RouteMethod::Put => "PUT",
            RouteMethod::Patch => "PATCH",
            RouteMethod::Delete => "DELETE",
            RouteMethod::Head => "HEAD",
            RouteMethod::Options => "OPTIONS",
            RouteMethod::Any => "ANY",
        }
    }

    /// Whether a request with this method (upper case) is answered by the route.
    pub fn matches(self, method: &str) -> bool {
        self == RouteMethod::Any || self.as_str() == method
    }
}

/// One segment of a route path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Matched exactly (case-sensitive, as API Gateway matches paths).
    Literal(String),
    /// `{name}`: any one non-empty segment, reported in `pathParameters`.
    Param(String),
    /// `{name+}`: the rest of the path (one or more segments); only last.
    Greedy(String),
}

/// A parsed route key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKey {
    /// `$default`: answers whatever no other route matches.
    Default,
    Route {
        method: RouteMethod,
        segments: Vec<Segment>,
    },
}

impl RouteKey {
    /// Parses `GET /users/{id}`, `ANY /{proxy+}`, `POST /`, or `$default`, with the messages
    /// API Gateway gives for malformed keys.
    pub fn parse(key: &str) -> Result<RouteKey, InvalidApi> {
        if key == "$default" {
            return Ok(RouteKey::Default);
        }
        let bad = |why: &str| {
            InvalidApi(format!(
                "Invalid route key \"{key}\": {why} (expected `METHOD /path` such as `GET /users/{{id}}`, or `$default`)"
            ))
        };
        let (method, path) = key.split_once(' ').ok_or_else(|| bad("no path"))?;
        let method = RouteMethod::parse(method).ok_or_else(|| {
            bad("the method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY")
        })?;
        if !path.starts_with('/') {
            return Err(bad("the path must start with /"));
        }
        let mut segments = Vec::new();
        let parts: Vec<&str> = if path == "/" {
            Vec::new()
        } else {
            path[1..].split('/').collect()
        };
        let mut names = std::collections::BTreeSet::new();
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() {
                return Err(bad("empty path segment"));
            }
            if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let (name, greedy) = match inner.strip_suffix('+') {
                    Some(n) => (n, true),
                    None => (inner, false),
                };
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
                {
                    return Err(bad("a path parameter name must be letters, digits, _ - ."));
                }
                if !names.insert(name.to_string()) {
                    return Err(bad("a path parameter name is used twice"));
                }
                if greedy {
                    if i + 1 != parts.len() {
                        return Err(bad("a greedy parameter {name+} must be the last segment"));
                    }
                    segments.push(Segment::Greedy(name.to_string()));
                } else {
                    segments.push(Segment::Param(name.to_string()));
                }
            } else if part.contains('{') || part.contains('}') {
                return Err(bad("a path parameter must be a whole segment"));
            } else {
                segments.push(Segment::Literal(part.to_string()));
            }
        }
        Ok(RouteKey::Route { method, segments })
    }
}

/// Checks an API's name, stage, domains, timeout and every route key.
impl ApiDefinition {
    pub fn validate(&self) -> Result<(), InvalidApi> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 128
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(InvalidApi(format!(
                "Invalid API name \"{}\": use 1 to 128 letters, digits, - or _",
                self.name
            )));
        }
        if let Some(stage) = &self.stage {
            let ok = !stage.is_empty()
                && stage.len() <= 128
                && stage
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                return Err(InvalidApi(format!(
                    "Invalid stage \"{stage}\": use 1 to 128 letters, digits, - or _"
                )));
            }
        }
        if !(MIN_INTEGRATION_TIMEOUT_MS..=MAX_INTEGRATION_TIMEOUT_MS)
            .contains(&self.integration_timeout_ms)
        {
            return Err(InvalidApi(format!(
                "Invalid integration timeout {} ms: must be between {MIN_INTEGRATION_TIMEOUT_MS} and {MAX_INTEGRATION_TIMEOUT_MS}",
                self.integration_timeout_ms
            )));
        }
        for d in &self.domains {
            if d.is_empty() || d.contains('/') || d.contains(' ') {
                return Err(InvalidApi(format!("Invalid domain name \"{d}\"")));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.routes {
            RouteKey::parse(&r.route_key)?;
            if !seen.insert(r.route_key.as_str()) {
                return Err(InvalidApi(format!(
                    "Route key \"{}\" is declared twice in API {}",
                    r.route_key, self.name
                )));
            }
            match (&r.mock, r.function.is_empty()) {
                (None, true) => {
                    return Err(InvalidApi(format!(
                        "Route \"{}\" names no function (set `function`, or `mock` for a fixed response)",
                        r.route_key
                    )))
                }
                (Some(_), false) => {
                    return Err(InvalidApi(format!(
                        "Route \"{}\" sets both `function` and `mock`; keep one",
                        r.route_key
                    )))
                }
                (Some(m), true) if !(100..=599).contains(&m.status) => {
                    return Err(InvalidApi(format!(
                        "Route \"{}\": mock status {} is not an HTTP status",
                        r.route_key, m.status
                    )))
                }
                _ => {}
            }
        }
        if let Some(c) = &self.cors {
            c.validate()?;
        }
        Ok(())
    }
}

impl CorsConfig {
    /// Lambda's limits on function URL CORS settings.
    pub fn validate(&self) -> Result<(), InvalidApi> {
        if self.max_age.is_some_and(|a| a > 86_400) {
            return Err(InvalidApi(
                "MaxAge must be between 0 and 86400 seconds".to_string(),
            ));
        }
        if self.allow_credentials && self.allow_origins.iter().any(|o| o == "*") {
            return Err(InvalidApi(
                "AllowCredentials cannot be true when AllowOrigins contains \"*\"".to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys() {
        assert_eq!(RouteKey::parse("$default").unwrap(), RouteKey::Default);
        assert_eq!(
            RouteKey::parse("GET /users/{id}").unwrap(),
            RouteKey::Route {
                method: RouteMethod::Get,
                segments: vec![
                    Segment::Literal("users".into()),
                    Segment::Param("id".into())
                ]
            }
        );
        assert_eq!(
            RouteKey::parse("ANY /{proxy+}").unwrap(),
            RouteKey::Route {
                method: RouteMethod::Any,
                segments: vec![Segment::Greedy("proxy".into())]
            }
        );
        assert_eq!(
            RouteKey::parse("POST /").unwrap(),
            RouteKey::Route {
                method: RouteMethod::Post,
                segments: vec![]
            }
        );
        for bad in [
            "GET",
            "FETCH /x",
            "GET x",
            "GET /a//b",
            "GET /{a+}/b",
            "GET /{}",
            "GET /a{b}",
            "GET /{a}/{a}",
            "get /x",
        ] {
            assert!(RouteKey::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn api_validation() {
        let mut api: ApiDefinition = serde_json::from_str(
            r#"{"name":"users","routes":[{"route_key":"GET /users","function":"f"}]}"#,
        )
        .unwrap();
        assert_eq!(api.payload_format, PayloadFormat::V2);
        assert_eq!(api.integration_timeout_ms, DEFAULT_INTEGRATION_TIMEOUT_MS);
        api.validate().unwrap();
        api.routes.push(api.routes[0].clone());
        assert!(api.validate().unwrap_err().0.contains("twice"));
        api.routes.pop();
        api.integration_timeout_ms = 10;
        assert!(api.validate().is_err());
        api.integration_timeout_ms = 1000;
        api.name = "bad name".into();
        assert!(api.validate().is_err());
    }
}
