//! Namespaces: which ones clone3 creates, which ones the init joins by path, and the time
//! namespace that has to be entered in two steps.
//!
//! Everything a spec asks to *create* is created by the single clone3 call, except the cgroup
//! namespace on cgroup v1 (it must be unshared after the parent moved the init into its cgroups,
//! or its root would be the runtime's cgroup) and the time namespace (its offsets must be written
//! before any process enters it).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result, SysContext};
use crate::spec::ns_name;

/// The namespace plan of one container.
#[derive(Default, Debug)]
pub struct Plan {
    /// Flags for clone3: the namespaces created together with the init.
    pub clone_flags: u64,
    /// Create a cgroup namespace in the init, after it was placed in its cgroups.
    pub unshare_cgroup: bool,
    /// Create a time namespace in the init (offsets written first).
    pub new_time: bool,
    /// Namespaces to join, by path, in the order they must be joined.
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
    /// `join`'s namespaces, opened by the runtime (the host's root) when the plan is made: the
    /// init joins them by fd, since it may no longer reach their paths (a joined user
    /// namespace's root cannot search containerd's 0700 state directory).
    pub join_fds: Vec<std::os::fd::OwnedFd>,
    /// A user namespace joined by path while clone3 creates others: joined before the clone,
    /// by an intermediate process (process/spawn.rs), so that they belong to it. Not in `join`.
    pub user_before_clone: Option<PathBuf>,
    /// Namespaces joined by path while clone3 creates a user namespace (a Kubernetes pod with
    /// `hostUsers: false` joins the network namespace the CRI made, owned by the host's user
    /// namespace): the init could not join them from inside its new user namespace (no
    /// privilege over the host's), so the intermediate process joins them before the clone,
    /// as runc's nsexec does. Not in `join`.
    pub join_before_clone: Vec<(LinuxNamespaceType, PathBuf)>,
    pub new_user: bool,
    pub new_mount: bool,
    pub new_uts: bool,
    pub new_pid: bool,
    pub new_net: bool,
}

fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // CLONE_NEWTIME shares its value with CSIGNAL bits in clone(2); nix does not name it.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

impl Plan {
    /// Build the plan. `cgroup_into_clone`: the init is cloned straight into its cgroup (cgroup v2
    /// with CLONE_INTO_CGROUP), so a new cgroup namespace can be made by clone3 too.
    pub fn new(spec: &Spec, cgroup_into_clone: bool) -> Result<Plan> {
        let mut plan = Plan::default();
        let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
        let mut joined_user = false;
        for ns in namespaces.into_iter().flatten() {
            let t = ns.typ();
            if let Some(path) = ns.path() {
                if t == LinuxNamespaceType::User {
                    joined_user = true;
                }
                plan.join.push((t, path.clone()));
                continue;
            }
            match t {
                LinuxNamespaceType::Time => plan.new_time = true,
                LinuxNamespaceType::Cgroup if !cgroup_into_clone => plan.unshare_cgroup = true,
                _ => plan.clone_flags |= clone_flag(t).bits() as u64,
            }
            plan.new_user |= t == LinuxNamespaceType::User;
            plan.new_mount |= t == LinuxNamespaceType::Mount;
            plan.new_uts |= t == LinuxNamespaceType::Uts;
            plan.new_pid |= t == LinuxNamespaceType::Pid;
            plan.new_net |= t == LinuxNamespaceType::Network;
        }
        if joined_user && plan.clone_flags != 0 {
            // New namespaces must be owned by the joined user namespace: clone3 must come from
            // a process already in it.
            let at = plan.join.iter().position(|(t, _)| *t == LinuxNamespaceType::User);
            plan.user_before_clone = at.map(|i| plan.join.remove(i).1);
        }
        if plan.new_user && !joined_user {
            let (before, after): (Vec<_>, Vec<_>) =
                plan.join.drain(..).partition(|(t, _)| *t != LinuxNamespaceType::Pid);
            plan.join_before_clone = before;
            plan.join = after;
        }
        // Joined user namespace first: the other joined namespaces are usually owned by it, and
        // joining them needs its capabilities. The pid namespace is joined by the parent.
        plan.join.sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
        plan.join_fds = plan.join.iter().map(|(t, p)| open_ns(*t, p)).collect::<Result<_>>()?;
        Ok(plan)
    }

    /// The init runs in a user namespace other than the runtime's (new or joined).
    pub fn in_user_ns(&self) -> bool {
        self.new_user
            || self.user_before_clone.is_some()
            || self.join.iter().any(|(t, _)| *t == LinuxNamespaceType::User)
    }

    /// The pid namespace to join, if any: joined by the parent before clone3 (setns of a pid
    /// namespace only affects children, so the parent's own view is unchanged).
    pub fn joined_pid(&self) -> Option<&Path> {
        self.join
            .iter()
            .find(|(t, _)| *t == LinuxNamespaceType::Pid)
            .map(|(_, p)| p.as_path())
    }
}

/// The spec lists no mount namespace (new or to join): the container mounts in the host's.
pub fn in_host_mount_ns(spec: &Spec) -> bool {
    !spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Mount)
}

fn open_ns(t: LinuxNamespaceType, path: &Path) -> Result<std::os::fd::OwnedFd> {
    nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("open {} namespace {}", ns_name(t), path.display()))
}

