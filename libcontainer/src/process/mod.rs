//! The container's init: the clone3'd child of `create` that sets the container up, waits for
//! `start`, then execs the user's program (so the program is the container's pid 1).

pub mod attrs;
pub mod channel;
pub mod init;
pub mod join;
pub mod privileges;
pub mod program;

use crate::error::{Result, SysContext};

/// Give SIGPIPE back its default action. Rust's runtime ignores it in every Rust program (hezi
/// and its shim included), and an ignored signal stays ignored across execve: the container's
/// program would get EPIPE instead of dying, and `yes | head` would spin forever. runc's and
/// crun's containers start with the default, so ours do too.
pub(crate) fn default_sigpipe() -> Result<()> {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: SIG_DFL installs no handler, so no code of ours can run in signal context.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }
        .map(drop)
        .ctx(|| "reset SIGPIPE to its default action".into())
}
