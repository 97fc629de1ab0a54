//! SigV4 verification as an axum middleware for the control endpoint.
