//! The Lambda API (`/2015-03-31/functions…`) on the control endpoint.
