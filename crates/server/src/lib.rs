//! The composition root: opens the store, builds the runtime and services, serves listeners.
