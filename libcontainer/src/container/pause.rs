//! `pause` and `resume`: freeze and thaw every process of a container through its cgroup (v1
//! freezer.state, v2 cgroup.freeze). The status is never stored: `state` reads the freezer, so a
//! paused container reports `paused` to any later command.

use super::{cgroup_err, manager_of, Runtime, Status};
use crate::error::{Error, Result};

impl Runtime {
    /// Freeze a running container. runc refuses any other status ("container not running").
    pub fn pause(&self, id: &str) -> Result<()> {
        crate::id::validate(id)?;
        let _lock = self.store().lock(id)?;
        let st = self.store().load(id)?;
        match self.status(&st) {
            Status::Running => {}
            s => return Err(wrong(id, "pause", s)),
        }
        manager_of(&st)?.freeze().map_err(cgroup_err)
    }

    /// Thaw a paused container; any other status is an error ("container not paused").
    pub fn resume(&self, id: &str) -> Result<()> {
        crate::id::validate(id)?;
        let _lock = self.store().lock(id)?;
        let st = self.store().load(id)?;
        match self.status(&st) {
            Status::Paused => {}
            s => return Err(wrong(id, "resume", s)),
        }
        manager_of(&st)?.thaw().map_err(cgroup_err)
    }
}

fn wrong(id: &str, op: &'static str, status: Status) -> Error {
    Error::WrongState {
        id: id.into(),
        op,
        status: status.to_string(),
    }
}
