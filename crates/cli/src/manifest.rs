//! `gust.toml`: the functions a project deploys, their HTTP routes and URLs, and named APIs.
//!
//! ```toml
//! [functions.hello]
//! runtime = "python3.12"
//! handler = "app.handler"
//! code = "hello"            # a directory, a .zip or a .wasm file, relative to this file
//! timeout = 3               # seconds
//! memory = 128              # MB
//! reserved_concurrency = 10
//! provisioned_concurrency = 1
//! routes = ["GET /hello", "GET /hello/{name}"]   # into the API "default" (payload 2.0)...
//! api = "shop"              # ...or into this API, declared below
//! url = true                # a function URL (auth NONE); `false` deletes an existing one
//! [functions.hello.environment]
//! GREETING = "hi"
//!
//! [functions.items.url]     # a function URL with settings
//! auth_type = "AWS_IAM"     # NONE (default) or AWS_IAM
//! invoke_mode = "BUFFERED"  # or RESPONSE_STREAM
//! cors = { allow_origins = ["*"], allow_methods = ["GET"], max_age = 300 }
//!
//! [apis.shop]               # every setting optional
//! payload_format = "1.0"    # or "2.0" (the default)
//! stage = "prod"            # routes answer under /prod/...
//! domains = ["shop.localhost"]
//! integration_timeout_ms = 10000
//! cors = { allow_origins = ["*"], allow_methods = ["GET", "POST"], allow_headers = ["content-type"], max_age = 300 }
//! stage_variables = { table = "items" }
//! [apis.shop.routes]
//! "GET /items/{id}" = "items"                              # route key = function
//! "ANY /{proxy+}" = { function = "items" }
//! "GET /health" = { mock = { status = 200, body = "ok" } }  # answered by the gateway itself
//! ```
//!
//! `[tables.<name>]` declares DynamoDB tables (see [`crate::tables`]).
//!
//! [`Manifest::apis`] resolves all of it into the [`ApiDefinition`]s `gust deploy` stores, so
//! the checks of [`ApiDefinition::validate`] run before anything is deployed, and every
//! mistake is reported with the file, line and column it is on. An API with no route is not
//! stored; APIs that are in the store but not in the manifest are left alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gust_model::{ApiDefinition, CorsConfig, MockResponse, PayloadFormat, RouteSpec};
use serde::Deserialize;

/// The API that `routes` of a function go to when it names no `api`.
pub const DEFAULT_API: &str = "default";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionSpec>,
    #[serde(default)]
    pub apis: BTreeMap<String, ApiSpec>,
    /// DynamoDB tables the app needs (see [`crate::tables`]).
    #[serde(default)]
    pub tables: BTreeMap<String, crate::tables::TableSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    pub runtime: String,
    #[serde(default)]
    pub handler: String,
    pub code: PathBuf,
    pub timeout: Option<u32>,
    pub memory: Option<u32>,
    pub description: Option<String>,
    pub reserved_concurrency: Option<u32>,
    pub provisioned_concurrency: Option<u32>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Route keys (`GET /users/{id}`, `ANY /{proxy+}`, `$default`) answered by this function.
    #[serde(default)]
    pub routes: Vec<String>,
    /// The API its `routes` go into (default: [`DEFAULT_API`]).
    pub api: Option<String>,
    /// A function URL: `true`, `false` (delete it) or its settings.
    pub url: Option<UrlSpec>,
}

/// `url = true | false | { auth_type, invoke_mode, cors }`.
#[derive(Debug, Clone)]
pub enum UrlSpec {
    Enabled(bool),
    Config(UrlConfig),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlConfig {
    #[serde(default = "default_auth_type")]
    pub auth_type: String,
    pub invoke_mode: Option<String>,
    pub cors: Option<CorsSpec>,
}

fn default_auth_type() -> String {
    "NONE".to_string()
}

impl UrlSpec {
    /// The URL settings to deploy, or `None` when the manifest asks for no URL.
    pub fn config(&self) -> Option<UrlConfig> {
        match self {
            UrlSpec::Enabled(false) => None,
            UrlSpec::Enabled(true) => Some(UrlConfig {
                auth_type: default_auth_type(),
                ..UrlConfig::default()
            }),
            UrlSpec::Config(c) => Some(c.clone()),
        }
    }
}

/// CORS settings with snake_case keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSpec {
    #[serde(default)]
    pub allow_credentials: bool,
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub allow_methods: Vec<String>,
    #[serde(default)]
    pub allow_origins: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    pub max_age: Option<u32>,
}

