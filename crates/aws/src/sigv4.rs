//! Signature Version 4: signing (for the CLI and tests) and verification (for every endpoint).
//!
//! Both directions share one canonicalization, written after the SigV4 specification and
//! checked against AWS's published test suite (`tests/aws4_testsuite.rs`):
//!
//! - canonical URI: for every service but S3, the path as sent, with dot segments and repeated
//!   slashes removed, URI-encoded *again* (so `%3A` on the wire is signed as `%253A`, as the SDKs
//!   do); for S3 the path exactly as sent;
//! - canonical query: each key and value percent-decoded and re-encoded with the SigV4
//!   unreserved set, sorted by key then value (`X-Amz-Signature` left out of presigned URLs);
//! - canonical headers: lowercase names, values trimmed with inner whitespace runs collapsed,
//!   repeated headers joined with `,`;
//! - payload hash: `x-amz-content-sha256` when present (`UNSIGNED-PAYLOAD`, S3's `STREAMING-*`
//!   or a hash that must match the body), else `UNSIGNED-PAYLOAD` for presigned S3 URLs, else
//!   the SHA-256 of the body.
//!
//! Verification accepts the `Authorization` header form and the presigned query form, allows
//! 15 minutes of clock skew, ignores (but signs over) `X-Amz-Security-Token`, compares
//! signatures in constant time, and reports failures with AWS's codes and wording (S3's own
//! codes when the credential scope names `s3`).
//!
//! Deliberately absent: SigV4a, S3's chunked (`aws-chunked`) per-chunk signature checks (the
//! S3 service verifies those), and session-token validation. Header values that are not UTF-8
//! are canonicalized lossily and so do not verify.

use std::borrow::Cow;
use std::collections::HashMap;

use hmac::{Hmac, Mac};
use http::{header, HeaderMap, HeaderValue, Method, Uri};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::error::{AwsError, Protocol};

/// The only signing algorithm supported.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash of requests whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// How far a request's `X-Amz-Date` may be from the server's clock.
pub const MAX_SKEW: Duration = Duration::minutes(15);
/// The longest validity of a presigned URL (one week), in seconds.
pub const MAX_PRESIGN_EXPIRES: u64 = 604_800;

const MSG_BAD_SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const MSG_S3_BAD_SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. Check your key and signing method.";
const MSG_CONTENT_SHA_MISMATCH: &str =
    "The provided 'x-amz-content-sha256' header does not match what was computed.";

/// `YYYYMMDDTHHMMSSZ`, SigV4's timestamp form.
const AMZ_DATE: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
/// The HTTP `Date` header form (IMF-fixdate).
const HTTP_DATE: &[BorrowedFormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// Characters left unencoded in query keys and values: SigV4's unreserved set.
const QUERY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The unreserved set plus `/`, for paths.
const PATH_SET: &AsciiSet = &QUERY_SET.remove(b'/');

/// An access key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Region, service and time a request is signed for.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    pub region: &'a str,
    pub service: &'a str,
    pub time: OffsetDateTime,
}

/// Finds the secret key of an access key id.
pub trait CredentialLookup: Send + Sync {
    fn secret_for(&self, access_key_id: &str) -> Option<String>;
}

impl CredentialLookup for Credentials {
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        (access_key_id == self.access_key_id).then(|| self.secret_access_key.clone())
    }
}

/// Access key id → secret access key.
impl CredentialLookup for HashMap<String, String> {
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        self.get(access_key_id).cloned()
    }
}

/// Who signed a verified request, and for which region and service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
}

// ---------------------------------------------------------------------------------------------
// Canonicalization

/// Lowercase hex of `bytes` (the `hex` crate's iterator is several times slower, and every
/// request hashes and signs).
fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Lowercase hex of a 32-byte digest, on the stack.
fn hex32(bytes: &[u8]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, &b) in bytes.iter().take(32).enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
    out
}

/// The text of a [`hex32`] (hex digits are ASCII).
fn hex_str(hex: &[u8; 64]) -> &str {
    std::str::from_utf8(hex).unwrap_or_default()
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex_lower(&Sha256::digest(data))
}

/// Where canonical text goes: a `String` (to show it) or straight into a hasher (to sign it,
/// without building the string first).
trait Sink {
    fn put(&mut self, s: &str);
}

impl Sink for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

impl Sink for Sha256 {
    fn put(&mut self, s: &str) {
        self.update(s.as_bytes());
    }
}

impl Sink for Hmac<Sha256> {
    fn put(&mut self, s: &str) {
        self.update(s.as_bytes());
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("hmac takes keys of any length"),
    };
    mac.update(data);
    mac
}

/// Formats a time as `YYYYMMDDTHHMMSSZ` (in UTC).
pub fn format_amz_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    if !(0..=9999).contains(&t.year()) {
        return t.format(AMZ_DATE).unwrap_or_default();
    }
    // Every request is signed and verified with one of these: skip the format machinery.
    fn push(out: &mut String, n: u32, width: u32) {
        for i in (0..width).rev() {
            out.push(char::from(b'0' + ((n / 10u32.pow(i)) % 10) as u8));
        }
    }
    let mut out = String::with_capacity(16);
    push(&mut out, t.year().unsigned_abs(), 4);
    push(&mut out, u32::from(u8::from(t.month())), 2);
    push(&mut out, u32::from(t.day()), 2);
    out.push('T');
    push(&mut out, u32::from(t.hour()), 2);
    push(&mut out, u32::from(t.minute()), 2);
    push(&mut out, u32::from(t.second()), 2);
    out.push('Z');
    out
}

/// Parses `YYYYMMDDTHHMMSSZ`.
pub fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    parse_amz_date_fast(s).or_else(|| {
        PrimitiveDateTime::parse(s, AMZ_DATE)
            .ok()
            .map(PrimitiveDateTime::assume_utc)
    })
}

/// [`parse_amz_date`] for the plain 16-character form every SDK sends, without the format
/// machinery; `None` for anything else.
fn parse_amz_date_fast(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u8> {
        let v = b[r].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })?;
        u8::try_from(v).ok()
    };
    let year = b[0..4].iter().try_fold(0i32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + i32::from(c - b'0'))
    })?;
    let month = time::Month::try_from(num(4..6)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, num(6..8)?).ok()?;
    let time = time::Time::from_hms(num(9..11)?, num(11..13)?, num(13..15)?).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Percent-encodes bytes with SigV4's unreserved set (`A-Za-z0-9-_.~` stay as they are).
pub fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY_SET).to_string()
}

fn reencode_component(s: &str) -> String {
    let decoded: Vec<u8> = percent_decode_str(s).collect();
    percent_encoding::percent_encode(&decoded, QUERY_SET).to_string()
}

/// Removes `.` and `..` segments and empty segments (repeated slashes), keeping a leading and a
/// trailing slash; the empty path becomes `/` (botocore's `normalize_url_path`).
pub fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut s = String::with_capacity(path.len());
    if path.starts_with('/') {
        s.push('/');
    }
    s.push_str(&out.join("/"));
    if path.ends_with('/') && !out.is_empty() {
        s.push('/');
    }
    s
}

