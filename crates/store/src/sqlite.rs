//! The embedded SQLite implementation of the storage traits, with group commit.

/// Placeholder until the implementation lands.
pub struct SqliteStore;
