//! criu_opts, the options message of a dump, pre-dump or restore request (field numbers of
//! CRIU's rpc.proto), built from hezi's options and the container's spec.

use std::os::fd::{AsRawFd, OwnedFd};

use oci_spec::runtime::Spec;

use super::wire::Encoder;
use super::CriuFlags;

/// criu_network_lock_method NFTABLES: CRIU locks the container's network while it dumps with
/// libnftables, which it links, rather than by running iptables-restore (absent from minimal
/// hosts such as the test VM).
const NETWORK_LOCK_NFTABLES: i32 = 2;

pub(super) struct Opts {
    pub(super) enc: Encoder,
}

impl Opts {
    /// What every request carries: the image and work directories (fds the swrk child inherits),
    /// the log, cgroup handling, notify callbacks, the network lock and `flags`.
    pub(super) fn new(images: &OwnedFd, work: &OwnedFd, log: &str, flags: &CriuFlags) -> Opts {
        let mut enc = Encoder::new();
        enc.int32(1, images.as_raw_fd())
            .int32(17, work.as_raw_fd())
            .int32(9, 4)
            .string(10, log)
            .bool(24, flags.manage_cgroups_mode != super::CgroupMode::Ignore)
            .int32(34, flags.manage_cgroups_mode.criu_value())
            .bool(12, true)
            .int32(64, NETWORK_LOCK_NFTABLES)
            // orphan_pts_master: a container's terminal is a pty whose master the console
            // socket's listener holds, outside the dumped tree; CRIU dumps the slave alone and,
            // on restore, makes a new pair and passes its master back (as runc has it).
            .bool(50, true);
        let bools = [
            (4, flags.ext_unix_sk),
            (5, flags.tcp_established),
            (7, flags.shell_job),
            (8, flags.file_locks),
            (16, flags.auto_dedup),
        ];
        for (field, on) in bools {
            if on {
                enc.bool(field, true);
            }
        }
        if flags.empty_ns_network {
            enc.int32(38, libc::CLONE_NEWNET);
        }
        Opts { enc }
    }

    /// ps (11): send the memory to the `criu page-server` at `address:port`.
    pub(super) fn page_server(&mut self, address: &str, port: i32) {
        let mut m = Encoder::new();
        m.string(1, address).int32(2, port);
        self.enc.bytes(11, &m.into_bytes());
    }

    /// ext_mnt (23): a mount CRIU must not dump but find (restore: re-create) from `val`.
    fn ext_mount(&mut self, key: &str, val: &str) {
        let mut m = Encoder::new();
        m.string(1, key).string(2, val);
        self.enc.bytes(23, &m.into_bytes());
    }

    /// external (37): a resource CRIU must not dump but name by `key` (restore gets it back
    /// through inherit_fd).
    pub(super) fn external(&mut self, key: &str) {
        self.enc.string(37, key);
    }

    /// inherit_fd (27): on restore, the file CRIU's image names `key` is the swrk child's `fd`.
    pub(super) fn inherit_fd(&mut self, key: &str, fd: i32) {
        let mut m = Encoder::new();
        m.string(1, key).int32(2, fd);
        self.enc.bytes(27, &m.into_bytes());
    }

    /// join_ns (39): on restore, enter the namespace `ns` ("ipc", "uts", ...) at `file`.
    pub(super) fn join_ns(&mut self, ns: &str, file: &str) {
        let mut m = Encoder::new();
        m.string(1, ns).string(2, file);
        self.enc.bytes(39, &m.into_bytes());
    }

    /// cg_root (25): restore controller `ctrl`'s cgroups (every controller's where empty) below
    /// `path` instead of where the image says they were.
    pub(super) fn cgroup_root(&mut self, ctrl: &str, path: &str) {
        let mut m = Encoder::new();
        if !ctrl.is_empty() {
            m.string(1, ctrl);
        }
        m.string(2, path);
        self.enc.bytes(25, &m.into_bytes());
    }