/// The canonical URI of `path` (as sent on the wire) for `service`: normalized and encoded
/// again for every service but `s3`, which signs the path as sent.
pub fn canonical_uri(path: &str, service: &str) -> String {
    canonical_uri_cow(path, service).into_owned()
}

/// [`canonical_uri`], borrowing `path` when it is already canonical (the root path every
/// JSON-protocol request is sent to).
fn canonical_uri_cow<'a>(path: &'a str, service: &str) -> Cow<'a, str> {
    if path == "/" {
        return Cow::Borrowed(path);
    }
    Cow::Owned(canonical_uri_slow(path, service))
}

fn canonical_uri_slow(path: &str, service: &str) -> String {
    if service == "s3" {
        if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        }
    } else {
        utf8_percent_encode(&normalize_path(path), PATH_SET).to_string()
    }
}

/// The canonical query string of a raw query string (without the `?`).
pub fn canonical_query(query: &str) -> String {
    canonical_query_filtered(query, false)
}

fn canonical_query_filtered(query: &str, skip_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (reencode_component(k), reencode_component(v))
        })
        .filter(|(k, _)| !(skip_signature && k == "X-Amz-Signature"))
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Appends a header value trimmed with inner whitespace runs collapsed to one space.
fn push_trimmed(out: &mut impl Sink, value: &[u8]) {
    let text = String::from_utf8_lossy(value);
    let mut words = text.split_whitespace();
    if let Some(first) = words.next() {
        out.put(first);
        for w in words {
            out.put(" ");
            out.put(w);
        }
    }
}

/// The canonical request. `signed_headers` are lowercase names in the order they are signed
/// (normally sorted); a signed header missing from `headers` is signed with an empty value.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    headers: &HeaderMap,
    signed_headers: &[impl AsRef<str>],
    payload_hash: &str,
) -> String {
    let mut s = String::with_capacity(256);
    write_canonical_request(
        &mut s,
        method,
        canonical_uri,
        canonical_query,
        headers,
        signed_headers,
        payload_hash,
    );
    s
}

/// The SHA-256 of [`canonical_request`], hashed as it is written.
fn canonical_request_hash(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    headers: &HeaderMap,
    signed_headers: &[impl AsRef<str>],
    payload_hash: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    write_canonical_request(
        &mut h,
        method,
        canonical_uri,
        canonical_query,
        headers,
        signed_headers,
        payload_hash,
    );
    h.finalize().into()
}

fn write_canonical_request(
    s: &mut impl Sink,
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    headers: &HeaderMap,
    signed_headers: &[impl AsRef<str>],
    payload_hash: &str,
) {
    s.put(method);
    s.put("\n");
    s.put(canonical_uri);
    s.put("\n");
    s.put(canonical_query);
    s.put("\n");
    for name in signed_headers {
        let name = name.as_ref();
        s.put(name);
        s.put(":");
        for (i, v) in headers.get_all(name).iter().enumerate() {
            if i > 0 {
                s.put(",");
            }
            push_trimmed(s, v.as_bytes());
        }
        s.put("\n");
    }
    s.put("\n");
    for (i, name) in signed_headers.iter().enumerate() {
        if i > 0 {
            s.put(";");
        }
        s.put(name.as_ref());
    }
    s.put("\n");
    s.put(payload_hash);
}

/// `<date>/<region>/<service>/aws4_request`.
pub fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// The string to sign for a canonical request signed at `amz_date` (`YYYYMMDDTHHMMSSZ`).
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Signing keys derived lately, newest last: a key only changes with the date, so almost
/// every request (signed or verified) finds its key here instead of running four HMACs.
/// AWS's own services and SDKs cache the key the same way.
static SIGNING_KEYS: std::sync::Mutex<Vec<CachedKey>> = std::sync::Mutex::new(Vec::new());
/// At most this many keys are kept (secrets × dates × regions × services seen lately).
const SIGNING_KEYS_KEPT: usize = 16;

struct CachedKey {
    secret: String,
    date: String,
    region: String,
    service: String,
    key: [u8; 32],
}

/// The signing key for a secret, date (`YYYYMMDD`), region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let hit = |c: &CachedKey| {
        c.date == date && c.service == service && c.region == region && c.secret == secret
    };
    if let Ok(cache) = SIGNING_KEYS.lock() {
        if let Some(c) = cache.iter().rev().find(|c| hit(c)) {
            return c.key;
        }
    }
    let key = derive_signing_key(secret, date, region, service);
    if let Ok(mut cache) = SIGNING_KEYS.lock() {
        if !cache.iter().any(hit) {
            if cache.len() >= SIGNING_KEYS_KEPT {
                cache.remove(0);
            }
            cache.push(CachedKey {
                secret: secret.to_owned(),
                date: date.to_owned(),
                region: region.to_owned(),
                service: service.to_owned(),
                key,
            });
        }
    }
    key
}

/// The HMAC chain of [`signing_key`].
fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes())
        .finalize()
        .into_bytes();
    let k_region = hmac_sha256(&k_date, region.as_bytes())
        .finalize()
        .into_bytes();
    let k_service = hmac_sha256(&k_region, service.as_bytes())
        .finalize()
        .into_bytes();
    hmac_sha256(&k_service, b"aws4_request")
        .finalize()
        .into_bytes()
        .into()
}

/// The hex signature of a string to sign.
pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex_lower(
        &hmac_sha256(signing_key, string_to_sign.as_bytes())
            .finalize()
            .into_bytes(),
    )
}

/// The signature (hex, on the stack) of the string to sign for a canonical request hash,
/// written straight into the HMAC: `AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex hash>`,
/// the scope being `<date>/<region>/<service>/aws4_request`.
fn signature_of(
    signing_key: &[u8; 32],
    amz_date: &str,
    date: &str,
    region: &str,
    service: &str,
    creq_hash: &[u8; 32],
) -> [u8; 64] {
    let mut mac = hmac_sha256(signing_key, ALGORITHM.as_bytes());
    for part in [
        "\n",
        amz_date,
        "\n",
        date,
        "/",
        region,
        "/",
        service,
        "/aws4_request\n",
    ] {
        mac.put(part);
    }
    mac.update(&hex32(creq_hash));
    hex32(&mac.finalize().into_bytes())
}

/// Equality that takes the same time wherever the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `host` header value for an absolute URI: host, plus the port unless it is the
/// scheme's default.
fn host_of(uri: &Uri) -> Option<String> {
    let authority = uri.authority()?;
    let host = authority.host();
    let default_port = match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    Some(match authority.port_u16() {
        Some(p) if Some(p) != default_port => format!("{host}:{p}"),
        _ => host.to_owned(),
    })
}

// ---------------------------------------------------------------------------------------------
// Signing

// Named once: a header inserted by a `&str` name copies the name every time.
const X_AMZ_DATE: http::HeaderName = http::HeaderName::from_static("x-amz-date");
const X_AMZ_CONTENT_SHA256: http::HeaderName =
    http::HeaderName::from_static("x-amz-content-sha256");

