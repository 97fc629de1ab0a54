//! What both event formats read from an incoming request: the decoded query string, the body
//! as text or base64, the client address, request ids and timestamps.
//!
//! Pure functions over `http` types; no routing and no I/O.

use base64::Engine;
use bytes::Bytes;
use http::HeaderMap;
use percent_encoding::percent_decode_str;
use time::OffsetDateTime;

/// The parts of a request an event is built from, after routing.
pub(crate) struct EventInput<'a> {
    pub method: &'a str,
    /// The path as the function sees it (`rawPath`), still percent-encoded.
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
    pub source_ip: String,
    pub request_id: &'a str,
    pub now: OffsetDateTime,
    /// `requestContext.domainName` (the `Host` without port).
    pub domain_name: &'a str,
    pub api_id: &'a str,
    /// `requestContext.stage` (`$default` when there is none).
    pub stage: &'a str,
}

/// A percent-decoded path segment (`+` stays `+`, as in paths).
pub(crate) fn decode_path(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// A percent-decoded query key or value (`+` is a space, as browsers encode forms).
fn decode_query(s: &str) -> String {
    if s.contains('+') {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    } else {
        percent_decode_str(s).decode_utf8_lossy().into_owned()
    }
}

/// Decoded `(key, value)` pairs in order; repeated keys stay repeated.
pub(crate) fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode_query(k), decode_query(v)),
            None => (decode_query(p), String::new()),
        })
        .collect()
}

/// Whether a body of this `Content-Type` is passed as text (otherwise base64), as API
/// Gateway decides: text types, JSON, XML, JavaScript and forms are text when valid UTF-8.
pub(crate) fn is_text_type(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime.is_empty()
        || mime.starts_with("text/")
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
        || matches!(
            mime.as_str(),
            "application/json"
                | "application/javascript"
                | "application/ecmascript"
                | "application/xml"
                | "application/x-www-form-urlencoded"
                | "application/graphql"
                | "application/x-ndjson"
        )
}

/// The event's `body` and `isBase64Encoded`: `None` for an empty body.
pub(crate) fn event_body(headers: &HeaderMap, body: &Bytes) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if is_text_type(ct) {
        if let Ok(s) = std::str::from_utf8(body) {
            return (Some(s.to_string()), false);
        }
    }
    (
        Some(base64::engine::general_purpose::STANDARD.encode(body)),
        true,
    )
}

/// `12/Mar/2020:19:03:58 +0000`, the events' `time` / `requestTime`.
pub(crate) fn clf_time(t: OffsetDateTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
        t.day(),
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub(crate) fn epoch_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// The `Host` header (or the URI's authority) without port, for API and URL selection.
pub(crate) fn host_of(parts: &http::request::Parts) -> &str {
    let raw = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    strip_port(raw)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: `[::1]:8080`.
        return match host.find(']') {
            Some(i) => &host[..=i],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// `content-type` → `Content-Type`: REST APIs pass header names as clients usually send
/// them, while hyper hands us lower case.
pub(crate) fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
        upper = c == '-';
    }
    out
}

/// The client's address as API Gateway reports it (`sourceIp`).
pub(crate) fn source_ip(peer: std::net::SocketAddr) -> String {
    match peer.ip() {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        ip => ip.to_string(),
    }
}

/// The first label of a host name (`requestContext.domainPrefix`).
pub(crate) fn domain_prefix(domain: &str) -> &str {
    domain.split('.').next().unwrap_or(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs() {
        assert_eq!(
            parse_query("a=1&b=x%20y&a=2&c&d=e+f&&"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("a".into(), "2".into()),
                ("c".into(), "".into()),
                ("d".into(), "e f".into()),
            ]
        );
    }

    #[test]
    fn text_types() {
        assert!(is_text_type(None));
        assert!(is_text_type(Some("application/json; charset=utf-8")));
        assert!(is_text_type(Some("text/html")));
        assert!(is_text_type(Some("application/vnd.api+json")));
        assert!(!is_text_type(Some("application/octet-stream")));
        assert!(!is_text_type(Some("image/png")));
    }

    #[test]
    fn ids_and_hosts() {
        let id = gust_model::new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, gust_model::new_request_id());
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("[::1]:8080"), "[::1]");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(title_case("x-forwarded-for"), "X-Forwarded-For");
        let t = OffsetDateTime::from_unix_timestamp(1_584_039_838).unwrap();
        assert_eq!(clf_time(t), "12/Mar/2020:19:03:58 +0000");
    }
}
