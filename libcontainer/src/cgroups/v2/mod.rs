//! cgroup v2: the manager for pure v2 hosts, and [`V2Cgroup`], the operations on one v2
//! directory that the hybrid manager also uses for the unified hierarchy.

pub(super) mod bpf;
mod device_filter;
mod insn;
pub(super) mod resources;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

use crate::cgroups::fs::{self, read_opt, read_procs, CgDir};
use crate::cgroups::layout::Hierarchy;
use crate::cgroups::stats::{self, flat_keyed, Stats};
use crate::cgroups::{CgroupConfig, CgroupError, Manager, OomNotifier, Result, SubCgroups, TaskPlacement};
use resources::{self as v2_resources, controllers};

/// How long freeze and thaw wait for the kernel to report the new state.
pub(crate) const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// Poll `done` with a growing pause until it is true or `timeout` passes.
pub(crate) fn wait_until(timeout: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Send `signal` to each pid; a process that exited meanwhile is fine.
pub(crate) fn signal_each(pids: &[i32], signal: i32, file: &Path) -> Result<()> {
    let sig = Signal::try_from(signal).map_err(|_| CgroupError::Invalid(format!("{signal} is not a signal")))?;
    for &p in pids {
        match kill(Pid::from_raw(p), sig) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => {
                return Err(CgroupError::Io {
                    op: format!("send {sig} to pid {p} listed in"),
                    path: file.to_path_buf(),
                    errno: e,
                })
            }
        }
    }
    Ok(())
}

/// A container's cgroup that holds processes already: kill_all and destroy would hit them.
/// The words are runc's (1.2 factory: "container's cgroup is not empty"), then where.
pub(crate) fn not_empty(procs: &Path, pids: &[i32]) -> CgroupError {
    CgroupError::Invalid(format!(
        "container's cgroup is not empty: {} process(es) found in {} ({pids:?})",
        pids.len(),
        procs.display()
    ))
}

/// A container's cgroup found frozen at create, in runc's words, then which file said so.
pub(crate) fn frozen(file: &Path, value: &str) -> CgroupError {
    CgroupError::Invalid(format!(
        "container's cgroup unexpectedly frozen: {} reads {value}",
        file.display()
    ))
}

/// One container's directory in a cgroup v2 hierarchy.
#[derive(Debug, Clone)]
pub(crate) struct V2Cgroup {
    pub dir: CgDir,
}

impl V2Cgroup {
    pub fn new(h: &Hierarchy, cfg: &CgroupConfig) -> Result<V2Cgroup> {
        Ok(V2Cgroup {
            dir: CgDir::new(&h.mount, &cfg.placement(&h.mount)?),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir.path
    }

    /// The directory as an fd, for CLONE_INTO_CGROUP.
    pub fn dir_fd(&self) -> Result<OwnedFd> {
        let p = self.path();
        nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|errno| {
            CgroupError::Io {
                op: "open".into(),
                path: p.to_path_buf(),
                errno,
            }
        })
    }

    /// Refuse a cgroup that already has processes: kill_all and destroy would hit them.
    pub fn check_unused(&self) -> Result<()> {
        let procs = self.dir.file("cgroup.procs");
        let pids = read_procs(&procs)?;
        if !pids.is_empty() {
            return Err(not_empty(&procs, &pids));
        }
        Ok(())
    }

    /// Refuse a cgroup that is frozen, or that would be born frozen below a frozen ancestor:
    /// the container's init would stop in it before exec and `create` would wait for ever.
    /// Read at the deepest level that exists: its cgroup.events says "frozen 1" when it or an
    /// ancestor is frozen, cgroup.freeze says whether it was asked to freeze (the kernel may
    /// not have finished).
    pub fn check_not_frozen(&self) -> Result<()> {
        let Some(level) = self.dir.levels().into_iter().rev().find(|l| l.is_dir()) else {
            return Ok(());
        };
        let events = level.join("cgroup.events");
        if read_opt(&events)?.is_some_and(|s| s.lines().any(|l| l.trim() == "frozen 1")) {
            return Err(frozen(&events, "frozen 1"));
        }
        let freeze = level.join("cgroup.freeze");
        if read_opt(&freeze)?.is_some_and(|s| s.trim() == "1") {
            return Err(frozen(&freeze, "1"));
        }
        Ok(())
    }

    /// mkdir the levels and give every ancestor's children the controllers it has.
    pub fn create(&self) -> Result<()> {
        self.dir.make(|_, _| Ok(()))?;
        let levels = self.dir.levels();
        for level in &levels[..levels.len() - 1] {
            enable_controllers(level)?;
        }
        Ok(())
    }

    /// mkdir the levels only. On a hybrid host the unified directory is there for placement:
    /// turning its controllers on would change the host for every container (and crun
    /// refuses a hybrid host whose v2 mount has controllers in use).
    pub fn create_bare(&self) -> Result<()> {
        self.dir.make(|_, _| Ok(()))
    }

    /// Turn `controller` on in every ancestor, so this cgroup has it; false when the
    /// hierarchy does not offer it.
    pub fn enable(&self, controller: &str) -> Result<bool> {
        let levels = self.dir.levels();
        for level in &levels[..levels.len() - 1] {
            if !v2_resources::controllers(level)?.iter().any(|c| c == controller) {
                return Ok(false);
            }
            let file = level.join("cgroup.subtree_control");
            let on = read_opt(&file)?.unwrap_or_default();
            if !on.split_whitespace().any(|c| c == controller) {
                fs::write(&file, &format!("+{controller}"))?;
            }
        }
        Ok(true)
    }

    pub fn add_task(&self, pid: i32) -> Result<()> {
        fs::write(&self.dir.file("cgroup.procs"), &pid.to_string())
    }

    fn frozen_event(&self) -> Result<Option<bool>> {
        let Some(ev) = read_opt(&self.dir.file("cgroup.events"))? else {
            return Ok(None);
        };
        Ok(flat_keyed(&ev).get("frozen").map(|v| *v == 1))
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        let file = self.dir.file("cgroup.freeze");
        fs::write(&file, if frozen { "1" } else { "0" })?;
        if wait_until(FREEZE_TIMEOUT, || Ok(self.frozen_event()? != Some(!frozen)))? {
            return Ok(());
        }
        if frozen {
            let _ = fs::write(&file, "0");
        }
        Err(CgroupError::Timeout(format!(
            "{} did not report frozen {} within {FREEZE_TIMEOUT:?}",
            self.dir.file("cgroup.events").display(),
            u8::from(frozen)
        )))
    }

    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    pub fn is_frozen(&self) -> Result<bool> {
        Ok(read_opt(&self.dir.file("cgroup.freeze"))?.is_some_and(|s| s.trim() == "1"))
    }

    pub fn can_freeze(&self) -> bool {
        self.dir.file("cgroup.freeze").exists()
    }

    /// SIGKILL through cgroup.kill (5.14+) when there is one: it reaches every process at once,
    /// frozen or not. Otherwise freeze (no forks in between), signal each process, and thaw
    /// unless it was frozen before.
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        let kill_file = self.dir.file("cgroup.kill");
        if signal == libc::SIGKILL && kill_file.exists() {
            return match fs::write(&kill_file, "1") {
                Err(e) if e.errno() == Some(Errno::ENOENT) => Ok(()),
                r => r,
            };
        }
        if !self.dir.exists() {
            return Ok(());
        }
        let was_frozen = self.is_frozen()?;
        let freezer = self.can_freeze();
        if freezer && !was_frozen {
            self.freeze()?;
        }
        let res = signal_each(&self.dir.pids_recursive()?, signal, &self.dir.file("cgroup.procs"));
        if freezer && !was_frozen {
            self.thaw()?;
        }
        res
    }
}

