//! Payload format 2.0 events: HTTP APIs and Lambda function URLs.
//!
//! Header names are lower case and repeated headers are joined with commas; `Cookie` headers
//! move to `cookies`; repeated query keys are joined with commas in `queryStringParameters`
//! while `rawQueryString` keeps the original. Empty collections are left out, as AWS does.

use serde_json::{json, Map, Value};

use crate::request::{clf_time, domain_prefix, epoch_ms, event_body, parse_query, EventInput};

/// What differs between an HTTP API route and a function URL.
pub(crate) enum V2Kind<'a> {
    Api {
        route_key: &'a str,
        path_parameters: &'a [(String, String)],
        stage_variables: Option<&'a Value>,
    },
    /// A function URL; `authorizer` is the IAM caller for `AWS_IAM` URLs.
    Url { authorizer: Option<Value> },
}

pub(crate) fn build(input: &EventInput<'_>, kind: V2Kind<'_>) -> Vec<u8> {
    let mut headers = Map::new();
    let mut cookies: Vec<Value> = Vec::new();
    for (name, value) in input.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        if name == http::header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| Value::String(c.to_string())),
            );
            continue;
        }
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(value.into_owned()));
            }
        }
    }
    let user_agent = input
        .headers
        .get(http::header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();

    let mut event = Map::new();
    event.insert("version".into(), json!("2.0"));
    let route_key = match &kind {
        V2Kind::Api { route_key, .. } => *route_key,
        V2Kind::Url { .. } => "$default",
    };
    event.insert("routeKey".into(), json!(route_key));
    event.insert("rawPath".into(), json!(input.raw_path));
    event.insert("rawQueryString".into(), json!(input.raw_query));
    if !cookies.is_empty() {
        event.insert("cookies".into(), Value::Array(cookies));
    }
    event.insert("headers".into(), Value::Object(headers));
    let query = parse_query(input.raw_query);
    if !query.is_empty() {
        let mut q = Map::new();
        for (k, v) in query {
            match q.get_mut(&k) {
                Some(Value::String(existing)) => {
                    existing.push(',');
                    existing.push_str(&v);
                }
                _ => {
                    q.insert(k, Value::String(v));
                }
            }
        }
        event.insert("queryStringParameters".into(), Value::Object(q));
    }

    let mut ctx = Map::new();
    let (account, authorizer) = match &kind {
        V2Kind::Url { authorizer: None } => ("anonymous", None),
        V2Kind::Url {
            authorizer: Some(a),
        } => (gust_model::ACCOUNT_ID, Some(a.clone())),
        V2Kind::Api { .. } => (gust_model::ACCOUNT_ID, None),
    };
    ctx.insert("accountId".into(), json!(account));
    ctx.insert("apiId".into(), json!(input.api_id));
    if let Some(a) = authorizer {
        ctx.insert("authorizer".into(), a);
    }
    ctx.insert("domainName".into(), json!(input.domain_name));
    ctx.insert(
        "domainPrefix".into(),
        json!(domain_prefix(input.domain_name)),
    );
    ctx.insert(
        "http".into(),
        json!({
            "method": input.method,
            "path": input.raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": input.source_ip,
            "userAgent": user_agent,
        }),
    );
    ctx.insert("requestId".into(), json!(input.request_id));
    ctx.insert("routeKey".into(), json!(route_key));
    ctx.insert("stage".into(), json!(input.stage));
    ctx.insert("time".into(), json!(clf_time(input.now)));
    ctx.insert("timeEpoch".into(), json!(epoch_ms(input.now)));
    event.insert("requestContext".into(), Value::Object(ctx));

    let (body, base64) = event_body(input.headers, input.body);
    if let Some(b) = body {
        event.insert("body".into(), Value::String(b));
    }
    if let V2Kind::Api {
        path_parameters,
        stage_variables,
        ..
    } = &kind
    {
        if !path_parameters.is_empty() {
            event.insert(
                "pathParameters".into(),
                Value::Object(
                    path_parameters
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect(),
                ),
            );
        }
        event.insert("isBase64Encoded".into(), json!(base64));
        if let Some(sv) = stage_variables {
            event.insert("stageVariables".into(), (*sv).clone());
        }
    } else {
        event.insert("isBase64Encoded".into(), json!(base64));
    }
    serde_json::to_vec(&Value::Object(event)).unwrap_or_default()
}
