//! End-to-end: a private containerd 1.6 running containers through containerd-shim-hezi-v2.
//! Needs root and containerd; skipped (with the reason printed) without them, except under CI.

mod support;

use support::{Containerd, IMAGE, RUNTIME};

#[test]
fn runs_the_image_default_command() {
    let Some(c) = Containerd::start() else { return };
    let id = support::id("default");
    let out = c.stdout(&["run", "--rm", "--runtime", RUNTIME, IMAGE, &id]);
    assert_eq!(out, "hello from hezi\n");
}