/// setns into the namespace at `path`, checking it is of type `t`.
pub fn join(t: LinuxNamespaceType, path: &Path) -> Result<()> {
    let fd = open_ns(t, path)?;
    nix::sched::setns(fd.as_fd(), clone_flag(t)).ctx(|| format!("join {} namespace {}", ns_name(t), path.display()))
}

/// Join every namespace of the plan except pid (done by the parent), by the fds the runtime
/// opened.
pub fn join_all(plan: &Plan) -> Result<()> {
    for ((t, path), fd) in plan.join.iter().zip(&plan.join_fds) {
        if *t != LinuxNamespaceType::Pid {
            nix::sched::setns(fd.as_fd(), clone_flag(*t))
                .ctx(|| format!("join {} namespace {}", ns_name(*t), path.display()))?;
        }
    }
    Ok(())
}

/// Create a time namespace with the spec's offsets and enter it. unshare(CLONE_NEWTIME) only
/// affects children, and offsets can only be written before a process enters, so: unshare, write
/// /proc/self/timens_offsets, then setns to our own time_for_children.
///
/// `in_userns`: we are root of a user namespace (new or joined), not the host's.
pub fn enter_new_time(spec: &Spec, in_userns: bool) -> Result<()> {
    nix::sched::unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)).ctx(|| "unshare time namespace".into())?;
    let offsets = spec.linux().as_ref().and_then(|l| l.time_offsets().as_ref());
    let mut text = String::new();
    for (clock, off) in offsets.into_iter().flatten() {
        let name = match clock.as_str() {
            "monotonic" | "boottime" => clock.as_str(),
            other => return Err(Error::InvalidSpec(format!("timeOffsets: unknown clock {other:?}"))),
        };
        text += &format!("{name} {} {}\n", off.secs().unwrap_or(0), off.nanosecs().unwrap_or(0));
    }
    if !text.is_empty() {
        write_time_offsets(&text, in_userns)?;
    }
    join(LinuxNamespaceType::Time, Path::new("/proc/self/ns/time_for_children"))
}

/// Write /proc/self/timens_offsets. The runtime made us non-dumpable (CVE-2019-5736), and the
/// /proc files of a non-dumpable process belong to the host's root: root of a user namespace,
/// which cannot map that uid, gets EACCES opening it for writing. So, as runc does for the
/// files its parent writes, be dumpable for just this write: no process of the container exists
/// yet, and the init still runs only the runtime's code.
fn write_time_offsets(text: &str, in_userns: bool) -> Result<()> {
    if in_userns {
        nix::sys::prctl::set_dumpable(true).ctx(|| "make the init dumpable to write its time offsets".into())?;
    }
    let written = std::fs::write("/proc/self/timens_offsets", text).ctx(|| "write /proc/self/timens_offsets".into());
    if in_userns {
        nix::sys::prctl::set_dumpable(false).ctx(|| "make the init non-dumpable again".into())?;
    }
    written
}

/// Whether this process is in the host's (initial) user namespace, whose uid_map maps every id
/// onto itself. Not there (podman's rootless namespace, a nested container), even a process with
/// every capability of its namespace cannot make device nodes or use the host's root's powers.
pub fn in_initial_user_ns() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => map.split_whitespace().eq(["0", "0", "4294967295"]),
        // No /proc: assume the initial namespace, as runc does.
        Err(_) => true,
    }
}

/// uid_map / gid_map text for the parent to write.
pub fn id_map_text(maps: &[oci_spec::runtime::LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(ns: serde_json::Value) -> Plan {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "linux": {"namespaces": ns}
        }))
        .unwrap();
        Plan::new(&spec, false).unwrap()
    }

    /// A pod with `hostUsers: false`: a new user namespace, the CRI's network namespace by
    /// path. The network namespace is joined before the user namespace is made.
    #[test]
    fn paths_beside_a_new_user_namespace_are_joined_before_the_clone() {
        let p = plan(serde_json::json!([
            {"type": "user"}, {"type": "mount"}, {"type": "pid", "path": "/proc/self/ns/pid"},
            {"type": "network", "path": "/proc/self/ns/net"}, {"type": "ipc", "path": "/proc/1/ns/ipc"}
        ]));
        let before: Vec<_> = p.join_before_clone.iter().map(|(t, _)| *t).collect();
        assert_eq!(before, vec![LinuxNamespaceType::Network, LinuxNamespaceType::Ipc]);
        // The pid namespace stays with the parent's join (joined before any clone anyway).
        assert_eq!(p.joined_pid(), Some(Path::new("/proc/self/ns/pid")));
        assert!(p.new_user && p.user_before_clone.is_none());
    }

    #[test]
    fn without_a_new_user_namespace_the_init_joins_paths_itself() {
        let p = plan(serde_json::json!([{"type": "mount"}, {"type": "network", "path": "/proc/self/ns/net"}]));
        assert!(p.join_before_clone.is_empty());
        assert_eq!((p.join.len(), p.join_fds.len()), (1, 1));
        let p = plan(serde_json::json!([
            {"type": "user", "path": "/proc/self/ns/user"}, {"type": "mount"}, {"type": "network", "path": "/proc/self/ns/net"}
        ]));
        assert!(p.join_before_clone.is_empty() && p.user_before_clone.is_some());
    }
}
