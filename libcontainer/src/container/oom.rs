//! A container's OOM kills for a front end that watches them across threads (the shim): the
//! cgroup's config, which may cross threads where a cgroup manager may not, and the watch. The
//! manager is made again for each look; kills are rare.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use super::{cgroup_err, Runtime};
use crate::cgroups::{self, CgroupConfig, OomWatch};
use crate::error::Result;

pub struct OomEvents {
    cfg: CgroupConfig,
    watch: OomWatch,
}

impl Runtime {
    /// Start counting OOM kills of container `id` from now (the baseline is taken here: take it
    /// before the container's program runs, or an early kill counts as old). None: the
    /// container has no cgroup.
    pub fn oom_events(&self, id: &str) -> Result<Option<OomEvents>> {
        let Some(cfg) = self.load(id)?.cgroup else {
            return Ok(None);
        };
        let mgr = cgroups::manager(&cfg).map_err(cgroup_err)?;
        let watch = OomWatch::new(&*mgr).map_err(cgroup_err)?;
        Ok(Some(OomEvents { cfg, watch }))
    }
}

impl OomEvents {
    /// Whether the kill counter grew since the last look, waiting up to `grace` for it (the v1
    /// notification comes before the killer counts its victim).
    pub fn check(&mut self, grace: Duration) -> Result<bool> {
        let mgr = cgroups::manager(&self.cfg).map_err(cgroup_err)?;
        Ok(self.watch.check(&*mgr, grace))
    }

    /// The container's cgroup is gone (deleted): nothing more to watch.
    pub fn cgroup_gone(&self) -> bool {
        cgroups::manager(&self.cfg).and_then(|m| m.oom_kill_count()).is_err()
    }
}

/// Readable when an OOM may have happened; then [`OomEvents::check`].
impl AsFd for OomEvents {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.watch.as_fd()
    }
}
