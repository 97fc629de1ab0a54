//! The `gust` command.
fn main() {}
