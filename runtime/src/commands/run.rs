//! `run`: create, start, wait, delete, and exit with the container's status (128+N when its
//! init was killed by signal N). Signals sent to hezi are passed on to the container's init.

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use std::os::fd::AsFd;

use super::lifecycle::{create_options, CREATE_FLAGS};
use super::relay::Relay;
use super::run_image::{self, IMAGE, IMAGE_FLAGS};
use super::stdio::{self, IO_FLAGS};
use crate::cli::{self, flag, Flag};
use crate::{Failure, Global};

pub const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// Every flag `run` takes: create's, its own, `--image` with ctr's flags, and the stdio ones.
pub fn flags() -> Vec<Flag> {
    let mut flags: Vec<Flag> = run_image::copy(CREATE_FLAGS).collect();
    flags.extend([
        flag(&["d", "detach"]),
        flag(&["keep"]),
        flag(&["rm"]),
        flag(&["no-subreaper"]),
        IMAGE,
    ]);
    flags.extend(run_image::copy(IMAGE_FLAGS));
    flags.extend(run_image::copy(IO_FLAGS));
    flags
}

pub fn run(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("run", args, &flags())?;
    let id = a.id("run")?;
    let mut opts = create_options(&a)?;
    let detach = a.is_set("d");
    if detach && a.is_set("keep") {
        return Err(Failure::Usage("--keep and --detach cannot be used together".into()));
    }
    // ctr's --rm is what run does anyway (runc's run deletes the container it ran); it only
    // conflicts with the flags that keep the container.
    if a.is_set("rm") && (detach || a.is_set("keep")) {
        return Err(Failure::Usage(format!(
            "--rm and --{} cannot be used together",
            if detach { "detach" } else { "keep" }
        )));
    }
    let io = stdio::target(&a)?;
    // In the foreground without --console-socket, hezi itself receives the pty master (used
    // only if the spec asks for a terminal).
    let console_peer = if !detach && opts.console_socket.is_none() {
        let (ours, theirs) = console_pair()?;
        opts.console_fd = Some(theirs);
        Some(ours)
    } else {
        None
    };
    let rt = super::runtime(g)?;
    // Block the signals we forward (and SIGCHLD) before the init exists, so none is lost or
    // kills us between create and the wait loop; the init resets its mask.
    let mut set = SigSet::empty();
    if !detach {
        for s in FORWARDED {
            set.add(*s);
        }
        set.add(Signal::SIGCHLD);
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .map_err(|e| Failure::Error(format!("block signals: {e}")))?;
    }
    let claim = super::container_ns::claim_id(g, id)?;
    // `--image REF [-- CMD ARG...]`: the bundle is made from the image store (containerd-bridge)
    // and goes again with the container (here, or in `delete` for -d and --keep).
    let image_bundle = run_image::prepare(g, &a, id, &mut opts)?;
    let drop_bundle = || {
        if image_bundle {
            run_image::remove_bundle(g, id);
        }
    };
    let (created, logger) = match create_with(g, &rt, id, &opts, &io) {
        Ok(c) => c,
        Err(e) => {
            drop_bundle();
            return Err(e);
        }
    };
    drop(claim); // the container's state directory holds the id now
    drop(opts.console_fd.take());
    let relay = match (&console_peer, created.terminal) {
        (Some(peer), true) => {
            let started = libcontainer::tty::recv_fd(peer.as_fd())
                .map_err(|e| e.to_string())
                .and_then(|master| Relay::start(master).map_err(|e| format!("attach the terminal: {e}")));
            match started {
                Ok(r) => Some(r),
                Err(e) => {
                    let _ = rt.delete(id, true);
                    drop_bundle();
                    return Err(Failure::Error(e));
                }
            }
        }
        _ => None,
    };
    if let Err(e) = rt.start(id) {
        let _ = rt.delete(id, true);
        drop_bundle();
        return Err(e.into());
    }
    if detach {
        return Ok(());
    }
    let code = wait_forwarding(created.pid, &set, relay.as_ref());
    if let Some(r) = relay {
        r.finish();
    }
    if !a.is_set("keep") {
        if let Err(e) = rt.delete(id, true) {
            tracing::warn!("delete {id} after run: {e}");
        }
        drop_bundle();
    }
    if let Some(l) = logger {
        super::logger::finish(l);
    }
    match code {
        Ok(0) => Ok(()),
        Ok(code) => Err(Failure::Exit(code)),
        Err(e) => Err(Failure::Error(e)),
    }
}

/// `create`, with the container's stdio pointed at `io` (--null-io, --log-uri) while the init is
/// cloned. A log file is opened (made), or a logging program started, only now, once the bundle
/// is there: bad input before this point leaves no empty log or stray logger behind. Returns
/// the logging program too, if there is one; a failed create ends it.
pub fn create_with(
    g: &Global,
    rt: &libcontainer::Runtime,
    id: &str,
    opts: &libcontainer::CreateOptions,
    io: &stdio::Target,
) -> Result<(libcontainer::container::Created, Option<std::process::Child>), Failure> {
    let ns = super::image::namespace(g)?;
    let mut opened = io.open(id, &ns)?;
    let logger = opened.as_mut().and_then(|o| o.logger.take());
    // hezi's own stdio is back when the guard drops, at the end of the arm.
    let created = match opened.as_ref().map(stdio::Opened::redirect).transpose() {
        Ok(_guard) => rt.create(id, opts).map_err(Failure::from),
        Err(e) => Err(e),
    };
    // Our copies of the pipes to the logger go now: the container holds its own.
    drop(opened);
    match created {
        Ok(c) => Ok((c, logger)),
        Err(e) => {
            if let Some(mut l) = logger {
                let _ = l.kill();
                let _ = l.wait();
            }
            Err(e)
        }
    }
}

/// Wait for the init, forwarding every blocked signal but SIGCHLD to it (SIGWINCH resizes the
/// container's terminal instead, when hezi relays one).
pub fn wait_forwarding(pid: Pid, set: &SigSet, relay: Option<&Relay>) -> Result<i32, String> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("wait for container init {pid}: {e}")),
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(Signal::SIGWINCH) if relay.is_some() => relay.iter().for_each(|r| r.resize()),
            Ok(sig) => {
                let _ = kill(pid, sig);
            }
            Err(e) => return Err(format!("wait for signals: {e}")),
        }
    }
}

/// A connected socket pair standing in for `--console-socket` when hezi relays the terminal itself.
pub fn console_pair() -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd), Failure> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| Failure::Error(format!("socketpair for the console: {e}")))
}
