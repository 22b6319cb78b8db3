//! Checkpoint and restore through CRIU (`criu swrk` RPC): dump.rs writes a running container's
//! processes to an image directory, restore.rs brings them back and adopts the restored init
//! into hezi's state so `state`, `kill`, `exec` and `delete` work on it as on any container.
//! rpc.rs speaks CRIU's protocol with the hand-written protobuf codec of wire.rs.

mod dump;
mod restore;
mod rpc;
mod wire;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use wire::Encoder;

pub use restore::Restored;

/// The copy of hezi's state a checkpoint carries, for restore to adopt.
const STATE_IN_IMAGE: &str = "hezi-state.json";

/// `hezi checkpoint`'s options (runc's names).
#[derive(Debug, Default, Clone)]
pub struct CheckpointOptions {
    pub image_path: PathBuf,
    /// Where CRIU writes its log (default: the image directory).
    pub work_path: Option<PathBuf>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub shell_job: bool,
    pub file_locks: bool,
}

/// `hezi restore`'s options.
#[derive(Debug, Default, Clone)]
pub struct RestoreOptions {
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    /// The bundle whose config.json and rootfs the restored container uses (default: the
    /// checkpointed container's).
    pub bundle: Option<PathBuf>,
    pub tcp_established: bool,
    pub shell_job: bool,
    pub file_locks: bool,
}

/// Fail with what `criu check` printed unless CRIU can work on this kernel (Debian's 3.17 fails
/// on kernels newer than it knows, e.g. "Failed to fill self vdso symtable").
pub fn check_criu() -> Result<()> {
    let out = Command::new("criu").arg("check").output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Other("criu is not installed (no criu in PATH); checkpoint and restore need CRIU".into())
        } else {
            Error::io("run criu check", e)
        }
    })?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let first_error = text.lines().find(|l| l.starts_with("Error")).unwrap_or(text.trim());
    Err(Error::Other(format!(
        "CRIU cannot checkpoint or restore on this kernel: `criu check` failed: {first_error}"
    )))
}

fn open_dir(path: &Path, what: &str) -> Result<OwnedFd> {
    // Not O_CLOEXEC: criu swrk inherits it and finds it by number.
    open(path, OFlag::O_DIRECTORY | OFlag::O_RDONLY, Mode::empty())
        .map_err(|e| Error::InvalidArgument(format!("{what} {}: {e}", path.display())))
}

/// criu_opts fields hezi sets on both dump and restore (field numbers of rpc.proto).
struct Opts {
    enc: Encoder,
}

/// criu_cg_mode SOFT: CRIU restores the cgroup paths and leaves existing ones alone (runc's
/// default).
const CG_MODE_SOFT: i32 = 3;

/// criu_network_lock_method NFTABLES: CRIU locks the container's network while it dumps with
/// libnftables, which it links, rather than by running iptables-restore (absent from minimal
/// hosts such as the test VM).
const NETWORK_LOCK_NFTABLES: i32 = 2;

impl Opts {
    fn new(images: &OwnedFd, work: &OwnedFd, log: &str, common: (bool, bool, bool)) -> Opts {
        use std::os::fd::AsRawFd;
        let mut enc = Encoder::new();
        enc.int32(1, images.as_raw_fd())
            .int32(17, work.as_raw_fd())
            .int32(9, 4)
            .string(10, log)
            .bool(24, true)
            .int32(34, CG_MODE_SOFT)
            .bool(12, true)
            .int32(64, NETWORK_LOCK_NFTABLES);
        let (tcp, shell, locks) = common;
        if tcp {
            enc.bool(5, true);
        }
        if shell {
            enc.bool(7, true);
        }
        if locks {
            enc.bool(8, true);
        }
        Opts { enc }
    }

    /// ext_mnt (23): a mount CRIU must not dump but find (restore: re-create) from `val`.
    fn ext_mount(&mut self, key: &str, val: &str) {
        let mut m = Encoder::new();
        m.string(1, key).string(2, val);
        self.enc.bytes(23, &m.into_bytes());
    }

    /// The bind mounts of the spec are external to the container: a dump names each by its
    /// destination, and restore binds it from its source again (as runc describes them).
    /// Masked files are /dev/null bound over them, named the same way; masked directories are
    /// read-only tmpfs mounts CRIU dumps itself. `dump_pid` (the init, at dump) tells files from
    /// directories; restore maps every masked path, and CRIU only looks up those its image names.
    fn external_mounts(&mut self, spec: &Spec, dump_pid: Option<i32>) {
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