/// Adds x-amz-date, x-amz-content-sha256 and authorization (signs host and all x-amz-* headers
/// and content-type). `uri` may be absolute (host taken from it, and a `host` header inserted if
/// missing) or origin-form with an existing host header.
///
/// An `x-amz-content-sha256` already present (e.g. `UNSIGNED-PAYLOAD`) is kept and signed as
/// the payload hash; an existing `authorization` header is replaced.
pub fn sign_headers(
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    body: &[u8],
    creds: &Credentials,
    params: &SigningParams,
) {
    let amz_date = format_amz_date(params.time);
    let date = &amz_date[..8.min(amz_date.len())];
    headers.remove(header::AUTHORIZATION);
    if !headers.contains_key(header::HOST) {
        if let Some(v) = host_of(uri).and_then(|h| HeaderValue::from_str(&h).ok()) {
            headers.insert(header::HOST, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&amz_date) {
        headers.insert(X_AMZ_DATE, v);
    }
    let payload_hex;
    let payload_hash = match headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(v) => Cow::Owned(v.to_owned()),
        None => {
            payload_hex = hex32(&Sha256::digest(body));
            if let Ok(v) = HeaderValue::from_bytes(&payload_hex) {
                headers.insert(X_AMZ_CONTENT_SHA256, v);
            }
            Cow::Borrowed(hex_str(&payload_hex))
        }
    };
    let mut signed: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| *k == "host" || *k == "content-type" || k.starts_with("x-amz-"))
        .collect();
    signed.sort_unstable();
    signed.dedup();
    let creq_hash = canonical_request_hash(
        method.as_str(),
        &canonical_uri_cow(uri.path(), params.service),
        &canonical_query(uri.query().unwrap_or("")),
        headers,
        &signed,
        &payload_hash,
    );
    let key = signing_key(
        &creds.secret_access_key,
        date,
        params.region,
        params.service,
    );
    let sig = signature_of(
        &key,
        &amz_date,
        date,
        params.region,
        params.service,
        &creq_hash,
    );
    let mut authz = String::with_capacity(256);
    for part in [
        ALGORITHM,
        " Credential=",
        &creds.access_key_id,
        "/",
        date,
        "/",
        params.region,
        "/",
        params.service,
        "/aws4_request, SignedHeaders=",
    ] {
        authz.push_str(part);
    }
    for (i, name) in signed.iter().enumerate() {
        if i > 0 {
            authz.push(';');
        }
        authz.push_str(name);
    }
    authz.push_str(", Signature=");
    authz.push_str(hex_str(&sig));
    // The string's own bytes become the header value (no copy).
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(authz)) {
        headers.insert(header::AUTHORIZATION, v);
    }
}

/// A presigned URL (query form), valid for `expires` seconds.
///
/// `uri` should be absolute: its host is the one signed header. Any query it has is kept. The
/// payload is `UNSIGNED-PAYLOAD` for `s3`, else the hash of an empty body (as botocore).
pub fn presign_url(
    method: &Method,
    uri: &Uri,
    creds: &Credentials,
    params: &SigningParams,
    expires: u64,
) -> String {
    let amz_date = format_amz_date(params.time);
    let date = &amz_date[..8.min(amz_date.len())];
    let scope = credential_scope(date, params.region, params.service);
    let mut query = uri.query().unwrap_or("").to_owned();
    for (k, v) in [
        ("X-Amz-Algorithm", ALGORITHM.to_owned()),
        (
            "X-Amz-Credential",
            format!("{}/{scope}", creds.access_key_id),
        ),
        ("X-Amz-Date", amz_date.clone()),
        ("X-Amz-Expires", expires.to_string()),
        ("X-Amz-SignedHeaders", "host".to_owned()),
    ] {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(k);
        query.push('=');
        query.push_str(&uri_encode(&v));
    }
    let mut headers = HeaderMap::new();
    if let Some(v) = host_of(uri).and_then(|h| HeaderValue::from_str(&h).ok()) {
        headers.insert(header::HOST, v);
    }
    let payload = if params.service == "s3" {
        UNSIGNED_PAYLOAD
    } else {
        EMPTY_SHA256
    };
    let creq = canonical_request(
        method.as_str(),
        &canonical_uri(uri.path(), params.service),
        &canonical_query(&query),
        &headers,
        &["host".to_owned()],
        payload,
    );
    let sts = string_to_sign(&amz_date, &scope, &creq);
    let key = signing_key(
        &creds.secret_access_key,
        date,
        params.region,
        params.service,
    );
    let sig = signature(&key, &sts);
    let prefix = match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
        _ => String::new(),
    };
    let path = if uri.path().is_empty() {
        "/"
    } else {
        uri.path()
    };
    format!("{prefix}{path}?{query}&X-Amz-Signature={sig}")
}

// ---------------------------------------------------------------------------------------------
// Verification

/// Why a request failed verification; rendered with AWS's (or S3's) code and wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No `Authorization` header and no presigned query.
    #[error("missing authentication token")]
    Missing,
    /// The `Authorization` header or presigned query is malformed; AWS's message.
    #[error("incomplete signature: {0}")]
    Incomplete(String),
    /// The access key id is not known.
    #[error("unknown access key id")]
    UnknownKey,
    /// The signature does not match; the message when it is not AWS's standard one.
    #[error("signature mismatch")]
    Signature(Option<String>),
    /// `x-amz-content-sha256` does not match the body.
    #[error("x-amz-content-sha256 does not match the body")]
    ContentSha256Mismatch,
    /// The request time is more than 15 minutes from now; AWS's message.
    #[error("request time too skewed: {0}")]
    Skewed(String),
    /// A presigned URL used after its `X-Amz-Expires`.
    #[error("presigned request has expired")]
    Expired,
}

