//! Shared by the cgroup integration tests that use this hybrid host's cgroup2 mount.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

/// How many guards are alive in this test binary, and the root's subtree_control before the
/// first of them.
static LIVE: Mutex<(usize, Option<String>)> = Mutex::new((0, None));

/// Gives a cgroup2 root's subtree_control back as the tests found it once the last test cgroup
/// of this binary is gone. The v2 manager turns on every controller the root offers (hugetlb on
/// this hybrid host), and left on, crun refuses the host afterwards (scripts/hugetlb-v1.sh).
/// Keep it in the test cgroup's struct: it must drop after the directories are removed.
pub struct SubtreeGuard(PathBuf);

impl SubtreeGuard {
    pub fn new(root: &Path) -> SubtreeGuard {
        let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        if live.0 == 0 {
            live.1 = std::fs::read_to_string(root.join("cgroup.subtree_control")).ok();
        }
        live.0 += 1;
        SubtreeGuard(root.to_path_buf())
    }
}

impl Drop for SubtreeGuard {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        live.0 -= 1;
        if live.0 > 0 {
            return;
        }
        let Some(before) = live.1.take() else { return };
        let file = self.0.join("cgroup.subtree_control");
        let now = std::fs::read_to_string(&file).unwrap_or_default();
        for c in now
            .split_whitespace()
            .filter(|c| !before.split_whitespace().any(|b| b == *c))
        {
            // Refused while another cgroup below still delegates it: then it stays.
            let _ = std::fs::write(&file, format!("-{c}"));
        }
    }
}

/// The guard for this host's unified mount, on a hybrid host.
pub fn unified_guard() -> Option<SubtreeGuard> {
    match Layout::detect() {
        Ok(Layout::Legacy { unified: Some(h), .. }) => Some(SubtreeGuard::new(&h.mount)),
        _ => None,
    }
}
