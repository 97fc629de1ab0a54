//! Lambda's shapes for what an invocation reports, shared by every executor: the error
//! document (`{"errorType":..,"errorMessage":..}`) and the platform log lines
//! (`START`, `END`, `REPORT`). Formatting only; no I/O.

use std::time::Duration;

use bytes::Bytes;

/// `{"errorType":..., "errorMessage":...}` in Lambda's key order.
pub fn error_body(error_type: &str, message: &str) -> Bytes {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    Bytes::from(format!(
        "{{\"errorType\":{},\"errorMessage\":{}}}",
        q(error_type),
        q(message)
    ))
}

/// Lambda's timeout message: `RequestId: <id> Error: Task timed out after 3.00 seconds`.
pub fn timeout_message(request_id: &str, timeout_s: u32) -> String {
    format!(
        "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
        f64::from(timeout_s.max(1))
    )
}

/// `START RequestId: <id> Version: $LATEST`.
pub fn start_line(request_id: &str) -> String {
    format!("START RequestId: {request_id} Version: $LATEST")
}

/// `END RequestId: <id>`.
pub fn end_line(request_id: &str) -> String {
    format!("END RequestId: {request_id}")
}

/// The `REPORT` line. `status` is appended as is (e.g. `"\tStatus: timeout"`, or empty).
pub fn report_line(
    request_id: &str,
    duration: Duration,
    memory_size_mb: u32,
    max_memory_used_mb: u64,
    init: Option<Duration>,
    status: &str,
) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    let billed = (duration.as_nanos().div_ceil(1_000_000)).max(1);
    let mut report = format!(
        "REPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {memory_size_mb} MB\tMax Memory Used: {max_memory_used_mb} MB"
    );
    if let Some(init) = init {
        report.push_str(&format!(
            "\tInit Duration: {:.2} ms",
            init.as_secs_f64() * 1000.0
        ));
    }
    report.push_str(status);
    report
}

/// Now as `2024-01-02T03:04:05.678Z` (the prefix of Lambda's timeout log line).
pub fn rfc3339_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_has_lambda_fields() {
        let r = report_line(
            "id",
            Duration::from_micros(1500),
            128,
            3,
            None,
            "\tStatus: timeout",
        );
        assert_eq!(
            r,
            "REPORT RequestId: id\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 3 MB\tStatus: timeout"
        );
        assert_eq!(
            timeout_message("x", 3),
            "RequestId: x Error: Task timed out after 3.00 seconds"
        );
    }
}