impl VerifyError {
    /// The AWS error for this failure; `s3` selects S3's codes.
    pub fn to_aws_error(&self, s3: bool, presigned: bool, protocol: Protocol) -> AwsError {
        let e = match (self, s3) {
            (VerifyError::Missing, false) => AwsError::new(
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
            (VerifyError::Missing, true) => AwsError::new(403, "AccessDenied", "Access Denied"),
            (VerifyError::Incomplete(m), false) => {
                AwsError::new(403, "IncompleteSignatureException", m.clone())
            }
            (VerifyError::Incomplete(m), true) if presigned => {
                AwsError::new(400, "AuthorizationQueryParametersError", m.clone())
            }
            (VerifyError::Incomplete(m), true) => {
                AwsError::new(400, "AuthorizationHeaderMalformed", m.clone())
            }
            (VerifyError::UnknownKey, false) => AwsError::new(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
            (VerifyError::UnknownKey, true) => AwsError::new(
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            ),
            (VerifyError::Signature(m), false) => AwsError::new(
                403,
                "InvalidSignatureException",
                m.as_deref().unwrap_or(MSG_BAD_SIGNATURE),
            ),
            (VerifyError::Signature(m), true) => AwsError::new(
                403,
                "SignatureDoesNotMatch",
                m.as_deref().unwrap_or(MSG_S3_BAD_SIGNATURE),
            ),
            (VerifyError::ContentSha256Mismatch, false) => {
                AwsError::new(403, "InvalidSignatureException", MSG_CONTENT_SHA_MISMATCH)
            }
            (VerifyError::ContentSha256Mismatch, true) => {
                AwsError::new(400, "XAmzContentSHA256Mismatch", MSG_CONTENT_SHA_MISMATCH)
            }
            (VerifyError::Skewed(m), false) => {
                AwsError::new(403, "InvalidSignatureException", m.clone())
            }
            (VerifyError::Skewed(_), true) if presigned => {
                AwsError::new(403, "AccessDenied", "Request is not yet valid")
            }
            (VerifyError::Skewed(_), true) => AwsError::new(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
            ),
            (VerifyError::Expired, false) => {
                AwsError::new(403, "InvalidSignatureException", "Request has expired")
            }
            (VerifyError::Expired, true) => {
                AwsError::new(403, "AccessDenied", "Request has expired")
            }
        };
        e.with_protocol(protocol)
    }
}

/// What a request claims about its signature, from either form, borrowed from the request.
struct Claim<'a> {
    presigned: bool,
    access_key_id: &'a str,
    scope_date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<Cow<'a, str>>,
    signature: &'a str,
    /// The request time as sent (`YYYYMMDDTHHMMSSZ` form for the string to sign).
    amz_date: Cow<'a, str>,
    time: OffsetDateTime,
    expires: Option<u64>,
}

/// Splits `AKID/date/region/service/aws4_request`.
fn parse_credential(cred: &str) -> Result<(&str, &str, &str, &str), VerifyError> {
    let mut parts = cred.rsplitn(5, '/');
    let (Some(terminator), Some(service), Some(region), Some(date), Some(akid)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(VerifyError::Incomplete(format!(
            "Credential should be of the form AccessKeyId/YYYYMMDD/Region/Service/aws4_request, not '{cred}'."
        )));
    };
    if akid.is_empty() {
        return Err(VerifyError::Incomplete(format!(
            "Credential should be of the form AccessKeyId/YYYYMMDD/Region/Service/aws4_request, not '{cred}'."
        )));
    }
    if terminator != "aws4_request" {
        return Err(VerifyError::Incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::Incomplete(format!(
            "Credential should be scoped to a valid date, not '{date}'."
        )));
    }
    if region.is_empty() {
        return Err(VerifyError::Incomplete(
            "Credential should be scoped to a valid region.".to_owned(),
        ));
    }
    if service.is_empty() {
        return Err(VerifyError::Incomplete(
            "Credential should be scoped to a valid service.".to_owned(),
        ));
    }
    Ok((akid, date, region, service))
}

fn parse_signed_headers(s: &str) -> Vec<Cow<'_, str>> {
    let mut out = Vec::with_capacity(s.bytes().filter(|b| *b == b';').count() + 1);
    out.extend(
        s.split(';')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| {
                if h.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(h.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(h)
                }
            }),
    );
    out
}

fn bad_date(v: &str) -> VerifyError {
    VerifyError::Incomplete(format!(
        "Date must be in ISO-8601 'basic format'. Got '{v}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

/// The decoded query parameters (first occurrence of each key).
fn query_params(query: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for p in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        let k = percent_decode_str(k).decode_utf8_lossy().into_owned();
        let v = percent_decode_str(v).decode_utf8_lossy().into_owned();
        out.entry(k).or_insert(v);
    }
    out
}

fn is_presigned_query(params: &HashMap<String, String>) -> bool {
    ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"]
        .iter()
        .any(|k| params.contains_key(*k))
}

fn claim_from_header<'a>(authz: &'a str, headers: &'a HeaderMap) -> Result<Claim<'a>, VerifyError> {
    let authz = authz.trim();
    let (algorithm, rest) = authz.split_once(' ').unwrap_or((authz, ""));
    if algorithm != ALGORITHM {
        return Err(VerifyError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'. Authorization={authz}"
        )));
    }
    let mut credential = None;
    let mut signed = None;
    let mut sig = None;
    for pair in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(VerifyError::Incomplete(format!(
                "Invalid key=value pair (missing equal-sign) in Authorization header: '{pair}'."
            )));
        };
        match k.trim() {
            "Credential" => credential = Some(v.trim()),
            "SignedHeaders" => signed = Some(v.trim()),
            "Signature" => sig = Some(v.trim()),
            _ => {}
        }
    }
    let date_header = headers
        .get("x-amz-date")
        .map(|v| (true, v))
        .or_else(|| headers.get(header::DATE).map(|v| (false, v)));
    let mut missing = String::new();
    for (name, present) in [
        ("Credential", credential.is_some()),
        ("Signature", sig.is_some()),
        ("SignedHeaders", signed.is_some()),
    ] {
        if !present {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if date_header.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    let (Some(credential), Some(signed), Some(sig), Some((is_amz, date_value))) =
        (credential, signed, sig, date_header)
    else {
        return Err(VerifyError::Incomplete(format!(
            "{missing}Authorization={authz}"
        )));
    };
    let (access_key_id, scope_date, region, service) = parse_credential(credential)?;
    let date_str = date_value
        .to_str()
        .map_err(|_| bad_date("<binary>"))?
        .trim();
    // The plain form every SDK sends is already what the string to sign needs.
    let (time, amz_date) = match parse_amz_date_fast(date_str).filter(|_| is_amz) {
        Some(time) => (time, Cow::Borrowed(date_str)),
        None => {
            let time = if is_amz {
                parse_amz_date(date_str).ok_or_else(|| bad_date(date_str))?
            } else {
                PrimitiveDateTime::parse(date_str, HTTP_DATE)
                    .map(PrimitiveDateTime::assume_utc)
                    .map_err(|_| bad_date(date_str))?
            };
            (time, Cow::Owned(format_amz_date(time)))
        }
    };
    Ok(Claim {
        presigned: false,
        access_key_id,
        scope_date,
        region,
        service,
        signed_headers: parse_signed_headers(signed),
        signature: sig,
        amz_date,
        time,
        expires: None,
    })
}

fn claim_from_query(params: &HashMap<String, String>) -> Result<Claim<'_>, VerifyError> {
    let get = |k: &str| params.get(k).map(String::as_str);
    let (
        Some(algorithm),
        Some(credential),
        Some(signature),
        Some(date),
        Some(signed),
        Some(expires),
    ) = (
        get("X-Amz-Algorithm"),
        get("X-Amz-Credential"),
        get("X-Amz-Signature"),
        get("X-Amz-Date"),
        get("X-Amz-SignedHeaders"),
        get("X-Amz-Expires"),
    )
    else {
        return Err(VerifyError::Incomplete(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.".to_owned(),
        ));
    };
    if algorithm != ALGORITHM {
        return Err(VerifyError::Incomplete(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"".to_owned(),
        ));
    }
    let expires: u64 = expires
        .parse()
        .map_err(|_| VerifyError::Incomplete("X-Amz-Expires should be a number".to_owned()))?;
    if expires == 0 {
        return Err(VerifyError::Incomplete(
            "X-Amz-Expires must be non-negative".to_owned(),
        ));
    }
    if expires > MAX_PRESIGN_EXPIRES {
        return Err(VerifyError::Incomplete(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES}"
        )));
    }
    let (access_key_id, scope_date, region, service) = parse_credential(credential)?;
    let time = parse_amz_date(date).ok_or_else(|| bad_date(date))?;
    Ok(Claim {
        presigned: true,
        access_key_id,
        scope_date,
        region,
        service,
        signed_headers: parse_signed_headers(signed),
        signature,
        amz_date: Cow::Borrowed(date),
        time,
        expires: Some(expires),
    })
}

