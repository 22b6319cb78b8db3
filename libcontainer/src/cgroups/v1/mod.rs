//! cgroup v1: one directory per mounted hierarchy (named ones such as name=systemd included,
//! as runc does), and on hybrid hosts the unified directory too, for placement and for the
//! controllers (hugetlb here) that live only there.

mod resources;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use crate::cgroups::fs::{self, read, read_opt, CgDir};
use crate::cgroups::layout::Hierarchy;
use crate::cgroups::stats::{self, Stats};
use crate::cgroups::v2::resources as v2_resources;
use crate::cgroups::v2::{frozen, not_empty, signal_each, wait_until, V2Cgroup, FREEZE_TIMEOUT};
use crate::cgroups::{CgroupConfig, CgroupError, JoinFds, Manager, OomNotifier, Result, SubCgroups, TaskPlacement};

pub(crate) struct V1Manager {
    hierarchies: Vec<(Hierarchy, CgDir)>,
    /// Hybrid hosts: the container's directory in the unified hierarchy.
    unified: Option<V2Cgroup>,
}

impl V1Manager {
    pub fn new(v1: &[Hierarchy], unified: Option<&Hierarchy>, cfg: &CgroupConfig) -> Result<V1Manager> {
        let hierarchies = v1
            .iter()
            .map(|h| Ok((h.clone(), CgDir::new(&h.mount, &cfg.placement(&h.mount)?))))
            .collect::<Result<Vec<_>>>()?;
        let unified = unified.map(|h| V2Cgroup::new(h, cfg)).transpose()?;
        Ok(V1Manager { hierarchies, unified })
    }

    /// The container's directory in the v1 hierarchy that has `controller`.
    pub(crate) fn v1_dir(&self, controller: &str) -> Option<&CgDir> {
        self.hierarchies.iter().find(|(h, _)| h.has(controller)).map(|(_, d)| d)
    }

    /// Like [`V1Manager::v1_dir`], but an error naming what needed it when it is not mounted.
    pub(crate) fn need(&self, controller: &str, what: &str) -> Result<&Path> {
        self.v1_dir(controller).map(|d| d.path.as_path()).ok_or_else(|| {
            CgroupError::Unsupported(format!(
                "{what} needs the {controller} cgroup controller, which is not mounted"
            ))
        })
    }

    /// The unified directory, if it has `controller` enabled (hybrid hosts).
    pub(crate) fn unified_with(&self, controller: &str) -> Result<Option<&Path>> {
        let Some(u) = &self.unified else { return Ok(None) };
        let has = v2_resources::controllers(u.path())?.iter().any(|c| c == controller);
        Ok(has.then(|| u.path()))
    }

    /// The unified directory with `controller` turned on for it, when the spec asks for a
    /// limit only the unified hierarchy can apply (hybrid hosts).
    pub(crate) fn unified_enable(&self, controller: &str) -> Result<Option<&Path>> {
        let Some(u) = &self.unified else { return Ok(None) };
        Ok(u.enable(controller)?.then(|| u.path()))
    }

    pub(crate) fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_ref().map(|u| u.path())
    }

    fn freezer(&self) -> Freezer<'_> {
        if let Some(d) = self.v1_dir("freezer") {
            return Freezer::V1(d);
        }
        match &self.unified {
            Some(u) if u.can_freeze() => Freezer::V2(u),
            _ => Freezer::None,
        }
    }

    /// Where to list processes: pids or freezer (they see every task), else any hierarchy.
    fn procs_dir(&self) -> Option<&CgDir> {
        self.v1_dir("pids")
            .or_else(|| self.v1_dir("freezer"))
            .or_else(|| self.hierarchies.first().map(|(_, d)| d))
    }

    fn check_unused(&self) -> Result<()> {
        for (_, d) in &self.hierarchies {
            let procs = d.file("cgroup.procs");
            let pids = fs::read_procs(&procs)?;
            if !pids.is_empty() {
                return Err(not_empty(&procs, &pids));
            }
        }
        match &self.unified {
            Some(u) => u.check_unused(),
            None => Ok(()),
        }
    }

    /// Refuse a frozen cgroup (or one that would be born frozen below a frozen ancestor): the
    /// init would stop in the refrigerator and `create` would wait for ever. freezer.state of
    /// the deepest existing level reads FROZEN or FREEZING when it or an ancestor is frozen.
    fn check_not_frozen(&self) -> Result<()> {
        if let Some(d) = self.v1_dir("freezer") {
            let level = d.levels().into_iter().rev().find(|l| l.is_dir());
            // The root has no freezer.state: it cannot be frozen.
            if let Some(file) = level.map(|l| l.join("freezer.state")) {
                let state = read_opt(&file)?.unwrap_or_default();
                let state = state.trim();
                if state == "FROZEN" || state == "FREEZING" {
                    return Err(frozen(&file, state));
                }
            }
        }
        match &self.unified {
            Some(u) => u.check_not_frozen(),
            None => Ok(()),
        }
    }

    fn make(&self) -> Result<()> {
        for (h, d) in &self.hierarchies {
            if h.has("cpuset") {
                d.make(copy_cpuset)?;
            } else {
                d.make(|_, _| Ok(()))?;
            }
        }
        if let Some(u) = &self.unified {
            u.create_bare()?;
        }
        Ok(())
    }
}

