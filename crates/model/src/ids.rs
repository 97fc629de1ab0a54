//! Identifiers: request ids, ARNs, function references and Lambda's timestamp format.

use time::OffsetDateTime;

use crate::ACCOUNT_ID;

/// A new request id in Lambda's form (a v4 UUID).
///
/// Every API request, invocation and gateway request gets one, so ids come from a per-thread
/// generator seeded once from the OS instead of a `getrandom` system call each: ids must be
/// unique, not secret. Within a thread both halves are bijections of a counter, so ids never
/// repeat; threads differ by their random seeds.
pub fn new_request_id() -> String {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<(u64, u64, u64)> = {
            let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
            Cell::new((a, b, 0))
        };
    }
    let (a, b, n) = STATE.with(|s| {
        let (a, b, n) = s.get();
        s.set((a, b, n.wrapping_add(1)));
        (a, b, n)
    });
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&splitmix64(a ^ n).to_be_bytes());
    bytes[8..].copy_from_slice(&splitmix64(b.wrapping_add(n)).to_be_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// SplitMix64's output function: a bijection on `u64` that spreads every input bit.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `arn:aws:lambda:<region>:<account>:function:<name>`.
pub fn function_arn(region: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}")
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Lambda's `LastModified` format: `2024-01-02T03:04:05.000+0000`.
pub fn rfc3339_millis(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// What a `FunctionName` parameter names: a plain name, a partial ARN (`123:function:name`) or
/// a full ARN, optionally with a qualifier (`name:$LATEST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    pub qualifier: Option<String>,
}

/// Accepts every form Lambda accepts for `FunctionName`.
pub fn parse_function_ref(s: &str) -> Option<FunctionRef> {
    let parts: Vec<&str> = s.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, q] => (*name, Some(*q)),
        ["arn", _partition, "lambda", _region, _account, "function", name] => (*name, None),
        ["arn", _partition, "lambda", _region, _account, "function", name, q] => (*name, Some(*q)),
        [_account, "function", name] => (*name, None),
        [_account, "function", name, q] => (*name, Some(*q)),
        _ => return None,
    };
    crate::function::validate_name(name).ok()?;
    Some(FunctionRef {
        name: name.to_string(),
        qualifier: qualifier.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_refs() {
        assert_eq!(parse_function_ref("f").unwrap().name, "f");
        let r =
            parse_function_ref("arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST").unwrap();
        assert_eq!(
            (r.name.as_str(), r.qualifier.as_deref()),
            ("f", Some("$LATEST"))
        );
        assert_eq!(
            parse_function_ref("000000000000:function:g").unwrap().name,
            "g"
        );
        assert!(parse_function_ref("a b").is_none());
    }

    #[test]
    fn timestamp_format() {
        let t = OffsetDateTime::from_unix_timestamp(0).unwrap();
        assert_eq!(rfc3339_millis(t), "1970-01-01T00:00:00.000+0000");
    }
}

#[cfg(test)]
mod request_id_tests {
    #[test]
    fn request_ids_are_distinct_v4_uuids() {
        let mut seen = std::collections::HashSet::new();
        let ids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..5_000)
                            .map(|_| super::new_request_id())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("thread"))
                .collect()
        });
        for id in ids {
            let u = uuid::Uuid::parse_str(&id).expect("a uuid");
            assert_eq!(u.get_version_num(), 4, "{id}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(id.len(), 36);
            assert!(seen.insert(id), "repeated id");
        }
    }
}
