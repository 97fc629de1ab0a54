//! The AWS event stream encoding (`application/vnd.amazon.eventstream`), the framing of
//! `InvokeWithResponseStream`'s response body.
//!
//! One message is: a 12-byte prelude (total length and headers length as big-endian `u32`s,
//! then the CRC32 of those 8 bytes), the headers, the payload, and the CRC32 of everything
//! before it. A header is its name's length (`u8`), the name, a value type (`7`: string), the
//! value's length (big-endian `u16`) and the value. Lambda's messages carry three string
//! headers: `:event-type` (`PayloadChunk` or `InvokeComplete`), `:content-type` and
//! `:message-type` (`event`); botocore's `eventstream.py` parses them.
//!
//! Only encoding is here, and only string headers: Gust never reads an event stream.

use bytes::{BufMut, Bytes, BytesMut};

/// The `Content-Type` of an event stream response.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// Header value type of a UTF-8 string (the only type Lambda's events use).
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
    let prelude_crc = crc32(&buf[..8]);
    buf.put_u32(prelude_crc);
    for (name, value) in headers {
        buf.put_u8(u8::try_from(name.len()).unwrap_or(u8::MAX));
        buf.put_slice(name.as_bytes());
        buf.put_u8(STRING);
        buf.put_u16(u16::try_from(value.len()).unwrap_or(u16::MAX));
        buf.put_slice(value.as_bytes());
    }
    buf.put_slice(payload);
    let message_crc = crc32(&buf);
    buf.put_u32(message_crc);
    buf.freeze()
}

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

/// CRC-32 (IEEE 802.3, reflected, as zlib and gzip compute it).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
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
        assert_eq!(crc, crc32(&end[..end.len() - 4]));
    }
}
