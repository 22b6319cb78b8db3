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
