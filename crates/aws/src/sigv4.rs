//! Signature Version 4.
