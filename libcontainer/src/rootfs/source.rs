//! Bind sources the init cannot open itself.
//!
//! In a user namespace the container's root is an unprivileged host uid: a source below a
//! directory only host root may enter (mode 0700, say) is out of its reach, though the runtime
//! was asked to mount it. As runc does, the init then asks the runtime (channel message
//! `MountSource`), which opens the path with its own credentials but in the init's mount tree,
//! so that a source below an earlier mount of the same spec names what that mount put there.
//! The reply is an O_PATH fd of the init's own mount namespace, which mount(2) accepts as the
//! source of a bind.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::process::channel::{Channel, Msg, PassedFd};

const RESOLVE_IN_ROOT: u64 = 0x10;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;

/// Runtime side: open `path` (absolute) as the init `pid` sees it. `/proc/PID/root` is the
/// init's root in its own mount namespace (the host's / until the root switch); resolving in it
/// keeps an absolute symlink in the path inside that tree too.
pub fn open_for(pid: Pid, path: &str) -> Result<OwnedFd> {
    let root_path = format!("/proc/{pid}/root");
    let root = nix::fcntl::open(
        root_path.as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::sys_path("open the init's root", Path::new(&root_path), e))?;
    let c = CString::new(path).map_err(|_| Error::InvalidArgument(format!("bind source {path:?} contains NUL")))?;
    crate::sys::openat2(
        root.as_fd(),
        &c,
        OFlag::O_PATH.bits(),
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
    .map_err(|e| Error::sys_path("open bind source", Path::new(path), e))
}

/// What the mounts ask the runtime for (init side).
pub trait Runtime {
    /// A bind source the init cannot open itself.
    fn open(&self, source: &Path) -> Result<OwnedFd>;
    /// An idmapped bind mount, detached, to attach with move_mount.
    fn idmapped(&self, req: &super::idmap::Request) -> Result<OwnedFd>;
}

/// The runtime at the other end of the init's channel.
pub struct Ask<'a>(pub &'a Channel);

impl Ask<'_> {
    fn ask(&self, msg: Msg, what: &str) -> Result<OwnedFd> {
        self.0.send(&msg)?;
        match self.0.recv()? {
            Some(Msg::MountFd(PassedFd(fd))) => Ok(fd),
            Some(Msg::Failed(why)) => Err(Error::Other(why)),
            other => Err(Error::Other(format!("expected the runtime to {what}, got {other:?}"))),
        }
    }
}

impl Runtime for Ask<'_> {
    fn open(&self, source: &Path) -> Result<OwnedFd> {
        let text = source
            .to_str()
            .ok_or_else(|| Error::InvalidSpec(format!("bind source {source:?} is not UTF-8")))?;
        self.ask(
            Msg::MountSource(text.to_string()),
            &format!("open bind source {}", source.display()),
        )
    }

    fn idmapped(&self, req: &super::idmap::Request) -> Result<OwnedFd> {
        let json = serde_json::to_string(req).map_err(|e| Error::Other(format!("idmapped mount request: {e}")))?;
        self.ask(
            Msg::IdmapSource(json),
            &format!("make an idmapped mount of {}", req.source),
        )
    }
}
