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
    use gust_aws::eventstream::Decoder;

    #[test]
    fn lambda_events_carry_their_type_and_payload() {
        let mut d = Decoder::new();
        d.push(&payload_chunk(b"hello"));
        d.push(&invoke_complete(b"{}"));
        let chunk = d.next_message().expect("valid").expect("a message");
        assert_eq!(chunk.header(":event-type"), Some("PayloadChunk"));
        assert_eq!(
            chunk.header(":content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(chunk.header(":message-type"), Some("event"));
        assert_eq!(&chunk.payload[..], b"hello");
        let end = d.next_message().expect("valid").expect("a message");
        assert_eq!(end.header(":event-type"), Some("InvokeComplete"));
        assert_eq!(end.header(":content-type"), Some("application/json"));
        assert_eq!(&end.payload[..], b"{}");
        assert!(!d.has_partial());
    }
}