    /// Without a cgroup namespace, the container's /sys/fs/cgroup (v2) or each of its
    /// /sys/fs/cgroup/<hierarchy> (v1, hybrid) is a bind of its own cgroup directory on the host
    /// (rootfs/cgroupfs.rs), whose root CRIU cannot find in the container ("doesn't have a proper
    /// root mount"). At dump each is external, named by its mount point in the container (from
    /// `pid`'s mountinfo).
    pub(super) fn cgroup_binds_dump(&mut self, pid: i32) -> crate::error::Result<()> {
        use crate::error::SysContext;
        let path = format!("/proc/{pid}/mountinfo");
        let text = std::fs::read_to_string(&path).ctx(|| format!("read {path}"))?;
        for point in cgroup_binds(&text) {
            self.ext_mount(&point, &point);
        }
        Ok(())
    }

    /// At restore: each hierarchy's bind comes from the restored container's cgroup directory
    /// (made before CRIU runs), under the spec's cgroup mount.
    pub(super) fn cgroup_binds_restore(&mut self, spec: &Spec, cgroup: &crate::cgroups::CgroupConfig) {
        let Some(dest) = spec
            .mounts()
            .iter()
            .flatten()
            .find(|m| m.typ().as_deref() == Some("cgroup"))
            .map(|m| m.destination().clone())
        else {
            return;
        };
        // A pure v2 host's one hierarchy is the mount itself; v1 and hybrid ones are
        // subdirectories named as on the host.
        let pure_v2 = matches!(crate::cgroups::Layout::detect(), Ok(crate::cgroups::Layout::Unified(_)));
        for (mount, placement) in &cgroup.dirs {
            let Some(name) = mount.file_name() else { continue };
            let host = mount.join(placement.dir.strip_prefix("/").unwrap_or(&placement.dir));
            let key = if pure_v2 { dest.clone() } else { dest.join(name) };
            self.ext_mount(&key.to_string_lossy(), &host.to_string_lossy());
        }
    }

    /// The bind mounts of the spec are external to the container: a dump names each by its
    /// destination, and restore binds it from its source again (as runc describes them).
    /// Masked files are /dev/null bound over them, named the same way; masked directories are
    /// read-only tmpfs mounts CRIU dumps itself. `dump_pid` (the init, at dump) tells files from
    /// directories; restore maps every masked path, and CRIU only looks up those its image names.
    pub(super) fn external_mounts(&mut self, spec: &Spec, dump_pid: Option<i32>) {
        for m in spec.mounts().iter().flatten() {
            let bind =
                m.typ().as_deref() == Some("bind") || m.options().iter().flatten().any(|o| o == "bind" || o == "rbind");
            if !bind {
                continue;
            }
            let dest = m.destination().to_string_lossy().into_owned();
            let src = m
                .source()
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            self.ext_mount(&dest, if dump_pid.is_some() { &dest } else { &src });
        }
        for p in spec.linux().iter().flat_map(|l| l.masked_paths().iter().flatten()) {
            match dump_pid {
                Some(pid) => {
                    let inside = format!("/proc/{pid}/root/{}", p.trim_start_matches('/'));
                    // Absent or a directory: not a bind of /dev/null.
                    if std::fs::metadata(&inside).is_ok_and(|m| !m.is_dir()) {
                        self.ext_mount(p, p);
                    }
                }
                None => self.ext_mount(p, "/dev/null"),
            }
        }
    }
}

/// The mount points of cgroup mounts in `mountinfo` that are binds of a subdirectory (root
/// field not "/").
fn cgroup_binds(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (head, tail) = l.split_once(" - ")?;
            let fstype = tail.split(' ').next()?;
            let f: Vec<&str> = head.split(' ').collect();
            let (root, point) = (*f.get(3)?, *f.get(4)?);
            (matches!(fstype, "cgroup" | "cgroup2") && root != "/").then(|| point.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_binds_are_the_subdirectory_binds() {
        let mi = "\
30 29 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw
31 30 0:27 /hezi/c1 /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory
32 30 0:28 /hezi/c1 /sys/fs/cgroup/unified ro - cgroup2 cgroup2 rw
33 29 0:29 / /sys/fs/cgroup2 rw - cgroup2 cgroup2 rw
34 29 0:30 /x /data rw - ext4 /dev/vda rw";
        assert_eq!(
            cgroup_binds(mi),
            vec!["/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"]
        );
    }
}
