//! Identifiers: request ids, ARNs, function references and Lambda's timestamp format.

use time::OffsetDateTime;

use crate::ACCOUNT_ID;

/// A new request id in Lambda's form (a v4 UUID).
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
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
