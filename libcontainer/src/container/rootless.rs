//! What changes when the caller is not the host's root: `create` by an unprivileged user, or by
//! root inside a user namespace (podman's rootless mode runs the runtime there).
//!
//! - A container made by a user who is not root needs a user namespace of its own: without one
//!   nothing of the setup (mounts, hostname, devices) is allowed.
//! - cgroups: the user may own none of the cgroups hezi would make. Then, as runc does, the
//!   container runs without a cgroup of its own (said at debug level), unless the spec asks for
//!   limits: those cannot be applied, which is an error that says why. Where the user owns the
//!   cgroup (a delegated subtree, or a systemd scope from the user's manager), it is used and
//!   the limits enforced.
//! - Device rules (`linux.resources.devices`) are not applied: only the host's root may write
//!   v1 device lists or attach the v2 device program, and in a user namespace the container
//!   cannot make device nodes anyway (its /dev entries are bind mounts of the host's).
//!
//! The id maps are in idmap.rs; setgroups in process/privileges.rs.

use nix::errno::Errno;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Spec};
use serde_json::Value;

use crate::cgroups::{self, CgroupConfig, CgroupError, Manager};
use crate::error::{Error, Result};
use crate::state::ContainerState;

/// Whether this process is not the host's root: euid not 0, or in a user namespace other than
/// the initial one (whose uid_map maps every id onto itself). runc's `--rootless auto`.
pub fn detect() -> bool {
    !nix::unistd::geteuid().is_root() || !crate::namespaces::in_initial_user_ns()
}

/// A user who is not root can set nothing up outside a user namespace of the container's own.
pub(super) fn check_spec(spec: &Spec) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let has_user_ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    if !has_user_ns {
        return Err(Error::InvalidSpec(format!(
            "an unprivileged user (uid {}) needs a user namespace: add {{\"type\": \"user\"}} to \
             linux.namespaces with uidMappings and gidMappings (hezi spec --rootless makes one)",
            nix::unistd::geteuid()
        )));
    }
    Ok(())
}

/// Make the container's cgroup. Rootless, a cgroup the user may not make is no error unless
/// the spec has limits to apply: then there is no cgroup (None).
pub(super) fn make_cgroup(
    rootless: bool,
    cfg: &CgroupConfig,
    resources: Option<&LinuxResources>,
) -> std::result::Result<Option<Box<dyn Manager>>, CgroupError> {
    let mgr = cgroups::manager(cfg)?;
    let err = match mgr.create() {
        Ok(()) => return Ok(Some(mgr)),
        Err(e) if rootless && denied(&e) => e,
        Err(e) => return Err(e),
    };
    // What create made before it was refused (a hierarchy the user owns, one it does not).
    let _ = mgr.destroy();
    let limits = resources.map(limits_set).unwrap_or_default();
    if !limits.is_empty() {
        return Err(CgroupError::Unsupported(format!(
            "cannot apply linux.resources {} without a cgroup, and this user may not make one \
             ({err}): use a cgroupsPath the user owns (a delegated cgroup), --systemd-cgroup with \
             the user's systemd, or leave the limits out",
            limits.join(", ")
        )));
    }
    tracing::debug!("rootless: running without a cgroup of the container's own: {err}");
    Ok(None)
}

/// Permission errors of an unprivileged user (EROFS: cgroupfs mounted read-only for it).
fn denied(e: &CgroupError) -> bool {
    matches!(e.errno(), Some(Errno::EACCES | Errno::EPERM | Errno::EROFS))
}

/// The resources to write: rootless, without the device rules (see the module's comment).
pub(super) fn applicable(rootless: bool, r: &LinuxResources) -> LinuxResources {
    let mut r = r.clone();
    if rootless && r.devices().is_some() {
        tracing::debug!("rootless: linux.resources.devices not applied (only the host's root may)");
        r.set_devices(None);
    }
    r
}

/// The names of the limits `r` sets (device rules aside): empty objects and nulls set nothing.
fn limits_set(r: &LinuxResources) -> Vec<String> {
    let Ok(Value::Object(fields)) = serde_json::to_value(r) else {
        return Vec::new();
    };
    fields
        .into_iter()
        .filter(|(k, v)| k != "devices" && sets_something(v))
        .map(|(k, _)| k)
        .collect()
}

fn sets_something(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => a.iter().any(sets_something),
        Value::Object(o) => o.values().any(sets_something),
        _ => true,
    }
}

/// The processes of a container without a cgroup (host pids): those in its init's pid
/// namespace when it has one of its own, else the init alone (the others in a shared namespace
/// cannot be told apart from their neighbours'). What `ps` and `kill --all` use instead of
/// cgroup.procs.
pub(super) fn processes_without_cgroup(st: &ContainerState) -> Vec<i32> {
    let init = Pid::from_raw(st.pid);
    if st.pid <= 0 || !crate::procfs::is_alive(init, st.init_start_time) {
        return Vec::new();
    }
    let ns_of = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(ns) = ns_of(&st.pid.to_string()).filter(|_| !st.shared_pid_ns) else {
        return vec![st.pid];
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![st.pid];
    };
    let mut pids: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| ns_of(&pid.to_string()).as_ref() == Some(&ns))
        .collect();
    pids.sort_unstable();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn device_rules_and_empty_objects_are_no_limits() {
        let r = resources(r#"{"devices":[{"allow":false,"access":"rwm"}],"memory":{},"hugepageLimits":[]}"#);
        assert!(limits_set(&r).is_empty());
        let r = resources(r#"{"memory":{"limit":1048576},"pids":{"limit":10}}"#);
        assert_eq!(limits_set(&r), ["memory", "pids"]);
    }

    #[test]
    fn rootless_drops_device_rules_only() {
        let r = resources(r#"{"devices":[{"allow":false,"access":"rwm"}],"pids":{"limit":10}}"#);
        let kept = applicable(true, &r);
        assert!(kept.devices().is_none());
        assert!(kept.pids().is_some());
        assert!(applicable(false, &r).devices().is_some());
    }
}
