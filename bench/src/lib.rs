//! The pieces the benchmarks share: the native load generator ([`client`]), a `gust up` child
//! process ([`gust`]), the machine description ([`machine`]), latency percentiles ([`stats`]),
//! the bare hyper baseline ([`baseline`]) and the core benchmark's report ([`report`]).
//!
//! Binaries: `gust-bench` (the core platform, `src/main.rs`) and `gust-bench-dynamodb`
//! (DynamoDB against `moto_server`, `src/bin/gust-bench-dynamodb.rs`).

pub mod baseline;
pub mod client;
pub mod gust;
pub mod machine;
pub mod report;
pub mod stats;
