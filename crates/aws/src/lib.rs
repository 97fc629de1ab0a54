//! AWS wire basics shared by every AWS-compatible service in Gust.
//!
//! - [`sigv4`]: Signature Version 4 signing (for the CLI and tests) and verification (for the
//!   control endpoint), header and presigned-query forms, with the 15-minute clock-skew rule.
//! - [`error`]: [`AwsError`], one error value carrying AWS's error code, HTTP status and
//!   message, rendered in the shape of the protocol of the service that raised it.
//! - [`auth`]: an axum middleware that verifies every request against a credential lookup.
//!
//! This crate knows no service's operations; services build on it.

pub mod auth;
pub mod error;
pub mod sigv4;

pub use error::{AwsError, Protocol};

/// Lambda's request-id header.
pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// A fresh request id: a random (version 4) UUID.
///
/// Every request gets one, so ids come from a per-thread generator seeded once from the OS
/// instead of a system call each: ids must be unique, not secret. Within a thread the first
/// half is a bijection of a counter, so ids never repeat; threads differ by their random seeds.
pub fn request_id() -> String {
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
    let hi = splitmix64(a ^ n);
    let lo = splitmix64(b.wrapping_add(n));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hi.to_be_bytes());
    bytes[8..].copy_from_slice(&lo.to_be_bytes());
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

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_distinct_v4_uuids() {
        let mut seen = std::collections::HashSet::new();
        let ids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..5_000).map(|_| super::request_id()).collect::<Vec<_>>()))
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
