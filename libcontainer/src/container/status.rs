//! A container's status is derived, never stored: whether its init lives (checked against its
//! start time, so a recycled pid does not count), whether the exec fifo still waits for `start`,
//! and whether its cgroup is frozen.

use std::fmt;

use nix::unistd::Pid;
use serde::Serialize;

use super::Runtime;
use crate::cgroups;
use crate::procfs;
use crate::state::{ContainerState, EXEC_FIFO};

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

impl Runtime {
    pub fn status(&self, st: &ContainerState) -> Status {
        if st.pid == 0 {
            return Status::Creating;
        }
        if !procfs::is_alive(Pid::from_raw(st.pid), st.init_start_time) {
            return Status::Stopped;
        }
        if self.store().dir(&st.id).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        let frozen = st
            .cgroup
            .as_ref()
            .and_then(|cfg| cgroups::manager(cfg).ok())
            .is_some_and(|m| m.is_frozen().unwrap_or(false));
        if frozen {
            Status::Paused
        } else {
            Status::Running
        }
    }
}