fn check_time(claim: &Claim<'_>, now: OffsetDateTime) -> Result<(), VerifyError> {
    let now = now.to_offset(UtcOffset::UTC);
    let earliest = now - MAX_SKEW;
    let latest = now + MAX_SKEW;
    if claim.time > latest {
        return Err(VerifyError::Skewed(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            claim.amz_date,
            format_amz_date(latest),
            format_amz_date(now)
        )));
    }
    match claim.expires {
        Some(expires) => {
            let secs = i64::try_from(expires).unwrap_or(i64::MAX);
            if now > claim.time + Duration::seconds(secs) {
                return Err(VerifyError::Expired);
            }
        }
        None => {
            if claim.time < earliest {
                return Err(VerifyError::Skewed(format!(
                    "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                    claim.amz_date,
                    format_amz_date(earliest),
                    format_amz_date(now)
                )));
            }
        }
    }
    Ok(())
}

/// Verifies header-form (Authorization: AWS4-HMAC-SHA256 ...) and presigned-query-form
/// (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders,
/// X-Amz-Signature) requests.
///
/// The error is rendered in the protocol of the request ([`crate::auth::protocol_of`]).
pub fn verify(
    parts: &http::request::Parts,
    body: &[u8],
    now: OffsetDateTime,
    lookup: &dyn CredentialLookup,
) -> Result<Identity, AwsError> {
    verify_inner(parts, body, now, lookup).map_err(|(e, s3, presigned)| {
        e.to_aws_error(s3, presigned, crate::auth::protocol_of(parts))
    })
}

