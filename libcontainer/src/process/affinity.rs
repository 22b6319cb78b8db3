//! CPU affinity of a process `exec` starts (OCI 1.2 `process.execCPUAffinity`), set by the
//! runtime around the clone, as runc does:
//! - `initial` on the runtime's own thread just before the clone, so the child is born there and
//!   does its setup there, before it is in the container's cgroup; the runtime's thread gets its
//!   old affinity back right after;
//! - once the child is in the container's cgroup: `final`; with neither given, every CPU, which
//!   the kernel narrows to the cgroup's cpuset. A process exec'd into a container must not keep
//!   the runtime's affinity (`taskset -c 0 hezi exec …`, or a runtime started from a pinned
//!   service): moving a task into a cgroup does not always reset it. `initial` alone leaves the
//!   affinity to the kernel after the move, as the spec says.
//!
//! The spec applies it to processes joining a container only; the init keeps what it inherits.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use crate::error::{Error, Result, SysContext};

/// Parse a CPU list like `0-3,7`.
pub fn parse_cpu_list(list: &str) -> Result<Vec<usize>> {
    let bad = || Error::InvalidSpec(format!("invalid CPU list {list:?}"));
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a > b || b >= CpuSet::count() {
            return Err(bad());
        }
        cpus.extend(a..=b);
    }
    Ok(cpus)
}

fn cpu_set(list: &str, what: &str) -> Result<CpuSet> {
    let mut set = CpuSet::new();
    for cpu in parse_cpu_list(list)? {
        set.set(cpu).ctx(|| format!("CPU {cpu} in execCPUAffinity.{what}"))?;
    }
    Ok(set)
}

/// execCPUAffinity's `initial` and `final` lists (oci-spec refuses empty or malformed ones).
fn lists(process: &Process) -> (Option<&str>, Option<&str>) {
    match process.exec_cpu_affinity() {
        Some(a) => (a.initial().as_deref(), a.cpu_affinity_final().as_deref()),
        None => (None, None),
    }
}

/// `initial` on the calling thread, until dropped. The clone that follows must run on this
/// thread (the runtime is single-threaded there).
#[must_use = "the affinity is restored when this is dropped"]
pub struct Initial {
    old: Option<CpuSet>,
}

impl Initial {
    pub fn apply(process: &Process) -> Result<Initial> {
        let (Some(list), _) = lists(process) else {
            return Ok(Initial { old: None });
        };
        let set = cpu_set(list, "initial")?;
        let me = Pid::from_raw(0);
        let old = sched_getaffinity(me).ctx(|| "read the runtime's CPU affinity".into())?;
        sched_setaffinity(me, &set).ctx(|| format!("set initial CPU affinity {list}"))?;
        Ok(Initial { old: Some(old) })
    }
}

impl Drop for Initial {
    fn drop(&mut self) {
        if let Some(old) = &self.old {
            if let Err(e) = sched_setaffinity(Pid::from_raw(0), old) {
                tracing::warn!("restore the runtime's CPU affinity after the clone: {e}");
            }
        }
    }
}

/// Once `pid` is in the container's cgroup: `final`, or, when execCPUAffinity gives neither
/// list, every CPU (the kernel keeps only those of the cgroup's cpuset).
pub fn apply_final(pid: Pid, process: &Process) -> Result<()> {
    match lists(process) {
        (_, Some(list)) => {
            sched_setaffinity(pid, &cpu_set(list, "final")?).ctx(|| format!("set final CPU affinity {list}"))
        }
        (Some(_), None) => Ok(()),
        (None, None) => {
            let mut all = CpuSet::new();
            for cpu in 0..CpuSet::count() {
                all.set(cpu).ctx(|| format!("CPU {cpu} in a full CPU set"))?;
            }
            // As runc: a failure here only means the process keeps the runtime's affinity.
            if let Err(e) = sched_setaffinity(pid, &all) {
                tracing::warn!("reset the CPU affinity of exec'd process {pid}: {e}; it keeps the runtime's");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list("3").unwrap(), vec![3]);
        assert!(parse_cpu_list("2-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("0-100000").is_err());
    }

    #[test]
    fn lists_as_given() {
        let p: Process = serde_json::from_value(serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0},
            "execCPUAffinity": {"initial": "0"}
        }))
        .unwrap();
        assert_eq!(lists(&p), (Some("0"), None));
        assert_eq!(lists(&Process::default()), (None, None));
    }
}
