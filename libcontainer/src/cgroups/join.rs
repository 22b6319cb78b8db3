//! How a new process gets into its cgroup without the cost of a migration.
//!
//! Moving a process by writing its pid to `cgroup.procs` takes the kernel's global
//! cgroup_threadgroup_rwsem for writing, which waits for an RCU grace period: 5.8 ms median on
//! this 2-core VM, more than the rest of `hezi run` together. Two moves skip that lock: a clone
//! straight into a cgroup v2 directory (CLONE_INTO_CGROUP), and a thread moving itself by
//! writing `0` to a v1 hierarchy's `tasks` file (37 µs; the kernel needs no threadgroup
//! stability for the current thread). So the runtime opens the v1 `tasks` files before the
//! clone, the new process writes `0` to each as its first act, and the v2 directory (pure v2,
//! or the unified hierarchy of a hybrid host) is joined by the clone itself. The writes are
//! checked against the credentials the files were opened with (the runtime's), so they work
//! from a user namespace too.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::{CgroupError, Result};

/// What a new process needs to be in its cgroup from its first instruction on.
#[derive(Debug, Default)]
pub struct JoinFds {
    /// The cgroup v2 directory to clone into (CLONE_INTO_CGROUP).
    pub clone_into: Option<OwnedFd>,
    /// v1 hierarchies' `tasks` files, opened for writing: the child writes `0` to each.
    pub tasks: Vec<(PathBuf, OwnedFd)>,
}

impl JoinFds {
    /// Whether the clone alone places the process everywhere (pure cgroup v2).
    pub fn complete_at_clone(&self) -> bool {
        self.tasks.is_empty() && self.clone_into.is_some()
    }

    /// Open `tasks` of each v1 directory for the child.
    pub(crate) fn open_tasks(dirs: impl IntoIterator<Item = PathBuf>) -> Result<Vec<(PathBuf, OwnedFd)>> {
        dirs.into_iter()
            .map(|dir| {
                let path = dir.join("tasks");
                nix::fcntl::open(&path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
                    .map(|fd| (path.clone(), fd))
                    .map_err(|errno| CgroupError::Io {
                        op: "open".into(),
                        path,
                        errno,
                    })
            })
            .collect()
    }
}

/// In the new process, first thing: move this (single-threaded) process into each v1 cgroup.
pub fn join_tasks(tasks: &[(PathBuf, OwnedFd)]) -> Result<()> {
    for (path, fd) in tasks {
        nix::unistd::write(fd, b"0").map_err(|errno| CgroupError::Io {
            op: "write 0 to".into(),
            path: path.clone(),
            errno,
        })?;
    }
    Ok(())
}
