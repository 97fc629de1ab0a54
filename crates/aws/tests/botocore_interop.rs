//! Requests exactly as botocore signs them, verified by [`gust_aws::sigv4::verify`].
//!
//! `fixtures/botocore-signed.json` holds requests captured from botocore 1.43 just before
//! sending (Lambda paths with `:` and `%`, query values with `/`, `=` and spaces, DynamoDB
//! Json10, Logs Json11, STS Query, S3 with signed payload and keys needing encoding, presigned
//! S3 and Lambda URLs, a session token); `fixtures/gen-botocore-fixtures.py` regenerates it.
//! Each must verify at its signing time, and fail when tampered with or replayed late.
//! Presigned URLs made by [`gust_aws::sigv4::presign_url`] must equal botocore's.

use gust_aws::sigv4::{presign_url, verify, Credentials, SigningParams};
use http::Uri;
use serde_json::Value;

const FIXTURES: &str = include_str!("fixtures/botocore-signed.json");

struct Case {
    name: String,
    method: String,
    uri: Uri,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn load() -> (Credentials, time::OffsetDateTime, Vec<Case>) {
    let all: Vec<Value> = serde_json::from_str(FIXTURES).expect("fixture is JSON");
    let meta = &all[0];
    let creds = Credentials {
        access_key_id: meta["access_key_id"].as_str().expect("key").to_owned(),
        secret_access_key: meta["secret_access_key"]
            .as_str()
            .expect("secret")
            .to_owned(),
    };
    let time = gust_aws::sigv4::parse_amz_date(meta["time"].as_str().expect("time")).expect("date");
    let cases = all[1..]
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().expect("name").to_owned(),
            method: c["method"].as_str().expect("method").to_owned(),
            uri: c["url"].as_str().expect("url").parse().expect("url parses"),
            headers: c["headers"]
                .as_object()
                .expect("headers")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("header value").to_owned()))
                .collect(),
            body: hex::decode(c["body_hex"].as_str().expect("body")).expect("hex body"),
        })
        .collect();
    (creds, time, cases)
}

/// The request as a server receives it: origin-form target, `Host` added by the HTTP client.
fn parts(
    case: &Case,
    uri_override: Option<&str>,
    drop_header: Option<&str>,
) -> http::request::Parts {
    let target = uri_override.map(str::to_owned).unwrap_or_else(|| {
        case.uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into())
    });
    let mut b = http::Request::builder()
        .method(case.method.as_str())
        .uri(target)
        .header("host", case.uri.authority().expect("authority").as_str());
    for (k, v) in &case.headers {
        if Some(k.to_ascii_lowercase().as_str()) != drop_header {
            b = b.header(k, v);
        }
    }
    b.body(()).expect("request").into_parts().0
}

#[test]
fn botocore_requests_verify() {
    let (creds, time, cases) = load();
    assert!(cases.len() >= 10);
    for case in &cases {
        let p = parts(case, None, None);
        let id = verify(&p, &case.body, time, &creds)
            .unwrap_or_else(|e| panic!("{}: botocore's signature rejected: {e}", case.name));
        assert_eq!(id.access_key_id, creds.access_key_id, "{}", case.name);
        assert_eq!(id.region, "us-east-1", "{}", case.name);

        // Replayed 16 minutes later (presigned: after expiry) it fails.
        let expires = case
            .uri
            .query()
            .and_then(|q| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix("X-Amz-Expires="))
            })
            .map(|s| s.parse::<i64>().expect("expires"))
            .unwrap_or(0);
        let late = time + time::Duration::seconds(expires.max(15 * 60) + 61);
        let e = verify(&p, &case.body, late, &creds).expect_err(&case.name);
        assert_eq!(e.status, 403, "{}", case.name);

        // A different path fails.
        let path = case.uri.path();
        let tampered = format!(
            "{path}x{}",
            case.uri
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default()
        );
        assert!(
            verify(
                &parts(case, Some(&tampered), None),
                &case.body,
                time,
                &creds
            )
            .is_err(),
            "{}: tampered path accepted",
            case.name
        );

        // A different body fails unless the payload is unsigned (presigned S3).
        let unsigned_body = case.name.starts_with("s3-presign");
        let mut body = case.body.clone();
        body.push(b' ');
        assert_eq!(
            verify(&p, &body, time, &creds).is_ok(),
            unsigned_body,
            "{}: tampered body",
            case.name
        );
    }
}

#[test]
fn botocore_errors_use_the_service_protocol() {
    let (creds, time, cases) = load();
    let wrong = Credentials {
        access_key_id: creds.access_key_id.clone(),
        secret_access_key: "not the secret".into(),
    };
    for case in &cases {
        let e = verify(&parts(case, None, None), &case.body, time, &wrong).expect_err(&case.name);
        let (protocol, code) = if case.name.starts_with("s3-") {
            (gust_aws::Protocol::RestXml, "SignatureDoesNotMatch")
        } else if case.name.starts_with("dynamodb-") {
            (gust_aws::Protocol::Json10, "InvalidSignatureException")
        } else if case.name.starts_with("logs-") {
            (gust_aws::Protocol::Json11, "InvalidSignatureException")
        } else if case.name.starts_with("sts-") {
            (gust_aws::Protocol::Query, "InvalidSignatureException")
        } else {
            (gust_aws::Protocol::RestJson, "InvalidSignatureException")
        };
        assert_eq!(
            (e.protocol, e.code.as_str()),
            (protocol, code),
            "{}",
            case.name
        );
    }
}

#[test]
fn signed_header_missing_fails() {
    let (creds, time, cases) = load();
    let ddb = cases
        .iter()
        .find(|c| c.name == "dynamodb-put-item")
        .expect("case");
    let e = verify(
        &parts(ddb, None, Some("x-amz-target")),
        &ddb.body,
        time,
        &creds,
    )
    .expect_err("x-amz-target was signed");
    assert_eq!(e.code, "InvalidSignatureException");
}

#[test]
fn our_presigned_urls_equal_botocores() {
    let (creds, time, cases) = load();
    for name in [
        "s3-presign-get",
        "s3-presign-put",
        "lambda-presign-get-function",
    ] {
        let case = cases.iter().find(|c| c.name == name).expect("case");
        let query = case.uri.query().expect("query");
        let expires: u64 = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("X-Amz-Expires="))
            .and_then(|s| s.parse().ok())
            .expect("expires");
        let service = if name.starts_with("s3") {
            "s3"
        } else {
            "lambda"
        };
        let bare: Uri = format!(
            "{}://{}{}",
            case.uri.scheme_str().expect("scheme"),
            case.uri.authority().expect("authority"),
            case.uri.path()
        )
        .parse()
        .expect("uri");
        let method: http::Method = case.method.parse().expect("method");
        let ours = presign_url(
            &method,
            &bare,
            &creds,
            &SigningParams {
                region: "us-east-1",
                service,
                time,
            },
            expires,
        );
        assert_eq!(ours, case.uri.to_string(), "{name}");
    }
}
