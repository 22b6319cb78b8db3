//! Idmapped bind mounts (OCI 1.1: the `idmap` and `ridmap` options, a mount's `uidMappings` and
//! `gidMappings`): the source's files show their owners through a user namespace, so a
//! directory owned by host root shows as owned by the container's root, and nothing on disk
//! changes owner.
//!
//! The runtime makes the mount, as runc does: only it may clone a host tree (open_tree with
//! OPEN_TREE_CLONE) and give the copy an idmapping (mount_setattr with MOUNT_ATTR_IDMAP), which
//! needs privilege over the source's mount. The init asks for it (channel message `IdmapSource`,
//! with a [`Request`]), gets the detached mount back (`MountFd`) and attaches it with
//! move_mount(2). The user namespace is the container's own, or, when the mount has mappings of
//! its own, one made for them and dropped once the mapping is set.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, Mount};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};
use crate::sys::{self, Forked};

/// What the init asks the runtime for.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Request {
    /// The bind source, absolute (a relative one was joined to the bundle).
    pub source: String,
    /// `rbind`: the mounts below the source come along.
    pub rbind: bool,
    /// `ridmap`: the idmapping reaches those mounts too.
    pub ridmap: bool,
    /// The mount's own mappings, as uid_map/gid_map text; empty: the container's user namespace.
    pub uid_map: String,
    pub gid_map: String,
}

impl Request {
    pub fn new(m: &Mount, source: &Path, rbind: bool, ridmap: bool) -> Result<Request> {
        let text = |maps: &Option<Vec<LinuxIdMapping>>| crate::namespaces::id_map_text(maps.as_deref().unwrap_or(&[]));
        let (uid_map, gid_map) = (text(m.uid_mappings()), text(m.gid_mappings()));
        if uid_map.is_empty() != gid_map.is_empty() {
            return Err(Error::InvalidSpec(format!(
                "mount {}: an idmapped mount needs both uidMappings and gidMappings, or neither",
                m.destination().display()
            )));
        }
        let source = source
            .to_str()
            .ok_or_else(|| Error::InvalidSpec(format!("bind source {source:?} is not UTF-8")))?;
        Ok(Request {
            source: source.to_string(),
            rbind,
            ridmap,
            uid_map,
            gid_map,
        })
    }
}

/// Runtime side: the detached, idmapped copy of the request's source, for the init `pid`.
pub fn make(pid: Pid, json: &str) -> Result<OwnedFd> {
    let req: Request =
        serde_json::from_str(json).map_err(|e| Error::Other(format!("idmapped mount request: {e}")))?;
    let what = |step: &str| format!("idmapped mount of {}: {step}", req.source);
    let path = CString::new(req.source.as_str()).map_err(|_| Error::InvalidSpec(what("the path contains NUL")))?;
    let tree = sys::open_tree_clone(&path, req.rbind).map_err(|e| Error::sys(what("open_tree"), e))?;
    let userns = if req.uid_map.is_empty() {
        let own = format!("/proc/{pid}/ns/user");
        nix::fcntl::open(own.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ctx(|| what(&own))?
    } else {
        userns_for(&req.uid_map, &req.gid_map).map_err(|e| Error::Other(what(&e.to_string())))?
    };
    match sys::mount_setattr_idmap(tree.as_fd(), req.ridmap, userns.as_fd()) {
        Ok(()) => Ok(tree),
        Err(nix::errno::Errno::EINVAL) => Err(Error::InvalidSpec(what(
            "its filesystem cannot be idmapped on this kernel (mount_setattr: EINVAL)",
        ))),
        Err(e) => Err(Error::sys(what("mount_setattr(MOUNT_ATTR_IDMAP)"), e)),
    }
}

/// A user namespace with these maps, held by an fd: a child enters it and waits while its maps
/// are written and its namespace opened, then exits.
fn userns_for(uid_map: &str, gid_map: &str) -> Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    let child = match sys::clone3(libc::CLONE_NEWUSER as u64, None).ctx(|| "clone3 into a new user namespace".into())? {
        Forked::Child => {
            drop(w);
            // Wait for the runtime to be done with us (end-of-file when it closes its end).
            let _ = nix::unistd::read(r.as_fd(), &mut [0u8; 1]);
            // SAFETY: _exit ends this copy of the runtime without running any of its code.
            unsafe { libc::_exit(0) }
        }
        Forked::Parent(pid) => pid,
    };
    drop(r);
    let done = (|| {
        for (file, map) in [("uid_map", uid_map), ("gid_map", gid_map)] {
            let path = format!("/proc/{child}/{file}");
            std::fs::write(&path, map).ctx(|| format!("write {path}"))?;
        }
        let path = format!("/proc/{child}/ns/user");
        nix::fcntl::open(path.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ctx(|| format!("open {path}"))
    })();
    drop(w);
    let _ = waitpid(child, None);
    done
}
