//! OCI runtime-spec conformance tests live in `tests/`; this crate holds their shared helpers.
//!
//! The suite is not written yet; see the conformance issue.