/// A new v1 cpuset has no cpus and no mems, and takes no tasks until it has both: copy them
/// from the parent (runc and crun do the same).
fn copy_cpuset(dir: &Path, parent: &Path) -> Result<()> {
    for f in ["cpuset.cpus", "cpuset.mems"] {
        if read(&dir.join(f))?.trim().is_empty() {
            let v = read(&parent.join(f))?;
            fs::write(&dir.join(f), v.trim())?;
        }
    }
    Ok(())
}

enum Freezer<'a> {
    V1(&'a CgDir),
    V2(&'a V2Cgroup),
    None,
}

fn v1_set_state(d: &CgDir, want: &str) -> Result<()> {
    let file = d.file("freezer.state");
    // A cgroup can sit in FREEZING while a task is busy; writing again nudges it.
    let ok = wait_until(FREEZE_TIMEOUT, || {
        fs::write(&file, want)?;
        Ok(read(&file)?.trim() == want)
    })?;
    if ok {
        return Ok(());
    }
    if want == "FROZEN" {
        let _ = fs::write(&file, "THAWED");
    }
    Err(CgroupError::Timeout(format!(
        "{} did not read back {want} within {FREEZE_TIMEOUT:?}",
        file.display()
    )))
}

fn v1_is_frozen(d: &CgDir) -> Result<bool> {
    let file = d.file("freezer.state");
    let mut state = String::new();
    // FREEZING is transient; wait for a stable answer.
    wait_until(FREEZE_TIMEOUT, || {
        state = read_opt(&file)?.unwrap_or_default().trim().to_string();
        Ok(state != "FREEZING")
    })?;
    if state != "FROZEN" {
        return Ok(false);
    }
    // Frozen by us, or only because an ancestor is?
    Ok(read_opt(&d.file("freezer.self_freezing"))?.is_none_or(|s| s.trim() == "1"))
}

impl Manager for V1Manager {
    fn create(&self) -> Result<()> {
        self.check_unused()?;
        self.check_not_frozen()?;
        if let Err(e) = self.make() {
            let _ = self.destroy();
            return Err(e);
        }
        Ok(())
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        for (_, d) in &self.hierarchies {
            fs::write(&d.file("cgroup.procs"), &pid.to_string())?;
        }
        if let Some(u) = &self.unified {
            u.add_task(pid)?;
        }
        Ok(())
    }

    fn apply_resources(&self, r: &LinuxResources) -> Result<()> {
        resources::apply(self, r)
    }

    fn freeze(&self) -> Result<()> {
        match self.freezer() {
            Freezer::V1(d) => v1_set_state(d, "FROZEN"),
            Freezer::V2(u) => u.freeze(),
            Freezer::None => Err(CgroupError::Unsupported(
                "freezing needs the freezer cgroup controller".into(),
            )),
        }
    }

    fn thaw(&self) -> Result<()> {
        match self.freezer() {
            Freezer::V1(d) if d.exists() => v1_set_state(d, "THAWED"),
            Freezer::V2(u) if u.dir.exists() => u.thaw(),
            // Nothing to thaw.
            _ => Ok(()),
        }
    }

    fn is_frozen(&self) -> Result<bool> {
        match self.freezer() {
            Freezer::V1(d) => v1_is_frozen(d),
            Freezer::V2(u) => u.is_frozen(),
            Freezer::None => Ok(false),
        }
    }

    fn pids(&self) -> Result<Vec<i32>> {
        match self.procs_dir() {
            Some(d) => d.pids_recursive(),
            None => Ok(Vec::new()),
        }
    }

    /// Freeze (no forks in between), signal every process, then thaw unless the cgroup was
    /// frozen before; after SIGKILL always thaw, since v1 frozen tasks do not die until thawed.
    fn kill_all(&self, signal: i32) -> Result<()> {
        let Some(d) = self.procs_dir() else { return Ok(()) };
        if !d.exists() {
            return Ok(());
        }
        let freezer = !matches!(self.freezer(), Freezer::None);
        let was_frozen = freezer && self.is_frozen()?;
        if freezer && !was_frozen {
            self.freeze()?;
        }
        let res = signal_each(&d.pids_recursive()?, signal, &d.file("cgroup.procs"));
        if freezer && (!was_frozen || signal == libc::SIGKILL) {
            self.thaw()?;
        }
        res
    }

    fn destroy(&self) -> Result<()> {
        let mut first = None;
        let dirs = self
            .hierarchies
            .iter()
            .map(|(_, d)| d)
            .chain(self.unified.iter().map(|u| &u.dir));
        for d in dirs {
            if let Err(e) = d.remove() {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn v2_dir_fd(&self) -> Result<Option<OwnedFd>> {
        // CLONE_INTO_CGROUP would place the process in the unified hierarchy only.
        Ok(None)
    }

    /// The v1 hierarchies through their `tasks` files, the unified one (hybrid hosts) by the
    /// clone.
    fn join_fds(&self) -> Result<Option<JoinFds>> {
        let clone_into = match &self.unified {
            Some(u) => Some(u.dir_fd()?),
            None => None,
        };
        let tasks = JoinFds::open_tasks(self.hierarchies.iter().map(|(_, d)| d.path.clone()))?;
        Ok(Some(JoinFds { clone_into, tasks }))
    }

    fn task_placement(&self, sub: &SubCgroups) -> Result<TaskPlacement> {
        TaskPlacement::v1(&self.hierarchies, self.unified_dir(), sub)
    }

    fn stats(&self) -> Result<Stats> {
        let mut st = Stats {
            cpu: stats::v1_cpu(
                self.v1_dir("cpuacct").map(|d| d.path.as_path()),
                self.v1_dir("cpu").map(|d| d.path.as_path()),
            )?,
            ..Stats::default()
        };
        if let Some(d) = self.v1_dir("memory") {
            let m = &mut st.memory;
            m.usage = stats::v1_memory_entry(&d.path, "")?;
            m.swap = stats::v1_memory_entry(&d.path, "memsw.")?;
            m.kernel = stats::v1_memory_entry(&d.path, "kmem.")?;
            m.kernel_tcp = stats::v1_memory_entry(&d.path, "kmem.tcp.")?;
            m.raw = stats::read_keyed(&d.file("memory.stat"))?;
            m.cache = m.raw.get("cache").copied().unwrap_or(0);
        }
        if let Some(d) = self.v1_dir("pids") {
            st.pids = stats::pids(&d.path)?;
        }
        if let Some(d) = self.v1_dir("blkio") {
            st.blkio = stats::v1_blkio(&d.path)?;
        }
        if let Some(d) = self.v1_dir("hugetlb") {
            st.hugetlb = stats::v1_hugetlb(&d.path)?;
        } else if let Some(u) = self.unified_with("hugetlb")? {
            st.hugetlb = stats::v2_hugetlb(u)?;
        }
        Ok(st)
    }

    fn oom_kill_count(&self) -> Result<u64> {
        let d = self.need("memory", "counting OOM kills")?;
        stats::oom_kills(&d.join("memory.oom_control"))
    }

    fn oom_notifier(&self) -> Result<OomNotifier> {
        OomNotifier::v1(self.need("memory", "OOM notification")?)
    }

    fn dir(&self, controller: &str) -> Option<PathBuf> {
        if controller.is_empty() {
            return self.unified_dir().map(Path::to_path_buf);
        }
        self.v1_dir(controller).map(|d| d.path.clone())
    }
}

impl resources::Dirs for V1Manager {
    fn v1_dir(&self, controller: &str) -> Option<&CgDir> {
        V1Manager::v1_dir(self, controller)
    }

    fn need(&self, controller: &str, what: &str) -> Result<&Path> {
        V1Manager::need(self, controller, what)
    }

    fn unified_enable(&self, controller: &str) -> Result<Option<&Path>> {
        V1Manager::unified_enable(self, controller)
    }
}
