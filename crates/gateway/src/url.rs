//! Lambda function URLs: recognising them, and `AWS_IAM` authentication.
//!
//! A request reaches a function URL by `Host: <url-id>.lambda-url.<region>.<anything>` (as on
//! AWS), or by the path form `/lambda-url/<url-id>/<rest>` on any host, for clients that
//! cannot choose `Host`; the function then sees `/<rest>` as its `rawPath`.

use gust_aws::sigv4::CredentialLookup;
use serde_json::{json, Value};

/// The address of a function URL on this gateway: `<public_url>/lambda-url/<url-id>/`.
pub fn function_url(public_url: &str, url_id: &str) -> String {
    format!("{}/lambda-url/{url_id}/", public_url.trim_end_matches('/'))
}

/// How a request named a function URL.
pub(crate) struct UrlMatch<'a> {
    pub url_id: &'a str,
    /// The path the function sees (`rawPath`).
    pub raw_path: &'a str,
}

/// The url id from `Host`, if it has the form `<id>.lambda-url.<...>`.
pub(crate) fn from_host(host: &str) -> Option<&str> {
    let (id, rest) = host.split_once('.')?;
    let after = rest.strip_prefix("lambda-url")?;
    (after.is_empty() || after.starts_with('.')).then_some(id)
}

/// The url id and the rest of the path from `/lambda-url/<id>/<rest>`.
pub(crate) fn from_path(path: &str) -> Option<UrlMatch<'_>> {
    let rest = path.strip_prefix("/lambda-url/")?;
    let (id, raw_path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    (!id.is_empty()).then_some(UrlMatch {
        url_id: id,
        raw_path,
    })
}

/// The `domainName` a function URL's events report.
pub(crate) fn domain_name(url_id: &str, region: &str) -> String {
    format!("{url_id}.lambda-url.{region}.on.aws")
}

/// Verifies SigV4 for service `lambda`; returns the event's `requestContext.authorizer`.
pub(crate) fn authorize(
    parts: &http::request::Parts,
    body: &[u8],
    lookup: &dyn CredentialLookup,
) -> Option<Value> {
    let identity =
        gust_aws::sigv4::verify(parts, body, time::OffsetDateTime::now_utc(), lookup).ok()?;
    if identity.service != "lambda" {
        return None;
    }
    let account = gust_model::ACCOUNT_ID;
    Some(json!({
        "iam": {
            "accessKey": identity.access_key_id,
            "accountId": account,
            "callerId": identity.access_key_id,
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": format!("arn:aws:iam::{account}:root"),
            "userId": account,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_urls() {
        assert_eq!(
            from_host("abc123.lambda-url.us-east-1.localhost"),
            Some("abc123")
        );
        assert_eq!(from_host("abc123.lambda-url"), Some("abc123"));
        assert_eq!(from_host("abc.example.com"), None);
        assert_eq!(from_host("abc.lambda-urlx.com"), None);
        let m = from_path("/lambda-url/abc/x/y").unwrap();
        assert_eq!((m.url_id, m.raw_path), ("abc", "/x/y"));
        let m = from_path("/lambda-url/abc").unwrap();
        assert_eq!((m.url_id, m.raw_path), ("abc", "/"));
        assert!(from_path("/lambda-url/").is_none());
        assert!(from_path("/users").is_none());
        assert_eq!(
            function_url("http://127.0.0.1:8080/", "abc"),
            "http://127.0.0.1:8080/lambda-url/abc/"
        );
    }
}
