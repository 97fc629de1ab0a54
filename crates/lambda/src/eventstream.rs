//! Lambda's events in the AWS event stream of `InvokeWithResponseStream`'s response body
//! (framing in [`gust_aws::eventstream`]): three string headers each, `:event-type`
//! (`PayloadChunk` or `InvokeComplete`), `:content-type` and `:message-type` (`event`).

use bytes::Bytes;
use gust_aws::eventstream::message;

pub use gust_aws::eventstream::CONTENT_TYPE;

/// A `PayloadChunk` event carrying `bytes` of the function's response.
pub fn payload_chunk(bytes: &[u8]) -> Bytes {
    message(
        &[
            (":event-type", "PayloadChunk"),
            (":content-type", "application/octet-stream"),
            (":message-type", "event"),
        ],
        bytes,
    )
}

/// The closing `InvokeComplete` event; `body` is its JSON document
/// (`ErrorCode`, `ErrorDetails`, `LogResult`).
pub fn invoke_complete(body: &[u8]) -> Bytes {
    message(
        &[
            (":event-type", "InvokeComplete"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_events_frame_their_payload() {
        let m = payload_chunk(b"hello");
        let total = u32::from_be_bytes([m[0], m[1], m[2], m[3]]) as usize;
        let headers = u32::from_be_bytes([m[4], m[5], m[6], m[7]]) as usize;
        assert_eq!(total, m.len());
        assert_eq!(&m[12 + headers..total - 4], b"hello");
        let text = String::from_utf8_lossy(&m[12..12 + headers]).to_string();
        assert!(text.contains(":event-type") && text.contains("PayloadChunk"));
        let end = invoke_complete(b"{}");
        assert!(String::from_utf8_lossy(&end).contains("InvokeComplete"));
        let crc = u32::from_be_bytes([
            end[end.len() - 4],
            end[end.len() - 3],
            end[end.len() - 2],
            end[end.len() - 1],
        ]);
        assert_eq!(crc, crc32fast::hash(&end[..end.len() - 4]));
    }
}
