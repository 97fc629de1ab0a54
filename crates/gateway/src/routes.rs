//! The compiled routing state: APIs by `Host`, their routes sorted by precedence, function
//! URLs by url id, and the function records they name.
//!
//! A [`Snapshot`] is built from the store when its configuration generation moves and then
//! only read. Routes are sorted once so that the first route that matches a request is the
//! most specific one (API Gateway's rule): segment by segment a literal beats a `{param}`,
//! which beats a `{greedy+}`; then a specific method beats `ANY`; `$default` is kept apart
//! and used last. Matching allocates nothing but the path parameters of the winner.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use gust_model::{
    ApiDefinition, FunctionRecord, FunctionUrlConfig, PayloadFormat, RouteKey, RouteMethod,
    RuntimeKind, Segment,
};
use gust_store::{ApiStore, FunctionStore, StoreError};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::cors::Cors;

/// Everything the gateway routes by, for one configuration generation.
pub(crate) struct Snapshot {
    /// `None` only for the empty state before the first build.
    pub generation: Option<u64>,
    pub apis: Vec<CompiledApi>,
    /// Lower-case domain → indexes into `apis`.
    pub by_domain: HashMap<String, Vec<usize>>,
    /// APIs without domains, in name order.
    pub domainless: Vec<usize>,
    /// url id → function URL.
    pub urls: HashMap<String, CompiledUrl>,
    pub functions: HashMap<String, FunctionEntry>,
}

/// A function named by a route or URL, as stored when the snapshot was built.
pub(crate) struct FunctionEntry {
    pub record: Arc<FunctionRecord>,
    /// `wasm` functions get the raw HTTP request.
    pub wasm: bool,
}

pub(crate) struct CompiledApi {
    pub name: String,
    pub format: PayloadFormat,
    pub stage: Option<String>,
    pub cors: Option<Cors>,
    pub timeout: std::time::Duration,
    pub stage_variables: Option<serde_json::Value>,
    /// Sorted most specific first.
    pub routes: Vec<CompiledRoute>,
    pub default_route: Option<CompiledRoute>,
}

pub(crate) struct CompiledRoute {
    /// As declared (`GET /users/{id}`, `$default`): the event's `routeKey`.
    pub route_key: String,
    /// The path part (`/users/{id}`), the v1 event's `resource`.
    pub resource: String,
    method: RouteMethod,
    segments: Vec<Segment>,
    /// Precedence: per segment 0 literal, 1 param, 2 greedy; then 0 method, 1 `ANY`.
    rank: Vec<u8>,
    pub target: Target,
}

pub(crate) enum Target {
    Function(String),
    Mock(MockCompiled),
}

pub(crate) struct MockCompiled {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub(crate) struct CompiledUrl {
    pub function: String,
    pub iam: bool,
    /// `InvokeMode` is `RESPONSE_STREAM`.
    pub stream: bool,
    pub cors: Option<Cors>,
}

impl Snapshot {
    pub fn empty() -> Snapshot {
        Snapshot {
            generation: None,
            apis: Vec::new(),
            by_domain: HashMap::new(),
            domainless: Vec::new(),
            urls: HashMap::new(),
            functions: HashMap::new(),
        }
    }

    /// Reads every API, URL and named function from the store.
    pub async fn build(
        generation: u64,
        apis: &dyn ApiStore,
        functions: &dyn FunctionStore,
    ) -> Result<Snapshot, StoreError> {
        let defs = apis.list_apis().await?;
        let urls = apis.list_function_urls().await?;
        let mut snap = Snapshot::from_parts(&defs, &urls);
        snap.generation = Some(generation);
        let mut names: Vec<String> = snap
            .apis
            .iter()
            .flat_map(|a| a.routes.iter().chain(a.default_route.iter()))
            .filter_map(|r| match &r.target {
                Target::Function(f) => Some(f.clone()),
                Target::Mock(_) => None,
            })
            .chain(snap.urls.values().map(|u| u.function.clone()))
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            if let Some(record) = functions.get_function(&name).await? {
                let wasm = matches!(
                    RuntimeKind::parse(&record.config.runtime),
                    Some(RuntimeKind::Wasm)
                );
                snap.functions.insert(
                    name,
                    FunctionEntry {
                        record: Arc::new(record),
                        wasm,
                    },
                );
            }
        }
        Ok(snap)
    }