impl CorsSpec {
    pub fn to_config(&self) -> CorsConfig {
        CorsConfig {
            allow_credentials: self.allow_credentials,
            allow_headers: self.allow_headers.clone(),
            allow_methods: self.allow_methods.clone(),
            allow_origins: self.allow_origins.clone(),
            expose_headers: self.expose_headers.clone(),
            max_age: self.max_age,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    pub payload_format: Option<PayloadFormat>,
    pub stage: Option<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    pub integration_timeout_ms: Option<u32>,
    pub cors: Option<CorsSpec>,
    #[serde(default)]
    pub stage_variables: BTreeMap<String, String>,
    /// Route key → function name, `{ function = "…" }` or `{ mock = { … } }`.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteTarget>,
}

/// `"function"` or `{ function = "…" }` or `{ mock = { … } }`.
#[derive(Debug, Clone)]
pub enum RouteTarget {
    Function(String),
    Table(RouteTable),
}

/// Deserializes "a scalar or a table" without serde's untagged enums, whose errors lose the
/// table's own message (an unknown key, a wrong type) and its position.
macro_rules! scalar_or_table {
    ($ty:ident, $expecting:literal, $visit:ident($arg:ty) => $scalar:expr, $table:ident) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn $visit<E: serde::de::Error>(self, v: $arg) -> Result<$ty, E> {
                        #[allow(clippy::redundant_closure_call, reason = "the macro's scalar arm")]
                        Ok(($scalar)(v))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<$ty, A::Error> {
                        Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                            .map($ty::$table)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

scalar_or_table!(UrlSpec, "true, false or a table of url settings", visit_bool(bool) => UrlSpec::Enabled, Config);
scalar_or_table!(RouteTarget, "a function name or a table with `function` or `mock`", visit_str(&str) => |s: &str| RouteTarget::Function(s.to_string()), Table);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTable {
    pub function: Option<String>,
    pub mock: Option<MockSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockSpec {
    #[serde(default = "default_mock_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
}

fn default_mock_status() -> u16 {
    200
}

/// A manifest error, located in the file.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ManifestError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Finds where things are in the manifest's text, for error positions.
struct Locator<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn at(&self, offset: usize, message: String) -> ManifestError {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ManifestError {
            file: self.file.display().to_string(),
            line,
            column,
            message,
        }
    }

    /// The first of `needles` found in the text (after `from` when it can be found there).
    fn find(&self, from: usize, needles: &[String]) -> usize {
        for n in needles {
            if let Some(i) = self.text.get(from..).and_then(|t| t.find(n.as_str())) {
                return from + i;
            }
            if let Some(i) = self.text.find(n.as_str()) {
                return i;
            }
        }
        from
    }

    /// Where the table `[<kind>.<name>]` (or its dotted or inline forms) starts.
    fn table(&self, kind: &str, name: &str) -> usize {
        self.find(
            0,
            &[
                format!("[{kind}.{name}]"),
                format!("[{kind}.\"{name}\"]"),
                format!("[{kind}.{name}."),
                format!("{name} ="),
                format!("{name}="),
            ],
        )
    }

    /// Where a route key is written (quoted), at or after its table.
    fn route(&self, table: usize, key: &str) -> usize {
        self.find(table, &[format!("\"{key}\""), format!("'{key}'")])
    }
}

/// Parses a manifest and checks each function's settings and every API it implies, pointing
/// at the offending line.
pub fn parse(file: &Path, text: &str) -> Result<Manifest, ManifestError> {
    let loc = Locator { file, text };
    let manifest: Manifest = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        loc.at(offset, e.message().to_string())
    })?;
    for (name, t) in &manifest.tables {
        t.validate(name)
            .map_err(|e| loc.at(loc.table("tables", name), e))?;
    }
    for (name, f) in &manifest.functions {
        let config = f.to_config(name);
        if let Err(e) = config.validate() {
            return Err(loc.at(
                loc.table("functions", name),
                format!("function {name}: {e}"),
            ));
        }
        if let Some(UrlSpec::Config(u)) = &f.url {
            let offset = loc.table("functions", name);
            if !matches!(u.auth_type.as_str(), "NONE" | "AWS_IAM") {
                return Err(loc.at(
                    offset,
                    format!(
                        "function {name}: url auth_type must be \"NONE\" or \"AWS_IAM\", not \"{}\"",
                        u.auth_type
                    ),
                ));
            }
            if let Some(m) = u
                .invoke_mode
                .as_deref()
                .filter(|m| !matches!(*m, "BUFFERED" | "RESPONSE_STREAM"))
            {
                return Err(loc.at(
                    offset,
                    format!("function {name}: url invoke_mode must be \"BUFFERED\" or \"RESPONSE_STREAM\", not \"{m}\""),
                ));
            }
            if let Some(c) = &u.cors {
                c.to_config()
                    .validate()
                    .map_err(|e| loc.at(offset, format!("function {name}: url cors: {e}")))?;
            }
        }
        if let Some(api) = &f.api {
            if api != DEFAULT_API && !manifest.apis.contains_key(api) {
                return Err(loc.at(
                    loc.table("functions", name),
                    format!("function {name}: api \"{api}\" is not declared (add an [apis.{api}] table)"),
                ));
            }
            if f.routes.is_empty() {
                return Err(loc.at(
                    loc.table("functions", name),
                    format!("function {name}: `api` is set but the function has no `routes`"),
                ));
            }
        }
    }
    manifest.resolve_apis(&loc)?;
    Ok(manifest)
}

impl Manifest {
    /// The APIs to store: every `[apis.<name>]` with at least one route, plus
    /// [`DEFAULT_API`] when functions route into it. Routes keep the manifest's order
    /// (API tables first, then functions by name).
    pub fn apis(&self) -> Vec<ApiDefinition> {
        let loc = Locator {
            file: Path::new(""),
            text: "",
        };
        // `parse` already ran the same resolution, so this cannot fail for a parsed manifest.
        self.resolve_apis(&loc).unwrap_or_default()
    }

    fn resolve_apis(&self, loc: &Locator<'_>) -> Result<Vec<ApiDefinition>, ManifestError> {
        let mut names: Vec<&str> = self.apis.keys().map(String::as_str).collect();
        if !self.apis.contains_key(DEFAULT_API)
            && self
                .functions
                .values()
                .any(|f| !f.routes.is_empty() && f.api.is_none())
        {
            names.push(DEFAULT_API);
        }
        let empty = ApiSpec::default();
        let mut out = Vec::new();
        for name in names {
            let spec = self.apis.get(name).unwrap_or(&empty);
            let table = loc.table("apis", name);
            let mut routes = Vec::new();
            for (key, target) in &spec.routes {
                let (function, mock) = match target {
                    RouteTarget::Function(f) => (f.clone(), None),
                    RouteTarget::Table(RouteTable {
                        function,
                        mock: Some(m),
                    }) => (
                        function.clone().unwrap_or_default(),
                        Some(MockResponse {
                            status: m.status,
                            headers: m.headers.clone(),
                            body: m.body.clone(),
                        }),
                    ),
                    RouteTarget::Table(RouteTable {
                        function: Some(f),
                        mock: None,
                    }) => (f.clone(), None),
                    RouteTarget::Table(RouteTable {
                        function: None,
                        mock: None,
                    }) => {
                        return Err(loc.at(
                            loc.route(table, key),
                            format!("api {name}: route \"{key}\" needs `function` or `mock`"),
                        ))
                    }
                };
                routes.push((
                    table,
                    RouteSpec {
                        route_key: key.clone(),
                        function,
                        mock,
                    },
                ));
            }
            for (fname, f) in &self.functions {
                if f.api.as_deref().unwrap_or(DEFAULT_API) != name {
                    continue;
                }
                let ftable = loc.table("functions", fname);
                for key in &f.routes {
                    routes.push((
                        ftable,
                        RouteSpec {
                            route_key: key.clone(),
                            function: fname.clone(),
                            mock: None,
                        },
                    ));
                }
            }
            if routes.is_empty() {
                continue;
            }
            let def = ApiDefinition {
                schema_version: gust_model::api::API_SCHEMA_VERSION,
                name: name.to_string(),
                payload_format: spec.payload_format.unwrap_or_default(),
                stage: spec.stage.clone(),
                domains: spec.domains.clone(),
                cors: spec.cors.as_ref().map(CorsSpec::to_config),
                integration_timeout_ms: spec
                    .integration_timeout_ms
                    .unwrap_or(gust_model::api::DEFAULT_INTEGRATION_TIMEOUT_MS),
                stage_variables: spec.stage_variables.clone(),
                routes: routes.iter().map(|(_, r)| r.clone()).collect(),
                last_modified: String::new(),
            };
            if let Err(e) = def.validate() {
                // Point at the route the message names, else at the API's table.
                let offset = routes
                    .iter()
                    .find(|(_, r)| e.0.contains(&format!("\"{}\"", r.route_key)))
                    .map_or(table, |(t, r)| loc.route(*t, &r.route_key));
                return Err(loc.at(offset, format!("api {name}: {e}")));
            }
            out.push(def);
        }
        Ok(out)
    }
}

impl FunctionSpec {
    pub fn to_config(&self, name: &str) -> gust_model::FunctionConfig {
        gust_model::FunctionConfig {
            name: name.to_string(),
            runtime: self.runtime.clone(),
            handler: self.handler.clone(),
            role: String::new(),
            description: self.description.clone().unwrap_or_default(),
            timeout: self
                .timeout
                .unwrap_or(gust_model::limits::DEFAULT_TIMEOUT_S),
            memory_size: self.memory.unwrap_or(gust_model::limits::DEFAULT_MEMORY_MB),
            ephemeral_storage: 512,
            environment: self.environment.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_functions() {
        let m = parse(
            Path::new("gust.toml"),
            "[functions.hello]\nruntime = \"python3.12\"\nhandler = \"app.handler\"\ncode = \"hello\"\n[functions.hello.environment]\nA = \"1\"\n",
        )
        .unwrap();
        let f = &m.functions["hello"];
        assert_eq!(f.environment["A"], "1");
        assert_eq!(f.to_config("hello").timeout, 3);
        assert!(m.apis().is_empty());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = parse(
            Path::new("gust.toml"),
            "[functions.a]\nruntime = \"python3.12\"\ncode = \n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_located() {
        let e = parse(
            Path::new("g.toml"),
            "\n[functions.a]\nruntime = \"python3.12\"\nhandler=\"a.b\"\ncode=\"x\"\nmemroy = 5\n",
        )
        .unwrap_err();
        assert!(e.message.contains("memroy"), "{e}");
        let e = parse(
            Path::new("g.toml"),
            "\n\n[functions.a]\nruntime = \"cobol\"\nhandler=\"a.b\"\ncode=\"x\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.to_string().starts_with("g.toml:3:1:"), "{e}");
    }

    const SHOP: &str = r#"
[functions.users]
runtime = "python3.12"
handler = "app.handler"
code = "users"
routes = ["GET /users", "POST /users", "GET /users/{id}"]
url = true

[functions.items]
runtime = "nodejs20.x"
handler = "index.handler"
code = "items"
api = "shop"
routes = ["DELETE /items/{id}"]

[functions.items.url]
auth_type = "AWS_IAM"
cors = { allow_origins = ["https://example.com"], max_age = 60 }

[apis.shop]
payload_format = "1.0"
stage = "prod"
domains = ["shop.localhost"]
integration_timeout_ms = 10000
cors = { allow_origins = ["*"], allow_methods = ["GET","POST"], allow_headers = ["content-type"], max_age = 300 }
routes = { "GET /items/{id}" = "items", "ANY /{proxy+}" = { function = "items" }, "GET /health" = { mock = { status = 200, body = "ok" } } }
"#;

    #[test]
    fn routes_urls_and_apis() {
        let m = parse(Path::new("gust.toml"), SHOP).expect("parses");
        let apis = m.apis();
        let names: Vec<&str> = apis.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["shop", "default"]);
        let shop = &apis[0];
        assert_eq!(shop.payload_format, PayloadFormat::V1);
        assert_eq!(shop.stage.as_deref(), Some("prod"));
        assert_eq!(shop.domains, ["shop.localhost"]);
        assert_eq!(shop.integration_timeout_ms, 10_000);
        let cors = shop.cors.as_ref().expect("cors");
        assert_eq!(cors.allow_methods, ["GET", "POST"]);
        assert_eq!(cors.max_age, Some(300));
        let keys: Vec<(&str, &str, bool)> = shop
            .routes
            .iter()
            .map(|r| (r.route_key.as_str(), r.function.as_str(), r.mock.is_some()))
            .collect();
        assert_eq!(
            keys,
            [
                ("ANY /{proxy+}", "items", false),
                ("GET /health", "", true),
                ("GET /items/{id}", "items", false),
                ("DELETE /items/{id}", "items", false),
            ]
        );
        let default = &apis[1];
        assert_eq!(default.payload_format, PayloadFormat::V2);
        assert_eq!(default.routes.len(), 3);
        assert!(default.routes.iter().all(|r| r.function == "users"));

        let users_url = m.functions["users"].url.as_ref().and_then(UrlSpec::config);
        assert_eq!(users_url.map(|u| u.auth_type), Some("NONE".to_string()));
        let items_url = m.functions["items"]
            .url
            .as_ref()
            .and_then(UrlSpec::config)
            .expect("url");
        assert_eq!(items_url.auth_type, "AWS_IAM");
        assert_eq!(
            items_url.cors.map(|c| c.to_config().max_age),
            Some(Some(60))
        );
    }

    fn error_of(text: &str) -> ManifestError {
        parse(Path::new("gust.toml"), text).expect_err("should be refused")
    }

    #[test]
    fn route_errors_point_at_their_line() {
        let e = error_of(
            "[functions.a]\nruntime = \"python3.12\"\nhandler = \"a.h\"\ncode = \"a\"\nroutes = [\"GET /ok\",\n  \"GET users\"]\n",
        );
        assert_eq!((e.line, e.column), (6, 3), "{e}");
        assert!(e.message.contains("Invalid route key"), "{e}");

        let e = error_of(
            "[functions.a]\nruntime = \"python3.12\"\nhandler = \"a.h\"\ncode = \"a\"\n\n[apis.x]\n[apis.x.routes]\n\"GET /a\" = \"a\"\n\"FETCH /b\" = \"a\"\n",
        );
        assert_eq!(e.line, 9, "{e}");
        assert!(e.message.starts_with("api x:"), "{e}");

        // The same key from an API table and a function.
        let e = error_of(
            "[functions.a]\nruntime = \"python3.12\"\nhandler = \"a.h\"\ncode = \"a\"\nroutes = [\"GET /a\"]\n[apis.default]\nroutes = { \"GET /a\" = \"a\" }\n",
        );
        assert!(e.message.contains("twice"), "{e}");

        let e = error_of("[apis.x]\nroutes = { \"GET /a\" = {} }\n");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("needs `function` or `mock`"), "{e}");

        let e = error_of("[apis.x]\nstage = \"a b\"\nroutes = { \"GET /a\" = \"f\" }\n");
        assert_eq!(e.line, 1, "{e}");
        assert!(e.message.contains("Invalid stage"), "{e}");
    }

    #[test]
    fn function_api_and_url_errors() {
        let f = "[functions.a]\nruntime = \"python3.12\"\nhandler = \"a.h\"\ncode = \"a\"\n";
        let e = error_of(&format!("\n{f}api = \"nope\"\nroutes = [\"GET /a\"]\n"));
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("[apis.nope]"), "{e}");
        let e = error_of(&format!("{f}url = {{ auth_type = \"OPEN\" }}\n"));
        assert!(e.message.contains("auth_type"), "{e}");
        let e = error_of(&format!("{f}url = {{ cors = {{ max_age = 90000 }} }}\n"));
        assert!(e.message.contains("MaxAge"), "{e}");
        let e = error_of(&format!("{f}url = {{ cors = {{ allow_origin = [] }} }}\n"));
        assert_eq!(e.line, 5, "{e}");
        let e = error_of(&format!("{f}url = \"yes\"\n"));
        assert_eq!(e.line, 5, "{e}");
        let e = error_of("[apis.x]\npayload_format = \"3.0\"\n");
        assert_eq!(e.line, 2, "{e}");
        // `url = false` is valid: it asks deploy to delete the URL.
        let m = parse(Path::new("g.toml"), &format!("{f}url = false\n")).expect("parses");
        assert!(m.functions["a"]
            .url
            .as_ref()
            .and_then(UrlSpec::config)
            .is_none());
    }
}