/// Enable in `level`'s cgroup.subtree_control every controller it has that is not on yet. A
/// controller the kernel refuses (a cgroup with processes, a threaded subtree) is left off, as
/// runc does; writing one of its files later says that it is missing.
fn enable_controllers(level: &Path) -> Result<()> {
    let avail = controllers(level)?;
    let on = read_opt(&level.join("cgroup.subtree_control"))?.unwrap_or_default();
    let missing: Vec<String> = avail
        .iter()
        .filter(|c| !on.split_whitespace().any(|o| o == c.as_str()))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let file = level.join("cgroup.subtree_control");
    if fs::write(&file, &missing.join(" ")).is_err() {
        for c in &missing {
            if let Err(e) = fs::write(&file, c) {
                tracing::debug!("leaving a controller off: {e}");
            }
        }
    }
    Ok(())
}

/// The manager of a pure cgroup v2 host.
pub(crate) struct V2Manager {
    cg: V2Cgroup,
}

impl V2Manager {
    pub fn new(h: &Hierarchy, cfg: &CgroupConfig) -> Result<V2Manager> {
        Ok(V2Manager {
            cg: V2Cgroup::new(h, cfg)?,
        })
    }
}

impl Manager for V2Manager {
    fn create(&self) -> Result<()> {
        self.cg.check_unused()?;
        self.cg.check_not_frozen()?;
        if let Err(e) = self.cg.create() {
            let _ = self.cg.dir.remove();
            return Err(e);
        }
        Ok(())
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        self.cg.add_task(pid)
    }

    fn apply_resources(&self, r: &LinuxResources) -> Result<()> {
        v2_resources::apply(self.cg.path(), r)
    }

    fn freeze(&self) -> Result<()> {
        self.cg.freeze()
    }

    fn thaw(&self) -> Result<()> {
        self.cg.thaw()
    }

    fn is_frozen(&self) -> Result<bool> {
        self.cg.is_frozen()
    }

    fn pids(&self) -> Result<Vec<i32>> {
        self.cg.dir.pids_recursive()
    }

    fn kill_all(&self, signal: i32) -> Result<()> {
        self.cg.kill_all(signal)
    }

    fn destroy(&self) -> Result<()> {
        self.cg.dir.remove()
    }

    fn v2_dir_fd(&self) -> Result<Option<OwnedFd>> {
        self.cg.dir_fd().map(Some)
    }

    fn task_placement(&self, sub: &SubCgroups) -> Result<TaskPlacement> {
        TaskPlacement::v2(self.cg.path(), sub, true)
    }

    fn stats(&self) -> Result<Stats> {
        stats::v2(self.cg.path())
    }

    fn oom_kill_count(&self) -> Result<u64> {
        stats::oom_kills(&self.cg.dir.file("memory.events"))
    }

    fn oom_notifier(&self) -> Result<OomNotifier> {
        OomNotifier::v2(self.cg.path())
    }

    fn dir(&self, _controller: &str) -> Option<PathBuf> {
        Some(self.cg.path().to_path_buf())
    }
}
