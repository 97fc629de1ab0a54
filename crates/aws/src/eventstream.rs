//! The AWS event stream encoding (`application/vnd.amazon.eventstream`): the binary framing of
//! streamed responses such as Lambda's `InvokeWithResponseStream`.
//!
//! One message is: a 12-byte prelude (total length and headers length as big-endian `u32`s,
//! then the CRC32 of those 8 bytes), the headers, the payload, and the CRC32 of everything
//! before it. A header is its name's length (`u8`), the name, a value type (`7`: string), the
//! value's length (big-endian `u16`) and the value; botocore's `eventstream.py` parses them.
//!
//! Encoding writes string headers only (all Gust sends); the [`Decoder`] reads any message
//! (the CLI follows `InvokeWithResponseStream` with it), checking both CRCs.

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

/// One decoded message: its headers (string values; other types are skipped) and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub payload: Bytes,
}

impl Message {
    /// The value of the string header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why bytes are not an event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("event stream prelude checksum mismatch")]
    PreludeCrc,
    #[error("event stream message checksum mismatch")]
    MessageCrc,
    #[error("malformed event stream message: {0}")]
    Malformed(&'static str),
}

/// Largest message accepted (AWS's limit is 16 MB of payload plus headers).
const MAX_MESSAGE: usize = 24 * 1024 * 1024;

/// Reads messages out of bytes that arrive in pieces of any size.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Adds bytes as they arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Whether bytes of an unfinished message are waiting.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next whole message, `None` until one has arrived.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        if self.buf.len() < 12 {
            return Ok(None);
        }
        let word =
            |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let total = word(&self.buf, 0) as usize;
        let headers_len = word(&self.buf, 4) as usize;
        if crc32fast::hash(&self.buf[..8]) != word(&self.buf, 8) {
            return Err(DecodeError::PreludeCrc);
        }
        if total < OVERHEAD + headers_len || total > MAX_MESSAGE {
            return Err(DecodeError::Malformed("bad lengths"));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let msg = self.buf.split_to(total).freeze();
        if crc32fast::hash(&msg[..total - 4]) != word(&msg, total - 4) {
            return Err(DecodeError::MessageCrc);
        }
        let headers = parse_headers(&msg[12..12 + headers_len])?;
        Ok(Some(Message {
            headers,
            payload: msg.slice(12 + headers_len..total - 4),
        }))
    }
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    let short = DecodeError::Malformed("truncated header");
    let take = |b: &mut &[u8], n: usize| -> Result<Vec<u8>, DecodeError> {
        if b.len() < n {
            return Err(short.clone());
        }
        let (head, rest) = b.split_at(n);
        *b = rest;
        Ok(head.to_vec())
    };
    let mut out = Vec::new();
    while !b.is_empty() {
        let name_len = take(&mut b, 1)?[0] as usize;
        let name = String::from_utf8(take(&mut b, name_len)?)
            .map_err(|_| DecodeError::Malformed("header name is not UTF-8"))?;
        let kind = take(&mut b, 1)?[0];
        let fixed = match kind {
            0 | 1 => Some(0),
            2 => Some(1),
            3 => Some(2),
            4 => Some(4),
            5 | 8 => Some(8),
            9 => Some(16),
            6 | 7 => None,
            _ => return Err(DecodeError::Malformed("unknown header value type")),
        };
        match fixed {
            Some(n) => {
                take(&mut b, n)?;
            }
            None => {
                let len = take(&mut b, 2)?;
                let value = take(&mut b, usize::from(u16::from_be_bytes([len[0], len[1]])))?;
                if kind == STRING {
                    let value = String::from_utf8(value)
                        .map_err(|_| DecodeError::Malformed("header value is not UTF-8"))?;
                    out.push((name, value));
                }
            }
        }
    }
    Ok(out)
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

    #[test]
    fn decoding_reads_back_what_was_encoded_in_any_pieces() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&message(&[(":event-type", "A")], b"one"));
        stream.extend_from_slice(&message(&[(":event-type", "B"), ("x", "y")], b""));
        for piece in [1, 5, 13, stream.len()] {
            let mut d = Decoder::new();
            let mut got = Vec::new();
            for chunk in stream.chunks(piece) {
                d.push(chunk);
                while let Some(m) = d.next_message().expect("valid") {
                    got.push(m);
                }
            }
            assert!(!d.has_partial());
            assert_eq!(got.len(), 2, "pieces of {piece}");
            assert_eq!(got[0].header(":event-type"), Some("A"));
            assert_eq!(&got[0].payload[..], b"one");
            assert_eq!(got[1].header("x"), Some("y"));
            assert!(got[1].payload.is_empty());
        }
    }

    #[test]
    fn decoding_refuses_corrupt_messages() {
        let good = message(&[(":event-type", "A")], b"payload");
        let mut bad = good.to_vec();
        bad[2] ^= 1;
        let mut d = Decoder::new();
        d.push(&bad);
        assert_eq!(d.next_message(), Err(DecodeError::PreludeCrc));
        let mut bad = good.to_vec();
        let n = bad.len();
        bad[n - 6] ^= 1;
        let mut d = Decoder::new();
        d.push(&bad);
        assert_eq!(d.next_message(), Err(DecodeError::MessageCrc));
    }
}
