//! Shared by the cgroup v2 integration tests that use this hybrid host's cgroup2 mount.

use libcontainer::cgroups::{Hierarchy, Layout};

/// The hybrid host's unified (cgroup2) mount, or None (after saying why) when not root or when
/// the host has no such mount; `what` names the tests in that message.
pub fn unified_mount(what: &str) -> Option<Hierarchy> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: {what} need root");
        return None;
    }
    match Layout::detect() {
        Ok(Layout::Legacy { unified: Some(h), .. }) => Some(h),
        other => {
            eprintln!("SKIP: no hybrid cgroup2 mount on this host ({other:?}); see scripts/vm for pure v2");
            None
        }
    }
}