    /// Compiles definitions (already validated by the control plane; a route key that does
    /// not parse is skipped with a warning rather than taking the API down).
    pub fn from_parts(defs: &[ApiDefinition], urls: &[FunctionUrlConfig]) -> Snapshot {
        let mut snap = Snapshot::empty();
        let mut defs: Vec<&ApiDefinition> = defs.iter().collect();
        defs.sort_by(|a, b| a.name.cmp(&b.name));
        for def in defs {
            let idx = snap.apis.len();
            snap.apis.push(CompiledApi::compile(def));
            if def.domains.is_empty() {
                snap.domainless.push(idx);
            }
            for d in &def.domains {
                snap.by_domain
                    .entry(d.to_ascii_lowercase())
                    .or_default()
                    .push(idx);
            }
        }
        for u in urls {
            snap.urls.insert(
                u.url_id.to_ascii_lowercase(),
                CompiledUrl {
                    function: u.function.clone(),
                    iam: u.auth_type.eq_ignore_ascii_case("AWS_IAM"),
                    stream: u.invoke_mode.eq_ignore_ascii_case("RESPONSE_STREAM"),
                    cors: u.cors.as_ref().map(Cors::compile),
                },
            );
        }
        snap
    }

    /// The APIs that may answer `host` (without port, any case): those claiming it, else
    /// the domainless ones.
    pub fn apis_for_host(&self, host: &str) -> &[usize] {
        if !self.by_domain.is_empty() {
            let found = if host.bytes().any(|b| b.is_ascii_uppercase()) {
                self.by_domain.get(&host.to_ascii_lowercase())
            } else {
                self.by_domain.get(host)
            };
            if let Some(v) = found {
                return v;
            }
        }
        &self.domainless
    }
}

impl CompiledApi {
    fn compile(def: &ApiDefinition) -> CompiledApi {
        let mut routes = Vec::new();
        let mut default_route = None;
        for spec in &def.routes {
            let key = match RouteKey::parse(&spec.route_key) {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(api = %def.name, error = %e, "skipping a route that does not parse");
                    continue;
                }
            };
            let target = match &spec.mock {
                Some(m) => Target::Mock(compile_mock(m)),
                None => Target::Function(spec.function.clone()),
            };
            match key {
                RouteKey::Default => {
                    default_route = Some(CompiledRoute {
                        route_key: spec.route_key.clone(),
                        resource: "$default".to_string(),
                        method: RouteMethod::Any,
                        segments: Vec::new(),
                        rank: Vec::new(),
                        target,
                    })
                }
                RouteKey::Route { method, segments } => {
                    let mut rank: Vec<u8> = segments
                        .iter()
                        .map(|s| match s {
                            Segment::Literal(_) => 0,
                            Segment::Param(_) => 1,
                            Segment::Greedy(_) => 2,
                        })
                        .collect();
                    // A shorter key that is a prefix of a longer one cannot match the same
                    // path unless it ends in a greedy segment, which already ranks last.
                    rank.push(u8::from(method == RouteMethod::Any));
                    let resource = spec
                        .route_key
                        .split_once(' ')
                        .map(|(_, p)| p.to_string())
                        .unwrap_or_default();
                    routes.push(CompiledRoute {
                        route_key: spec.route_key.clone(),
                        resource,
                        method,
                        segments,
                        rank,
                        target,
                    });
                }
            }
        }
        routes.sort_by(|a, b| a.rank.cmp(&b.rank));
        CompiledApi {
            name: def.name.clone(),
            format: def.payload_format,
            stage: def.stage.clone(),
            cors: def.cors.as_ref().map(Cors::compile),
            timeout: std::time::Duration::from_millis(u64::from(def.integration_timeout_ms)),
            stage_variables: (!def.stage_variables.is_empty()).then(|| {
                serde_json::Value::Object(
                    def.stage_variables
                        .iter()
                        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                        .collect(),
                )
            }),
            routes,
            default_route,
        }
    }

    /// The path below this API's stage (`/prod/users` → `/users`), or `None` when the API
    /// has a stage and the path is not under it.
    pub fn strip_stage<'p>(&self, path: &'p str) -> Option<&'p str> {
        match &self.stage {
            None => Some(path),
            Some(stage) => {
                let rest = path.strip_prefix('/')?.strip_prefix(stage.as_str())?;
                if rest.is_empty() {
                    Some("/")
                } else if rest.starts_with('/') {
                    Some(rest)
                } else {
                    None
                }
            }
        }
    }

    /// The most specific route (not `$default`) that answers `method` on `path` (below the
    /// stage), with its decoded path parameters.
    pub fn find(
        &self,
        method: &str,
        path: &str,
    ) -> Option<(&CompiledRoute, Vec<(String, String)>)> {
        let mut trimmed = path.strip_prefix('/').unwrap_or(path);
        // `/users/` is `/users`, as API Gateway treats a trailing slash.
        if let Some(t) = trimmed.strip_suffix('/') {
            trimmed = t;
        }
        let parts: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        let route = self.routes.iter().find(|r| r.matches(method, &parts))?;
        Some((route, route.params(&parts)))
    }
}

