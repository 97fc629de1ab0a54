//! Payload format 1.0 events: API Gateway's REST API Lambda proxy integration.
//!
//! `headers` / `queryStringParameters` hold the last value of each name and
//! `multiValueHeaders` / `multiValueQueryStringParameters` all of them; absent collections
//! and an empty body are `null`. `path` is below the stage while `requestContext.path`
//! includes it. Header names are title-cased (`Content-Type`) as clients usually send them.

use serde_json::{json, Map, Value};

use crate::request::{
    clf_time, domain_prefix, epoch_ms, event_body, parse_query, title_case, EventInput,
};

pub(crate) struct V1Route<'a> {
    /// `/users/{id}` (or `$default`).
    pub resource: &'a str,
    /// The request path below the stage.
    pub path: &'a str,
    pub path_parameters: &'a [(String, String)],
    pub stage_variables: Option<&'a Value>,
}

pub(crate) fn build(input: &EventInput<'_>, route: &V1Route<'_>) -> Vec<u8> {
    let mut headers = Map::new();
    let mut multi_headers = Map::new();
    for (name, value) in input.headers {
        let name = title_case(name.as_str());
        let value = Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
        match multi_headers.get_mut(&name) {
            Some(Value::Array(list)) => list.push(value.clone()),
            _ => {
                multi_headers.insert(name.clone(), Value::Array(vec![value.clone()]));
            }
        }
        headers.insert(name, value);
    }
    let query = parse_query(input.raw_query);
    let (qs, multi_qs) = if query.is_empty() {
        (Value::Null, Value::Null)
    } else {
        let mut single = Map::new();
        let mut multi = Map::new();
        for (k, v) in query {
            match multi.get_mut(&k) {
                Some(Value::Array(list)) => list.push(Value::String(v.clone())),
                _ => {
                    multi.insert(k.clone(), Value::Array(vec![Value::String(v.clone())]));
                }
            }
            single.insert(k, Value::String(v));
        }
        (Value::Object(single), Value::Object(multi))
    };
    let user_agent = input
        .headers
        .get(http::header::USER_AGENT)
        .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .unwrap_or(Value::Null);
    let path_parameters = if route.path_parameters.is_empty() {
        Value::Null
    } else {
        Value::Object(
            route
                .path_parameters
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    };
    let (body, base64) = event_body(input.headers, input.body);
    let event = json!({
        "version": "1.0",
        "resource": route.resource,
        "path": route.path,
        "httpMethod": input.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": qs,
        "multiValueQueryStringParameters": multi_qs,
        "requestContext": {
            "accountId": gust_model::ACCOUNT_ID,
            "apiId": input.api_id,
            "domainName": input.domain_name,
            "domainPrefix": domain_prefix(input.domain_name),
            "extendedRequestId": input.request_id,
            "httpMethod": input.method,
            "identity": {
                "accessKey": null,
                "accountId": null,
                "caller": null,
                "cognitoAuthenticationProvider": null,
                "cognitoAuthenticationType": null,
                "cognitoIdentityId": null,
                "cognitoIdentityPoolId": null,
                "principalOrgId": null,
                "sourceIp": input.source_ip,
                "user": null,
                "userAgent": user_agent,
                "userArn": null,
            },
            "path": input.raw_path,
            "protocol": "HTTP/1.1",
            "requestId": input.request_id,
            "requestTime": clf_time(input.now),
            "requestTimeEpoch": epoch_ms(input.now),
            "resourceId": route.resource,
            "resourcePath": route.resource,
            "stage": input.stage,
        },
        "pathParameters": path_parameters,
        "stageVariables": route.stage_variables.cloned().unwrap_or(Value::Null),
        "body": body,
        "isBase64Encoded": base64,
    });
    serde_json::to_vec(&event).unwrap_or_default()
}
