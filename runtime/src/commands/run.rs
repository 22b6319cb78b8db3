//! `run`: create, start, wait, delete, and exit with the container's status (128+N when its
//! init was killed by signal N). Signals sent to hezi are passed on to the container's init.

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use std::os::fd::AsFd;

use super::lifecycle::{create_options, CREATE_FLAGS};
use super::relay::Relay;
use crate::cli::{self, flag, opt, Flag};
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

/// ctr's flags that change the spec an image gives (containerd_bridge::overrides); a bundle's
/// config.json is the user's own.
const IMAGE_ONLY: &[Flag] = &[
    opt(&["env"]),
    opt(&["cwd"]),
    opt(&["hostname"]),
    flag(&["net-host"]),
    flag(&["read-only"]),
    opt(&["mount"]),
];

fn image_overrides(a: &cli::Args) -> Result<containerd_bridge::overrides::Overrides, Failure> {
    containerd_bridge::overrides::Overrides::new(
        a.values("env").to_vec(),
        a.value("cwd").map(str::to_string),
        a.value("hostname").map(str::to_string),
        a.is_set("net-host"),
        a.is_set("read-only"),
        a.values("mount"),
    )
    .map_err(|e| Failure::Usage(e.to_string()))
}

pub fn run(g: &Global, args: &[String]) -> Result<(), Failure> {
    let mut flags: Vec<Flag> = CREATE_FLAGS
        .iter()
        .map(|f| Flag {
            names: f.names,
            takes_value: f.takes_value,
        })
        .collect();
    flags.extend([
        flag(&["d", "detach"]),
        flag(&["keep"]),
        flag(&["no-subreaper"]),
        opt(&["image"]),
    ]);
    flags.extend(IMAGE_ONLY.iter().map(|f| Flag {
        names: f.names,
        takes_value: f.takes_value,
    }));
    let a = cli::parse(args, &flags, false)?;
    let id = a.id("run")?;
    let mut opts = create_options(&a)?;
    let detach = a.is_set("d");
    // In the foreground without --console-socket, hezi itself receives the pty master (used
    // only if the spec asks for a terminal).
    let console_peer = if !detach && opts.console_socket.is_none() {
        let (ours, theirs) = console_pair()?;
        opts.console_fd = Some(theirs);
        Some(ours)
    } else {
        None
    };
    if detach && a.is_set("keep") {
        return Err(Failure::Usage("--keep and --detach cannot be used together".into()));
    }
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
    // `--image REF [-- CMD ARG...]`: the bundle is made from the image store (containerd-bridge)
    // and goes again with the container (here, or in `delete` for -d).
    let image_bundle = match a.value("image") {
        Some(_) if a.value("b").is_some() => {
            return Err(Failure::Usage("--image and --bundle cannot be used together".into()))
        }
        Some(image) => {
            let over = image_overrides(&a)?;
            opts.bundle = containerd_bridge::bundle::prepare(
                &super::image::image_dirs(&g.root),
                image,
                id,
                &a.positional[1..],
                &over,
            )
            .map_err(|e| Failure::Error(format!("image {image}: {e}")))?;
            true
        }
        None => {
            if let Some(f) = IMAGE_ONLY.iter().map(|f| f.names[0]).find(|f| a.is_set(f)) {
                return Err(Failure::Usage(format!(
                    "--{f} needs --image (a bundle's config.json says it)"
                )));
            }
            false
        }
    };
    let drop_bundle = || {
        if image_bundle {
            if let Err(e) = containerd_bridge::bundle::remove(&super::image::image_dirs(&g.root), id) {
                tracing::warn!("remove the image bundle of {id}: {e}");
            }
        }
    };
    let created = match rt.create(id, &opts) {
        Ok(c) => c,
        Err(e) => {
            drop_bundle();
            return Err(e.into());
        }
    };
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
    match code {
        Ok(0) => Ok(()),
        Ok(code) => Err(Failure::Exit(code)),
        Err(e) => Err(Failure::Error(e)),
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
