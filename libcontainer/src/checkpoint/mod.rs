//! Checkpoint and restore through CRIU (`criu swrk` RPC): dump.rs writes a running container's
//! processes to an image directory (or pre-dumps its memory), restore.rs brings them back and
//! adopts the restored init into hezi's state so `state`, `kill`, `exec` and `delete` work on it
//! as on any container. opts.rs builds CRIU's options; rpc.rs speaks its protocol with the
//! hand-written protobuf codec of wire.rs; descriptors.rs carries the init's stdio across.

mod descriptors;
mod dump;
mod mountpoints;
mod namespaces;
mod netlock;
mod opts;
mod restore;
mod rpc;
mod wire;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};

pub use restore::Restored;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_server_addresses() {
        assert_eq!(parse_page_server("10.0.0.2:27").unwrap(), ("10.0.0.2".into(), 27));
        assert_eq!(parse_page_server("[::1]:4000").unwrap(), ("::1".into(), 4000));
        for bad in ["10.0.0.2", ":27", "h:0", "h:99999", "h:x"] {
            assert!(parse_page_server(bad).is_err(), "{bad}");
        }
    }
}

/// The copy of hezi's state a checkpoint carries, for restore to adopt.
const STATE_IN_IMAGE: &str = "hezi-state.json";

/// How CRIU treats the container's cgroups (runc's `--manage-cgroups-mode`; rpc.proto's
/// criu_cg_mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupMode {
    /// Restore the cgroup paths, leaving existing ones and their properties alone (runc's
    /// default, and hezi's).
    #[default]
    Soft,
    /// Restore paths and properties.
    Full,
    /// As full, and fail where a cgroup exists already.
    Strict,
    /// Neither dump nor restore cgroups.
    Ignore,
}

impl CgroupMode {
    pub fn parse(s: &str) -> Result<CgroupMode> {
        Ok(match s {
            "soft" => CgroupMode::Soft,
            "full" => CgroupMode::Full,
            "strict" => CgroupMode::Strict,
            "ignore" => CgroupMode::Ignore,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "--manage-cgroups-mode {other:?}: must be soft, full, strict or ignore"
                )))
            }
        })
    }

    /// The rpc.proto value.
    fn criu_value(self) -> i32 {
        match self {
            CgroupMode::Ignore => 0,
            CgroupMode::Soft => 3,
            CgroupMode::Full => 4,
            CgroupMode::Strict => 5,
        }
    }
}

/// What both dump and restore take (runc's flags of the same names).
#[derive(Debug, Default, Clone)]
pub struct CriuFlags {
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: CgroupMode,
    /// `--empty-ns network`: the network namespace is the caller's to set up again on restore
    /// (CRIU dumps none of it).
    pub empty_ns_network: bool,
    pub auto_dedup: bool,
}

/// `hezi checkpoint`'s options (runc's names).
#[derive(Debug, Default)]
pub struct CheckpointOptions {
    pub image_path: PathBuf,
    /// Where CRIU writes its log (default: the image directory).
    pub work_path: Option<PathBuf>,
    /// A pre-dump's image directory this dump (or pre-dump) writes only the changes since,
    /// relative to `image_path` or absolute (CRIU's parent_img).
    pub parent_path: Option<PathBuf>,
    /// Write the memory only and leave the container running, for a later dump with
    /// `parent_path` to copy less while the container is stopped.
    pub pre_dump: bool,
    /// `--page-server ADDRESS:PORT`: the memory goes to a `criu page-server` there (another
    /// host's, for a migration) instead of the image directory.
    pub page_server: Option<(String, i32)>,
    /// `--lazy-pages`: dump everything but the memory, which the dump then serves at
    /// `page_server` until a restore with `--lazy-pages` has fetched it all.
    pub lazy_pages: bool,
    /// `--status-fd`: told (one byte, then closed) when a lazy dump's page server is ready.
    pub status_fd: Option<OwnedFd>,
    pub leave_running: bool,
    pub flags: CriuFlags,
}

/// Where a restored terminal's new pty master goes.
#[derive(Debug)]
pub enum Console {
    /// `--console-socket`: connected to when the master exists.
    Socket(PathBuf),
    /// A connected socket the caller made (hezi's shim).
    Fd(OwnedFd),
}

/// `hezi restore`'s options.
#[derive(Debug, Default)]
pub struct RestoreOptions {
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    /// The bundle whose config.json and rootfs the restored container uses (default: the
    /// checkpointed container's).
    pub bundle: Option<PathBuf>,
    /// Where to write the restored init's pid (absolute: it is kept in the state).
    pub pid_file: Option<PathBuf>,
    /// Where the restored terminal goes, for a container with one (CRIU makes a new pty pair).
    pub console: Option<Console>,
    /// `--lazy-pages`: the memory comes from a `criu lazy-pages` daemon as it is touched.
    pub lazy_pages: bool,
    pub flags: CriuFlags,
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

/// runc's `--page-server` value: `ADDRESS:PORT` (the port after the last colon, so an IPv6
/// address may be given bare or in brackets).
pub fn parse_page_server(s: &str) -> Result<(String, i32)> {
    let bad = || Error::InvalidArgument(format!("--page-server {s:?}: want ADDRESS:PORT"));
    let (addr, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if addr.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((addr.to_string(), i32::from(port)))
}

/// A copy of this process's `fd` above the standard three and without close-on-exec, under
/// the number criu swrk will find it by when it inherits it (a stdio fd, a namespace).
fn inheritable(fd: std::os::fd::RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD) on a plain integer; a closed fd fails with EBADF.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD, 3) };
    if copy < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `copy` was just made by fcntl and nothing else owns it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(copy) })
}

fn open_dir(path: &Path, what: &str) -> Result<OwnedFd> {
    // Not O_CLOEXEC: criu swrk inherits it and finds it by number.
    open(path, OFlag::O_DIRECTORY | OFlag::O_RDONLY, Mode::empty())
        .map_err(|e| Error::InvalidArgument(format!("{what} {}: {e}", path.display())))
}
