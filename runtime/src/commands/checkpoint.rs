//! `checkpoint` and `restore` (runc's flags), through libcontainer's CRIU driver.

use std::path::PathBuf;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

use crate::cli::{self, flag, opt, Flag};
use crate::{Failure, Global};
use libcontainer::checkpoint::{parse_page_server, CgroupMode, CheckpointOptions, CriuFlags, RestoreOptions};

/// runc's flags hezi does not implement (yet): refused by name rather than ignored.
const UNSUPPORTED: &[&str] = &["lsm-profile", "lsm-mount-context"];

const CHECKPOINT_FLAGS: &[Flag] = &[
    opt(&["image-path"]),
    opt(&["work-path"]),
    flag(&["leave-running"]),
    flag(&["tcp-established"]),
    flag(&["shell-job"]),
    flag(&["file-locks"]),
    opt(&["parent-path"]),
    flag(&["pre-dump"]),
    opt(&["page-server"]),
    flag(&["lazy-pages"]),
    opt(&["status-fd"]),
    flag(&["auto-dedup"]),
    flag(&["ext-unix-sk"]),
    opt(&["manage-cgroups-mode"]),
    opt(&["empty-ns"]),
];

const RESTORE_FLAGS: &[Flag] = &[
    opt(&["image-path"]),
    opt(&["work-path"]),
    opt(&["b", "bundle"]),
    flag(&["d", "detach"]),
    opt(&["pid-file"]),
    flag(&["tcp-established"]),
    flag(&["shell-job"]),
    flag(&["file-locks"]),
    opt(&["console-socket"]),
    flag(&["no-subreaper"]),
    flag(&["no-pivot"]),
    flag(&["auto-dedup"]),
    flag(&["lazy-pages"]),
    flag(&["ext-unix-sk"]),
    opt(&["manage-cgroups-mode"]),
    opt(&["empty-ns"]),
    opt(&["lsm-profile"]),
    opt(&["lsm-mount-context"]),
];

/// The flags dump and restore share.
fn criu_flags(a: &cli::Args) -> Result<CriuFlags, Failure> {
    let manage_cgroups_mode = match a.value("manage-cgroups-mode") {
        Some(m) => CgroupMode::parse(m)?,
        None => CgroupMode::default(),
    };
    let empty_ns_network = match a.value("empty-ns") {
        None => false,
        Some("network") => true,
        Some(other) => {
            return Err(Failure::Usage(format!(
                "--empty-ns {other:?}: only \"network\" can be left empty (as runc)"
            )))
        }
    };
    Ok(CriuFlags {
        tcp_established: a.is_set("tcp-established"),
        ext_unix_sk: a.is_set("ext-unix-sk"),
        shell_job: a.is_set("shell-job"),
        file_locks: a.is_set("file-locks"),
        manage_cgroups_mode,
        empty_ns_network,
        auto_dedup: a.is_set("auto-dedup"),
    })
}

fn refuse_unsupported(a: &cli::Args, command: &str, extra: &[&str]) -> Result<(), Failure> {
    for name in UNSUPPORTED.iter().chain(extra) {
        if a.value(name).is_some_and(|v| v != "false") {
            return Err(Failure::Error(format!(
                "{command}: --{name} is not supported by hezi yet"
            )));
        }
    }
    Ok(())
}

/// `--status-fd N`: an fd the caller gave us, open for writing (taken over: closed when the
/// checkpoint is done).
fn status_fd(n: &str) -> Result<std::os::fd::OwnedFd, Failure> {
    use std::os::fd::FromRawFd;
    let fd: i32 = n
        .parse()
        .map_err(|_| Failure::Usage(format!("--status-fd {n:?}: not a file descriptor number")))?;
    // SAFETY: fcntl(F_GETFL) on a plain integer; an fd that is not open fails with EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        let e = std::io::Error::last_os_error();
        return Err(Failure::Error(format!("--status-fd {fd}: {e}")));
    }
    if flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(Failure::Error(format!("--status-fd {fd}: not open for writing")));
    }
    // SAFETY: the fd is open (F_GETFL succeeded) and was handed to hezi for this use alone.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// runc's default image path is ./checkpoint under the current directory.
fn image_path(a: &cli::Args) -> PathBuf {
    PathBuf::from(a.value("image-path").unwrap_or("checkpoint"))
}

pub fn checkpoint(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse(args, CHECKPOINT_FLAGS, false)?;
    let id = a.id("checkpoint")?;
    refuse_unsupported(&a, "checkpoint", &[])?;
    let opts = CheckpointOptions {
        image_path: image_path(&a),
        work_path: a.value("work-path").map(PathBuf::from),
        parent_path: a.value("parent-path").map(PathBuf::from),
        pre_dump: a.is_set("pre-dump"),
        page_server: a.value("page-server").map(parse_page_server).transpose()?,
        lazy_pages: a.is_set("lazy-pages"),
        status_fd: a.value("status-fd").map(status_fd).transpose()?,
        leave_running: a.is_set("leave-running"),
        flags: criu_flags(&a)?,
    };
    Ok(super::runtime(g)?.checkpoint(id, &opts)?)
}

pub fn restore(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse(args, RESTORE_FLAGS, false)?;
    let id = a.id("restore")?;
    refuse_unsupported(&a, "restore", &[])?;
    let detach = a.is_set("d");
    let pid_file = match a.value("pid-file") {
        Some(p) => Some(std::path::absolute(p).map_err(|e| Failure::Usage(format!("restore: --pid-file {p}: {e}")))?),
        None => None,
    };
    let opts = RestoreOptions {
        image_path: image_path(&a),
        work_path: a.value("work-path").map(PathBuf::from),
        bundle: a.value("b").map(PathBuf::from),
        pid_file,
        lazy_pages: a.is_set("lazy-pages"),
        console: a
            .value("console-socket")
            .map(|p| libcontainer::checkpoint::Console::Socket(PathBuf::from(p))),
        flags: criu_flags(&a)?,
    };
    let rt = super::runtime(g)?;
    // As `run`: block what we forward before the init exists, so nothing is lost.
    let mut set = SigSet::empty();
    if !detach {
        for s in super::run::FORWARDED {
            set.add(*s);
        }
        set.add(Signal::SIGCHLD);
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .map_err(|e| Failure::Error(format!("block signals: {e}")))?;
    }
    let claim = super::container_ns::claim_id(g, id)?;
    let restored = rt.restore(id, &opts)?;
    drop(claim);
    if detach {
        return Ok(());
    }
    // Without -d, restore behaves as `run`: wait for the init (our child: CRIU restores it as
    // its sibling), pass on its exit code and delete the container.
    let code = super::run::wait_forwarding(Pid::from_raw(restored.pid.as_raw()), &set, None);
    if let Err(e) = rt.delete(id, true) {
        tracing::warn!("delete {id} after restore: {e}");
    }
    match code {
        Ok(0) => Ok(()),
        Ok(code) => Err(Failure::Exit(code)),
        Err(e) => Err(Failure::Error(e)),
    }
}
