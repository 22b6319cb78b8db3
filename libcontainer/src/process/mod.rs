//! The container's init: the clone3'd child of `create` that sets the container up, waits for
//! `start`, then execs the user's program (so the program is the container's pid 1).

pub mod affinity;
pub mod attrs;
pub mod channel;
pub mod cwd;
pub mod env;
pub mod init;
pub mod join;
pub mod mempolicy;
pub mod privileges;
pub mod program;
pub mod spawn;

use crate::error::{Result, SysContext};

/// The signal state a container's process (init or exec'd) starts from, as runc's and crun's
/// do: nothing blocked (the parent blocks signals while it waits for us), and SIGPIPE at its
/// default action. Rust's runtime ignores SIGPIPE in every Rust program (hezi and its shim
/// included), and an ignored signal stays ignored across execve: the container's program would
/// get EPIPE instead of dying, and `yes | head` would spin forever.
pub(crate) fn reset_signals() -> Result<()> {
    use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).ctx(|| "reset the signal mask".into())?;
    // SAFETY: SIG_DFL installs no handler, so no code of ours can run in signal context.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }
        .map(drop)
        .ctx(|| "reset SIGPIPE to its default action".into())
}
