//! The AWS event stream encoding (`application/vnd.amazon.eventstream`): the binary framing of
//! streamed responses such as Lambda's `InvokeWithResponseStream`.
//!
//! One message is: a 12-byte prelude (total length and headers length as big-endian `u32`s,
//! then the CRC32 of those 8 bytes), the headers, the payload, and the CRC32 of everything
//! before it. A header is its name's length (`u8`), the name, a value type (`7`: string), the
//! value's length (big-endian `u16`) and the value; botocore's `eventstream.py` parses them.
//!
//! Only encoding is here, and only string headers: Gust never reads an event stream.

use bytes::{BufMut, Bytes, BytesMut};

/// The `Content-Type` of an event stream response.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// Header value type of a UTF-8 string.
const STRING: u8 = 7;
/// Prelude (12) plus message CRC (4).
const OVERHEAD: usize = 16;

/// One message with string `headers` and `payload`. Header names must be shorter than 256
/// bytes and values than 64 KiB; ours are constants.
pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let headers_len: usize = headers
        .iter()
        .map(|(name, value)| 1 + name.len() + 1 + 2 + value.len())
        .sum();
    let total = OVERHEAD + headers_len + payload.len();
    let mut buf = BytesMut::with_capacity(total);
    // Lengths over u32 cannot occur: payloads are bounded by the response limits.
    buf.put_u32(u32::try_from(total).unwrap_or(u32::MAX));
    buf.put_u32(u32::try_from(headers_len).unwrap_or(u32::MAX));
    let prelude_crc = crc32fast::hash(&buf[..8]);
    buf.put_u32(prelude_crc);
    for (name, value) in headers {
        buf.put_u8(u8::try_from(name.len()).unwrap_or(u8::MAX));
        buf.put_slice(name.as_bytes());
        buf.put_u8(STRING);
        buf.put_u16(u16::try_from(value.len()).unwrap_or(u16::MAX));
        buf.put_slice(value.as_bytes());
    }
    buf.put_slice(payload);
    let message_crc = crc32fast::hash(&buf);
    buf.put_u32(message_crc);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32fast::hash(b""), 0);
    }

    #[test]
    fn message_without_headers() {
        // A published encoding of `{"foo": "bar"}` with no headers.
        let m = message(&[], br#"{"foo": "bar"}"#);
        let mut want = vec![0, 0, 0, 30, 0, 0, 0, 0, 186, 242, 246, 138];
        want.extend_from_slice(br#"{"foo": "bar"}"#);
        want.extend_from_slice(&[174, 114, 88, 228]);
        assert_eq!(&m[..], &want[..]);
    }

    #[test]
    fn message_with_a_string_header() {
        let m = message(
            &[("content-type", "application/json")],
            br#"{"foo": "bar"}"#,
        );
        let mut want = vec![0, 0, 0, 62, 0, 0, 0, 32, 64, 93, 249, 70, 12];
        want.extend_from_slice(b"content-type");
        want.extend_from_slice(&[7, 0, 16]);
        want.extend_from_slice(b"application/json");
        want.extend_from_slice(br#"{"foo": "bar"}"#);
        want.extend_from_slice(&[111, 162, 191, 59]);
        assert_eq!(&m[..], &want[..]);
    }
}