/// [`verify`], with the failure as a [`VerifyError`] plus whether the request is for S3 and
/// presigned.
fn verify_inner(
    parts: &http::request::Parts,
    body: &[u8],
    now: OffsetDateTime,
    lookup: &dyn CredentialLookup,
) -> Result<Identity, (VerifyError, bool, bool)> {
    // Only failures need the protocol (it costs a look at the credential scope).
    let s3_hint = || crate::auth::protocol_of(parts) == Protocol::RestXml;
    let query = parts.uri.query().unwrap_or("");
    let params = if query.is_empty() {
        HashMap::new()
    } else {
        query_params(query)
    };
    let authz = parts.headers.get(header::AUTHORIZATION);
    let presigned = is_presigned_query(&params);
    let claim = match (authz, presigned) {
        (Some(_), true) => {
            return Err((
                VerifyError::Incomplete(
                    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified".to_owned(),
                ),
                s3_hint(),
                true,
            ))
        }
        (Some(v), false) => {
            let v = v.to_str().map_err(|_| {
                (
                    VerifyError::Incomplete("Authorization header is not valid text".to_owned()),
                    s3_hint(),
                    false,
                )
            })?;
            claim_from_header(v, &parts.headers)
        }
        (None, true) => claim_from_query(&params),
        (None, false) => Err(VerifyError::Missing),
    }
    .map_err(|e| (e, s3_hint(), presigned))?;
    let s3 = claim.service == "s3";
    let fail = |e: VerifyError| (e, s3, claim.presigned);

    if !claim.signed_headers.iter().any(|h| h == "host") {
        return Err(fail(VerifyError::Incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        )));
    }
    let Some(secret) = lookup.secret_for(claim.access_key_id) else {
        return Err(fail(VerifyError::UnknownKey));
    };
    if *claim.scope_date != claim.amz_date[..8.min(claim.amz_date.len())] {
        return Err(fail(VerifyError::Signature(Some(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            claim.scope_date,
            &claim.amz_date[..8.min(claim.amz_date.len())],
            claim.amz_date
        )))));
    }
    check_time(&claim, now).map_err(fail)?;

    let body_hex;
    let payload_hash: &str = match parts
        .headers
        .get("x-amz-content-sha256")
        .map(|v| v.to_str().unwrap_or_default().trim())
    {
        Some(h) if h == UNSIGNED_PAYLOAD => h,
        Some(h) if s3 && h.starts_with("STREAMING-") => h,
        Some(h) => {
            body_hex = hex32(&Sha256::digest(body));
            if !h.eq_ignore_ascii_case(hex_str(&body_hex)) {
                return Err(fail(VerifyError::ContentSha256Mismatch));
            }
            h
        }
        None if claim.presigned && s3 => UNSIGNED_PAYLOAD,
        None => {
            body_hex = hex32(&Sha256::digest(body));
            hex_str(&body_hex)
        }
    };

    // HTTP/2 requests carry the host in the URI, not a header.
    let owned_headers;
    let mut headers = &parts.headers;
    if !headers.contains_key(header::HOST) {
        if let Some(v) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            let mut h = headers.clone();
            h.insert(header::HOST, v);
            owned_headers = h;
            headers = &owned_headers;
        }
    }
    let canonical_uri = canonical_uri_cow(parts.uri.path(), claim.service);
    let canonical_query = canonical_query_filtered(query, claim.presigned);
    let creq_hash = canonical_request_hash(
        parts.method.as_str(),
        &canonical_uri,
        &canonical_query,
        headers,
        &claim.signed_headers,
        payload_hash,
    );
    let key = signing_key(&secret, claim.scope_date, claim.region, claim.service);
    let expected = signature_of(
        &key,
        &claim.amz_date,
        claim.scope_date,
        claim.region,
        claim.service,
        &creq_hash,
    );
    if !constant_time_eq(&expected, claim.signature.as_bytes()) {
        tracing::debug!(
            access_key_id = %claim.access_key_id,
            canonical_request = %canonical_request(
                parts.method.as_str(),
                &canonical_uri,
                &canonical_query,
                headers,
                &claim.signed_headers,
                payload_hash,
            ),
            "sigv4 signature mismatch"
        );
        return Err(fail(VerifyError::Signature(None)));
    }
    Ok(Identity {
        access_key_id: claim.access_key_id.to_owned(),
        region: claim.region.to_owned(),
        service: claim.service.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2015-08-30 12:36:00 UTC);

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        }
    }

    fn params(service: &str) -> SigningParams<'_> {
        SigningParams {
            region: "us-east-1",
            service,
            time: T0,
        }
    }

    /// Signs a request with `sign_headers` and returns it as the server sees it (origin-form).
    fn signed(
        method: &str,
        url: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        service: &str,
    ) -> http::request::Parts {
        let uri: Uri = url.parse().expect("uri");
        let method: Method = method.parse().expect("method");
        let mut headers = HeaderMap::new();
        for (k, v) in extra {
            headers.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        sign_headers(
            &method,
            &uri,
            &mut headers,
            body,
            &creds(),
            &params(service),
        );
        let mut req = http::Request::builder()
            .method(method)
            .uri(uri.path_and_query().expect("path").as_str())
            .body(())
            .expect("request");
        *req.headers_mut() = headers;
        req.into_parts().0
    }

    fn verify_at(
        parts: &http::request::Parts,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Identity, AwsError> {
        verify(parts, body, now, &creds())
    }

    #[test]
    fn amz_dates_match_the_time_crate() {
        let mut t = OffsetDateTime::from_unix_timestamp(0).expect("epoch");
        // Steps that walk through months, leap days, year ends and every time-of-day digit.
        for _ in 0..2_000 {
            let slow = t.format(AMZ_DATE).expect("format");
            assert_eq!(format_amz_date(t), slow);
            let parsed = parse_amz_date(&slow).expect("parse");
            assert_eq!(
                parsed,
                PrimitiveDateTime::parse(&slow, AMZ_DATE)
                    .expect("parse")
                    .assume_utc()
            );
            t += Duration::seconds(1_234_567);
        }
        let offset = OffsetDateTime::from_unix_timestamp(1_700_000_000)
            .expect("time")
            .to_offset(UtcOffset::from_hms(5, 30, 0).expect("offset"));
        assert_eq!(format_amz_date(offset), "20231114T221320Z");
        for bad in [
            "20230230T000000Z",
            "20231314T000000Z",
            "20231114T246000Z",
            "20231114T226100Z",
            "2023111xT221320Z",
            "20231114 221320Z",
            "20231114T221320",
            "",
        ] {
            assert_eq!(
                parse_amz_date(bad),
                PrimitiveDateTime::parse(bad, AMZ_DATE)
                    .ok()
                    .map(PrimitiveDateTime::assume_utc),
                "{bad}"
            );
        }
    }

    #[test]
    fn cached_signing_keys_are_the_derived_ones() {
        let cases = [
            ("secret", "20150830", "us-east-1", "iam"),
            ("secret", "20150831", "us-east-1", "iam"),
            ("secret", "20150830", "eu-west-1", "iam"),
            ("secret", "20150830", "us-east-1", "dynamodb"),
            ("other", "20150830", "us-east-1", "iam"),
        ];
        for _ in 0..2 {
            for (secret, date, region, service) in cases {
                assert_eq!(
                    signing_key(secret, date, region, service),
                    derive_signing_key(secret, date, region, service)
                );
            }
        }
        // More combinations than the cache keeps still derive correctly.
        for i in 0..(SIGNING_KEYS_KEPT * 2) {
            let region = format!("region-{i}");
            assert_eq!(
                signing_key("secret", "20150830", &region, "iam"),
                derive_signing_key("secret", "20150830", &region, "iam")
            );
        }
        // The AWS documentation's example key.
        assert_eq!(
            hex_lower(&signing_key(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "20150830",
                "us-east-1",
                "iam"
            )),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        assert_eq!(hex_lower(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn normalize_path_like_botocore() {
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("//example//"), "/example/");
        assert_eq!(normalize_path("/example/.."), "/");
        assert_eq!(normalize_path("/example1/example2/../.."), "/");
        assert_eq!(normalize_path("/./a/./b/"), "/a/b/");
        assert_eq!(normalize_path("/../a"), "/a");
    }

    #[test]
    fn canonical_uri_double_encodes_except_s3() {
        assert_eq!(
            canonical_uri("/functions/arn%3Aaws%3Alambda/invocations", "lambda"),
            "/functions/arn%253Aaws%253Alambda/invocations"
        );
        assert_eq!(canonical_uri("/a%20b/c:d~e", "lambda"), "/a%2520b/c%3Ad~e");
        assert_eq!(canonical_uri("/bkt/a%20b//../c", "s3"), "/bkt/a%20b//../c");
        assert_eq!(canonical_uri("", "s3"), "/");
        assert_eq!(canonical_uri("", "lambda"), "/");
    }

    #[test]
    fn canonical_query_sorts_and_reencodes() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("b=2&a=1"), "a=1&b=2");
        // Repeated keys sort by value; empty values and bare keys become `k=`.
        assert_eq!(canonical_query("k=b&k=a&e=&f"), "e=&f=&k=a&k=b");
        // Decoded and re-encoded with the unreserved set.
        assert_eq!(
            canonical_query("a=x%2fy&b=c d&c=%7e"),
            "a=x%2Fy&b=c%20d&c=~"
        );
        assert_eq!(canonical_query("a=1+2"), "a=1%2B2");
        assert_eq!(canonical_query("k=a:b/c"), "k=a%3Ab%2Fc");
        // Sort by key first: `Param` before `Param-3` although `-` < `=`.
        assert_eq!(canonical_query("Param-3=3&Param=2"), "Param=2&Param-3=3");
    }

    #[test]
    fn canonical_headers_trim_and_join() {
        let mut h = HeaderMap::new();
        h.append("my-header", HeaderValue::from_static("  a   b\t c "));
        h.append("my-header", HeaderValue::from_static("d"));
        h.insert("host", HeaderValue::from_static("example.com"));
        let creq = canonical_request(
            "GET",
            "/",
            "",
            &h,
            &["host", "my-header", "absent"],
            EMPTY_SHA256,
        );
        assert_eq!(
            creq,
            format!("GET\n/\n\nhost:example.com\nmy-header:a b c,d\nabsent:\n\nhost;my-header;absent\n{EMPTY_SHA256}")
        );
    }

    #[test]
    fn sign_headers_adds_what_it_should() {
        let uri: Uri = "http://localhost:9000/x".parse().expect("uri");
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("user-agent", HeaderValue::from_static("test"));
        sign_headers(
            &Method::POST,
            &uri,
            &mut h,
            b"{}",
            &creds(),
            &params("lambda"),
        );
        assert_eq!(h["host"], "localhost:9000");
        assert_eq!(h["x-amz-date"], "20150830T123600Z");
        assert_eq!(h["x-amz-content-sha256"], sha256_hex(b"{}"));
        let authz = h["authorization"].to_str().expect("ascii");
        assert!(authz.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws4_request, \
             SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature="
        ));
        // The default port is not part of the host.
        let uri: Uri = "https://example.com:443/".parse().expect("uri");
        let mut h = HeaderMap::new();
        sign_headers(&Method::GET, &uri, &mut h, b"", &creds(), &params("lambda"));
        assert_eq!(h["host"], "example.com");
    }

    #[test]
    fn round_trips() {
        let cases: &[(&str, &str, &[u8], &str)] = &[
            ("GET", "http://localhost:9000/", b"", "lambda"),
            (
                "GET",
                "http://localhost:9000/2015-03-31/functions/my%20fn%3Aprod",
                b"",
                "lambda",
            ),
            (
                "GET",
                "http://localhost:9000/p/a%25b/c:d?k=2&k=1&empty=&bare&sp=a%20b",
                b"",
                "lambda",
            ),
            (
                "POST",
                "http://localhost:9000/2015-03-31/functions/f/invocations",
                b"{\"a\":1}",
                "lambda",
            ),
            (
                "POST",
                "http://localhost:9000/",
                b"Action=GetCallerIdentity&Version=2011-06-15",
                "sts",
            ),
            (
                "PUT",
                "http://localhost:9000/bkt/dir/a%20b%3Ac%25d.txt?x-id=PutObject",
                b"hello",
                "s3",
            ),
            (
                "GET",
                "http://localhost:9000/bkt?list-type=2&prefix=a%20b%2F",
                b"",
                "s3",
            ),
        ];
        for (method, url, body, service) in cases {
            let p = signed(
                method,
                url,
                &[("content-type", "application/json")],
                body,
                service,
            );
            let id = verify_at(&p, body, T0).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(id.service, *service);
            assert_eq!(id.region, "us-east-1");
            assert_eq!(id.access_key_id, "AKIDEXAMPLE");
        }
    }

    #[test]
    fn presigned_round_trips() {
        for (method, url, service) in [
            (
                Method::GET,
                "http://localhost:9000/bkt/a%20b/c%3Ad.txt",
                "s3",
            ),
            (
                Method::PUT,
                "http://localhost:9000/bkt/k?versionId=x%2Fy",
                "s3",
            ),
            (
                Method::GET,
                "http://localhost:9000/2015-03-31/functions/my-fn?k=2&k=1&e=",
                "lambda",
            ),
            (Method::POST, "http://localhost:9000/", "sts"),
        ] {
            let uri: Uri = url.parse().expect("uri");
            let url = presign_url(&method, &uri, &creds(), &params(service), 300);
            let target: Uri = url.parse().expect("presigned url parses");
            let req = http::Request::builder()
                .method(method.clone())
                .uri(target.path_and_query().expect("pq").as_str())
                .header("host", "localhost:9000")
                .body(())
                .expect("request");
            let p = req.into_parts().0;
            let id = verify_at(&p, b"", T0 + Duration::seconds(299))
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(id.service, service);
            // Expired: S3 says AccessDenied, others InvalidSignatureException.
            let e = verify_at(&p, b"", T0 + Duration::seconds(301)).expect_err("expired");
            assert_eq!(e.status, 403);
            assert_eq!(e.message, "Request has expired");
            let code = if service == "s3" {
                "AccessDenied"
            } else {
                "InvalidSignatureException"
            };
            assert_eq!(e.code, code);
            // S3 presigned payload is unsigned; others sign the (empty) body.
            assert_eq!(verify_at(&p, b"body", T0).is_ok(), service == "s3", "{url}");
            // A different query value fails.
            let tampered = target
                .path_and_query()
                .expect("pq")
                .as_str()
                .replace("X-Amz-Expires=300", "X-Amz-Expires=301");
            let mut p2 = p.clone();
            p2.uri = tampered.parse().expect("uri");
            assert_eq!(verify_at(&p2, b"", T0).expect_err("tampered").status, 403);
        }
    }

    #[test]
    fn tampering_fails() {
        let url = "http://localhost:9000/2015-03-31/functions/f/invocations?Qualifier=1";
        let body = b"{\"a\":1}";
        let p = signed(
            "POST",
            url,
            &[("content-type", "application/json"), ("x-amz-meta", "m")],
            body,
            "lambda",
        );
        assert!(verify_at(&p, body, T0).is_ok());

        let mut bad = p.clone();
        bad.uri = "/2015-03-31/functions/g/invocations?Qualifier=1"
            .parse()
            .expect("uri");
        assert_eq!(
            verify_at(&bad, body, T0).expect_err("path").code,
            "InvalidSignatureException"
        );

        let mut bad = p.clone();
        bad.uri = "/2015-03-31/functions/f/invocations?Qualifier=2"
            .parse()
            .expect("uri");
        assert_eq!(
            verify_at(&bad, body, T0).expect_err("query").message,
            MSG_BAD_SIGNATURE
        );

        let mut bad = p.clone();
        bad.headers
            .insert("x-amz-meta", HeaderValue::from_static("other"));
        assert!(verify_at(&bad, body, T0).is_err());

        let mut bad = p.clone();
        bad.method = Method::PUT;
        assert!(verify_at(&bad, body, T0).is_err());

        // The body no longer matches x-amz-content-sha256.
        let e = verify_at(&p, b"{\"a\":2}", T0).expect_err("body");
        assert_eq!(e.code, "InvalidSignatureException");
        assert_eq!(e.message, MSG_CONTENT_SHA_MISMATCH);

        // Without x-amz-content-sha256 the body hash itself is what is signed.
        let mut no_sha = p.clone();
        no_sha.headers.remove("x-amz-content-sha256");
        assert!(verify_at(&no_sha, body, T0).is_err());

        // An unsigned header may change freely.
        let mut ok = p.clone();
        ok.headers
            .insert("user-agent", HeaderValue::from_static("x"));
        assert!(verify_at(&ok, body, T0).is_ok());

        let e = verify(&p, body, T0, &HashMap::new()).expect_err("unknown key");
        assert_eq!(e.code, "UnrecognizedClientException");
        assert_eq!(
            e.message,
            "The security token included in the request is invalid."
        );
    }

    #[test]
    fn s3_codes() {
        let p = signed("PUT", "http://localhost:9000/bkt/k", &[], b"data", "s3");
        assert!(verify_at(&p, b"data", T0).is_ok());
        let e = verify_at(&p, b"datb", T0).expect_err("body");
        assert_eq!(
            (e.status.as_u16(), e.code.as_str()),
            (400, "XAmzContentSHA256Mismatch")
        );
        assert_eq!(e.protocol, Protocol::RestXml);
        let mut bad = p.clone();
        bad.uri = "/bkt/j".parse().expect("uri");
        assert_eq!(
            verify_at(&bad, b"data", T0).expect_err("sig").code,
            "SignatureDoesNotMatch"
        );
        let e = verify_at(&p, b"data", T0 + Duration::minutes(16)).expect_err("skew");
        assert_eq!(e.code, "RequestTimeTooSkewed");
        let e = verify(&p, b"data", T0, &HashMap::new()).expect_err("key");
        assert_eq!(e.code, "InvalidAccessKeyId");
    }

    #[test]
    fn unsigned_and_streaming_payloads() {
        let p = signed(
            "PUT",
            "http://localhost:9000/bkt/k",
            &[("x-amz-content-sha256", UNSIGNED_PAYLOAD)],
            b"",
            "s3",
        );
        assert!(verify_at(&p, b"anything at all", T0).is_ok());
        let streaming = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
        let p = signed(
            "PUT",
            "http://localhost:9000/bkt/k",
            &[("x-amz-content-sha256", streaming)],
            b"",
            "s3",
        );
        assert!(verify_at(&p, b"chunks", T0).is_ok());
        // STREAMING-* means nothing outside S3.
        let p = signed(
            "PUT",
            "http://localhost:9000/x",
            &[("x-amz-content-sha256", streaming)],
            b"",
            "lambda",
        );
        assert!(verify_at(&p, b"chunks", T0).is_err());
        let p = signed(
            "PUT",
            "http://localhost:9000/x",
            &[("x-amz-content-sha256", UNSIGNED_PAYLOAD)],
            b"",
            "lambda",
        );
        assert!(verify_at(&p, b"chunks", T0).is_ok());
    }

    #[test]
    fn clock_skew_both_ways() {
        let p = signed("GET", "http://localhost:9000/", &[], b"", "lambda");
        assert!(verify_at(&p, b"", T0 + Duration::minutes(15)).is_ok());
        assert!(verify_at(&p, b"", T0 - Duration::minutes(15)).is_ok());
        let e = verify_at(&p, b"", datetime!(2015-08-30 12:56:00 UTC)).expect_err("late");
        assert_eq!(e.status, 403);
        assert_eq!(e.code, "InvalidSignatureException");
        assert_eq!(
            e.message,
            "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z (20150830T125600Z - 15 min.)"
        );
        let e = verify_at(&p, b"", datetime!(2015-08-30 12:16:00 UTC)).expect_err("early");
        assert_eq!(
            e.message,
            "Signature not yet current: 20150830T123600Z is still later than 20150830T123100Z (20150830T121600Z + 15 min.)"
        );
    }

    #[test]
    fn malformed_requests() {
        let bare = http::Request::builder()
            .uri("/")
            .header("host", "h")
            .body(())
            .expect("req")
            .into_parts()
            .0;
        let e = verify_at(&bare, b"", T0).expect_err("missing");
        assert_eq!(
            (e.status.as_u16(), e.code.as_str(), e.message.as_str()),
            (
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token"
            )
        );

        let with_authz = |authz: &str, date: Option<&str>| {
            let mut b = http::Request::builder()
                .uri("/")
                .header("host", "h")
                .header("authorization", authz);
            if let Some(d) = date {
                b = b.header("x-amz-date", d);
            }
            b.body(()).expect("req").into_parts().0
        };
        let e = verify_at(
            &with_authz(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws4_request",
                None,
            ),
            b"",
            T0,
        )
        .expect_err("incomplete");
        assert_eq!(e.code, "IncompleteSignatureException");
        assert_eq!(e.status, 403);
        assert_eq!(
            e.message,
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
             Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
             Authorization=AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws4_request"
        );
        for bad in [
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws5_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/lambda/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws4_request, SignedHeaders=x-amz-date, Signature=00",
            "AWS4-HMAC-SHA256 Credential",
            "AWS AKIDEXAMPLE:sig",
        ] {
            let e = verify_at(&with_authz(bad, Some("20150830T123600Z")), b"", T0).expect_err(bad);
            assert_eq!(e.code, "IncompleteSignatureException", "{bad}: {e}");
        }
        let e = verify_at(
            &with_authz("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00", Some("2015-08-30")),
            b"",
            T0,
        )
        .expect_err("bad date");
        assert!(
            e.message
                .starts_with("Date must be in ISO-8601 'basic format'."),
            "{e}"
        );
        // Scope date differs from the request date.
        let e = verify_at(
            &with_authz("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00", Some("20150830T123600Z")),
            b"",
            T0,
        )
        .expect_err("scope date");
        assert_eq!(e.code, "InvalidSignatureException");
        assert!(
            e.message
                .starts_with("Date in Credential scope does not match"),
            "{e}"
        );
        // Malformed S3 requests get S3's code.
        let e = verify_at(
            &with_authz("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, SignedHeaders=host", None),
            b"",
            T0,
        )
        .expect_err("s3");
        assert_eq!(
            (e.status.as_u16(), e.code.as_str(), e.protocol),
            (400, "AuthorizationHeaderMalformed", Protocol::RestXml)
        );
    }

    #[test]
    fn presign_limits() {
        let uri: Uri = "http://h/bkt/k".parse().expect("uri");
        let url = presign_url(
            &Method::GET,
            &uri,
            &creds(),
            &params("s3"),
            MAX_PRESIGN_EXPIRES + 1,
        );
        let target: Uri = url.parse().expect("url");
        let p = http::Request::builder()
            .uri(target.path_and_query().expect("pq").as_str())
            .header("host", "h")
            .body(())
            .expect("req")
            .into_parts()
            .0;
        let e = verify_at(&p, b"", T0).expect_err("too long");
        assert_eq!(e.code, "AuthorizationQueryParametersError");
        // Presigned in the future by more than the skew allowance.
        let url = presign_url(&Method::GET, &uri, &creds(), &params("s3"), 60);
        let target: Uri = url.parse().expect("url");
        let mut p2 = p.clone();
        p2.uri = target
            .path_and_query()
            .expect("pq")
            .as_str()
            .parse()
            .expect("uri");
        let e = verify_at(&p2, b"", T0 - Duration::minutes(16)).expect_err("future");
        assert_eq!(e.code, "AccessDenied");
        // Presign plus an Authorization header is ambiguous.
        p2.headers.insert(
            "authorization",
            HeaderValue::from_static("AWS4-HMAC-SHA256 x"),
        );
        assert!(verify_at(&p2, b"", T0).is_err());
        // A query missing X-Amz-Expires.
        let mut p3 = p.clone();
        p3.uri = "/bkt/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"
            .parse()
            .expect("uri");
        let e = verify_at(&p3, b"", T0).expect_err("incomplete");
        assert!(
            e.message
                .starts_with("Query-string authentication version 4 requires"),
            "{e}"
        );
    }

    #[test]
    fn security_token_date_header_and_authority() {
        // A signed session token is accepted (and ignored).
        let p = signed(
            "GET",
            "http://localhost:9000/",
            &[("x-amz-security-token", "FwoG//token==")],
            b"",
            "lambda",
        );
        assert!(p.headers["authorization"]
            .to_str()
            .expect("ascii")
            .contains("x-amz-security-token"));
        assert!(verify_at(&p, b"", T0).is_ok());

        // The `Date` header instead of x-amz-date.
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("h"));
        h.insert(
            "date",
            HeaderValue::from_static("Sun, 30 Aug 2015 12:36:00 GMT"),
        );
        let signed_headers = ["date".to_owned(), "host".to_owned()];
        let creq = canonical_request("GET", "/", "", &h, &signed_headers, EMPTY_SHA256);
        let scope = credential_scope("20150830", "us-east-1", "lambda");
        let sts = string_to_sign("20150830T123600Z", &scope, &creq);
        let sig = signature(
            &signing_key(
                &creds().secret_access_key,
                "20150830",
                "us-east-1",
                "lambda",
            ),
            &sts,
        );
        let authz = format!(
            "{ALGORITHM} Credential=AKIDEXAMPLE/{scope}, SignedHeaders=date;host, Signature={sig}"
        );
        let mut req = http::Request::builder().uri("/").body(()).expect("req");
        *req.headers_mut() = h.clone();
        req.headers_mut()
            .insert("authorization", HeaderValue::from_str(&authz).expect("hv"));
        let p = req.into_parts().0;
        assert!(verify_at(&p, b"", T0).is_ok());

        // No host header (HTTP/2): the authority of the URI stands in.
        let mut p2 = p.clone();
        p2.headers.remove("host");
        p2.uri = "http://h/".parse().expect("uri");
        assert!(verify_at(&p2, b"", T0).is_ok());
    }
}