impl CompiledRoute {
    fn matches(&self, method: &str, parts: &[&str]) -> bool {
        if !self.method.matches(method) {
            return false;
        }
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                Segment::Greedy(_) => {
                    // One or more segments, the first non-empty.
                    return parts.get(i).is_some_and(|p| !p.is_empty());
                }
                Segment::Param(_) => match parts.get(i) {
                    Some(p) if !p.is_empty() => {}
                    _ => return false,
                },
                Segment::Literal(l) => match parts.get(i) {
                    Some(p) if *p == l.as_str() => {}
                    // `/caf%C3%A9` is the route `/café`; decode only when there is an escape.
                    Some(p) if p.contains('%') && crate::request::decode_path(p) == *l => {}
                    _ => return false,
                },
            }
            i += 1;
        }
        i == parts.len()
    }

    fn params(&self, parts: &[&str]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Param(name) => {
                    out.push((name.clone(), crate::request::decode_path(parts[i])));
                }
                Segment::Greedy(name) => {
                    let rest = parts[i..].join("/");
                    out.push((name.clone(), crate::request::decode_path(&rest)));
                }
                Segment::Literal(_) => {}
            }
        }
        out
    }
}

fn compile_mock(m: &gust_model::MockResponse) -> MockCompiled {
    let mut headers = HeaderMap::new();
    for (k, v) in &m.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.append(k, v);
        }
    }
    MockCompiled {
        status: StatusCode::from_u16(m.status).unwrap_or(StatusCode::OK),
        headers,
        body: Bytes::from(m.body.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gust_model::RouteSpec;

    fn api(routes: &[&str]) -> CompiledApi {
        let def = ApiDefinition {
            schema_version: 1,
            name: "a".into(),
            payload_format: PayloadFormat::V2,
            stage: None,
            domains: vec![],
            cors: None,
            integration_timeout_ms: 29_000,
            stage_variables: Default::default(),
            routes: routes
                .iter()
                .map(|k| RouteSpec {
                    route_key: k.to_string(),
                    function: k.to_string(),
                    mock: None,
                })
                .collect(),
            last_modified: String::new(),
        };
        CompiledApi::compile(&def)
    }

    fn winner(api: &CompiledApi, method: &str, path: &str) -> Option<String> {
        api.find(method, path).map(|(r, _)| r.route_key.clone())
    }

    #[test]
    fn precedence() {
        let a = api(&[
            "ANY /{proxy+}",
            "GET /users/{id}",
            "GET /users/me",
            "ANY /users/{id}",
            "GET /users/{id}/{rest+}",
            "POST /users",
            "GET /",
            "$default",
        ]);
        assert_eq!(
            winner(&a, "GET", "/users/me").as_deref(),
            Some("GET /users/me")
        );
        assert_eq!(
            winner(&a, "GET", "/users/7").as_deref(),
            Some("GET /users/{id}")
        );
        assert_eq!(
            winner(&a, "PUT", "/users/7").as_deref(),
            Some("ANY /users/{id}")
        );
        assert_eq!(
            winner(&a, "GET", "/users/7/a/b").as_deref(),
            Some("GET /users/{id}/{rest+}")
        );
        assert_eq!(winner(&a, "POST", "/users").as_deref(), Some("POST /users"));
        assert_eq!(
            winner(&a, "POST", "/users/").as_deref(),
            Some("POST /users")
        );
        assert_eq!(
            winner(&a, "GET", "/users").as_deref(),
            Some("ANY /{proxy+}")
        );
        assert_eq!(winner(&a, "GET", "/").as_deref(), Some("GET /"));
        // Greedy needs at least one segment; `$default` is not returned by `find`.
        assert_eq!(winner(&a, "POST", "/"), None);
    }

    #[test]
    fn params_are_decoded() {
        let a = api(&["GET /files/{name}", "GET /raw/{path+}"]);
        let (_, p) = a.find("GET", "/files/a%20b%2Fc").unwrap();
        assert_eq!(p, vec![("name".to_string(), "a b/c".to_string())]);
        let (_, p) = a.find("GET", "/raw/x/y%41/z").unwrap();
        assert_eq!(p, vec![("path".to_string(), "x/yA/z".to_string())]);
        assert!(a.find("GET", "/files/").is_none());
        let b = api(&["GET /café/{x}"]);
        assert!(b.find("GET", "/caf%C3%A9/1").is_some());
        assert!(a.find("GET", "/files/a/b").is_none());
        assert!(a.find("POST", "/files/a").is_none());
    }

    #[test]
    fn stages() {
        let mut a = api(&["GET /x"]);
        a.stage = Some("prod".into());
        assert_eq!(a.strip_stage("/prod/x"), Some("/x"));
        assert_eq!(a.strip_stage("/prod"), Some("/"));
        assert_eq!(a.strip_stage("/production/x"), None);
        assert_eq!(a.strip_stage("/x"), None);
    }
}
