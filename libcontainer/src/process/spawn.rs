//! Cloning a container's init. Usually one clone3 from the runtime creates the init together
//! with its new namespaces. When the spec joins a user namespace by path and creates other
//! namespaces, those must belong to the joined user namespace, so they must be created by a
//! process already in it, and the runtime cannot join it itself (it would lose its privileges
//! on the host for good). As runc's nsexec does, an intermediate process joins the user
//! namespace (and a pid namespace to join), clones the init with the new namespaces as the
//! runtime's child (CLONE_PARENT, so `run` still waits for it), reports its pid and exits. The
//! same intermediate joins namespaces given by path (a pod's network namespace) before a new
//! user namespace is created, which could not join them afterwards.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxNamespaceType;

use crate::error::{Error, Result, SysContext};
use crate::namespaces::{self, Plan};
use crate::sys::{self, Forked};

/// Clone the init as `plan` says, into the cgroup `cgroup` (v2) when given. Returns in both the
/// runtime (`Parent` with the init's pid, in our pid namespace) and the init (`Child`).
pub fn clone_init(plan: &Plan, cgroup: Option<BorrowedFd<'_>>) -> Result<Forked> {
    if !plan.join_before_clone.is_empty() {
        // A new user namespace beside namespaces joined by path: join those first, as the
        // host's root, in the intermediate process.
        return clone_through(cgroup, plan.clone_flags, "the container init", || {
            for (t, path) in &plan.join_before_clone {
                namespaces::join(*t, path)?;
            }
            if let Some(pid_ns) = plan.joined_pid() {
                namespaces::join(LinuxNamespaceType::Pid, pid_ns)?;
            }
            Ok(())
        });
    }
    let Some(user_ns) = plan.user_before_clone.as_deref() else {
        // setns of a pid namespace only changes where our children go, not our own view.
        if let Some(pid_ns) = plan.joined_pid() {
            namespaces::join(LinuxNamespaceType::Pid, pid_ns)?;
        }
        return sys::clone3(plan.clone_flags, cgroup).ctx(|| "clone3 the container init".into());
    };
    clone_through(cgroup, plan.clone_flags, "the container init", || {
        namespaces::join(LinuxNamespaceType::User, user_ns)?;
        if let Some(pid_ns) = plan.joined_pid() {
            namespaces::join(LinuxNamespaceType::Pid, pid_ns)?;
        }
        Ok(())
    })
}

/// Clone `what` with `flags` through an intermediate process that first runs `enter` (joins a
/// user namespace, and a pid namespace to join), clones it as the runtime's child
/// (CLONE_PARENT), reports its pid and exits. The intermediate goes into the cgroup `cgroup`
/// (v2), so what it clones starts there too. Also how an unprivileged runtime `exec`s: only a
/// process in the container's user namespace may join its pid namespace.
pub fn clone_through(
    cgroup: Option<BorrowedFd<'_>>,
    flags: u64,
    what: &str,
    enter: impl FnOnce() -> Result<()>,
) -> Result<Forked> {
    let (report_r, report_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| format!("pipe for the pid of {what}"))?;
    match sys::clone3(0, cgroup).ctx(|| "clone3 the process that joins the user namespace".into())? {
        Forked::Child => {
            drop(report_r);
            // Our own pid namespace is still the runtime's: the pid clone3 returns is the
            // runtime's too.
            let cloned = enter().and_then(|()| {
                sys::clone3_sibling(flags).ctx(|| format!("clone3 {what} in the joined user namespace"))
            });
            match cloned {
                // The new process: the pipe ends are dropped on the way out.
                Ok(Forked::Child) => Ok(Forked::Child),
                Ok(Forked::Parent(pid)) => report(&report_w, &pid.to_string(), 0),
                Err(e) => report(&report_w, &format!("error: {e}"), 1),
            }
        }
        Forked::Parent(mid) => {
            drop(report_w);
            let mut text = String::new();
            let read = std::fs::File::from(report_r).read_to_string(&mut text);
            let _ = waitpid(mid, None);
            read.map_err(|e| Error::io(format!("read the pid of {what} from the intermediate process"), e))?;
            parse_report(&text).map(Forked::Parent)
        }
    }
}

/// Write the outcome for the runtime and end the intermediate.
fn report(pipe: &OwnedFd, text: &str, code: i32) -> ! {
    // A short write or none shows as an unreadable report to the runtime.
    let _ = nix::unistd::write(pipe.as_fd(), text.as_bytes());
    // _exit: this is a copy of the runtime, whose buffers and exit handlers are not ours to run.
    // SAFETY: _exit has no preconditions; it ends the process without running any of its code.
    unsafe { libc::_exit(code) }
}

fn parse_report(text: &str) -> Result<Pid> {
    if let Some(msg) = text.strip_prefix("error: ") {
        return Err(Error::Init(msg.to_string()));
    }
    text.parse::<i32>().map(Pid::from_raw).map_err(|_| {
        Error::Init(format!(
            "the process joining the user namespace died (it said {text:?})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports() {
        assert_eq!(parse_report("4242").unwrap(), Pid::from_raw(4242));
        let e = parse_report("error: join user namespace /x: EPERM").unwrap_err();
        assert!(e.to_string().contains("join user namespace /x: EPERM"), "{e}");
        assert!(parse_report("").is_err());
    }
}
