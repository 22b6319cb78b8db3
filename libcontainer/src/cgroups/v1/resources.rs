//! The spec's resources written to cgroup v1 files, in runc's order and with its workarounds for
//! values that depend on each other (memory and memsw, quota and period, rt runtime and period).
//! A field that needs a controller the host has not mounted is an error, never skipped.

use std::collections::HashMap;
use std::path::Path;

use nix::errno::Errno;
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxRdma, LinuxResources,
};

use crate::cgroups::fs::{self, read_u64, CgDir};
use crate::cgroups::v2::resources::{self as v2_resources, check_page_size, rdma_line};
use crate::cgroups::{device_rules, CgroupError, Result};

/// runc's and crun's words for unified keys on a v1 or hybrid host.
pub(crate) const V1_NO_UNIFIED: &str = "invalid configuration: cannot use unified on cgroup v1";

/// What these writers need of the v1 manager: each controller's directory, and the hybrid
/// host's unified one. `V1Manager` implements it; the trait keeps the dependency one-way.
pub(super) trait Dirs {
    fn v1_dir(&self, controller: &str) -> Option<&CgDir>;
    /// The directory of `controller`, or an error naming `what` needs it.
    fn need(&self, controller: &str, what: &str) -> Result<&Path>;
    /// The unified directory with `controller` turned on, where the spec asks for a limit only
    /// the unified hierarchy can apply.
    fn unified_enable(&self, controller: &str) -> Result<Option<&Path>>;
}

pub(crate) fn apply(m: &dyn Dirs, r: &LinuxResources) -> Result<()> {
    // Refused before anything is written, as runc and crun do even on hybrid hosts: the keys
    // name v2 files, and the v1 controllers that own those resources would not see them.
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(CgroupError::Invalid(V1_NO_UNIFIED.into()));
    }
    if let Some(d) = r.devices() {
        devices(m.need("devices", "linux.resources.devices")?, d)?;
    }
    if let Some(mem) = r.memory() {
        memory(m, mem)?;
    }
    if let Some(c) = r.cpu() {
        cpu(m, c)?;
    }
    if let Some(p) = r.pids() {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        fs::write(&m.need("pids", "pids.limit")?.join("pids.max"), &v)?;
    }
    if let Some(b) = r.block_io() {
        blkio(m, b)?;
    }
    if let Some(h) = r.hugepage_limits().as_ref().filter(|h| !h.is_empty()) {
        hugetlb(m, h)?;
    }
    if let Some(n) = r.network() {
        network(m, n)?;
    }
    if let Some(rd) = r.rdma().as_ref().filter(|r| !r.is_empty()) {
        rdma(m, rd)?;
    }
    Ok(())
}

fn devices(dir: &Path, devs: &[LinuxDeviceCgroup]) -> Result<()> {
    for (allow, rule) in device_rules::rules(devs)? {
        let file = if allow { "devices.allow" } else { "devices.deny" };
        fs::write(&dir.join(file), &rule)?;
    }
    Ok(())
}

/// A v1 byte limit: positive, or -1 for unlimited.
fn limit_str(what: &str, v: i64) -> Result<String> {
    if v < -1 {
        return Err(CgroupError::Invalid(format!("{what} {v} is negative")));
    }
    Ok(v.to_string())
}

fn memory(m: &dyn Dirs, mem: &LinuxMemory) -> Result<()> {
    let limit = mem.limit().filter(|l| *l != 0);
    let mut swap = mem.swap().filter(|s| *s != 0);
    // As runc: unlimited memory with no swap given means unlimited memory + swap too.
    if limit == Some(-1) && swap.is_none() {
        swap = Some(-1);
    }
    let any = limit.is_some()
        || swap.is_some()
        || mem.reservation().is_some()
        || mem.swappiness().is_some()
        || mem.disable_oom_killer().is_some()
        || mem.kernel_tcp().is_some()
        || mem.use_hierarchy().is_some();
    if !any {
        return Ok(());
    }
    let dir = m.need("memory", "linux.resources.memory")?;
    let limit_file = dir.join("memory.limit_in_bytes");
    let memsw_file = dir.join("memory.memsw.limit_in_bytes");
    if let (Some(true), Some(l)) = (mem.check_before_update(), limit.filter(|l| *l > 0)) {
        let usage_file = dir.join("memory.usage_in_bytes");
        let usage = read_u64(&usage_file)?;
        if usage > l as u64 {
            return Err(CgroupError::Invalid(format!(
                "memory limit {l} is below the current usage {usage} ({})",
                usage_file.display()
            )));
        }
    }
    match (limit, swap) {
        (l, Some(s)) if memsw_file.exists() => {
            let s_str = limit_str("memory.swap", s)?;
            // memory.limit <= memsw.limit must hold after each write: raise memsw first when it
            // grows, lower the memory limit first when memsw shrinks.
            let current = read_u64(&memsw_file)?;
            let grows = s == -1 || s as u64 > current;
            if grows {
                fs::write(&memsw_file, &s_str)?;
            }
            if let Some(l) = l {
                fs::write(&limit_file, &limit_str("memory.limit", l)?)?;
            }
            if !grows {
                fs::write(&memsw_file, &s_str)?;
            }
        }
        (l, Some(s)) => {
            // No swap accounting: "unlimited" is what there is anyway.
            if s != -1 {
                return Err(CgroupError::Unsupported(format!(
                    "memory.swap {s}: {} does not exist (swap accounting is off; boot with swapaccount=1)",
                    memsw_file.display()
                )));
            }
            if let Some(l) = l {
                fs::write(&limit_file, &limit_str("memory.limit", l)?)?;
            }
        }
        (Some(l), None) => fs::write(&limit_file, &limit_str("memory.limit", l)?)?,
        (None, None) => {}
    }
    if let Some(r) = mem.reservation().filter(|r| *r != 0) {
        fs::write(
            &dir.join("memory.soft_limit_in_bytes"),
            &limit_str("memory.reservation", r)?,
        )?;
    }
    if let Some(s) = mem.swappiness() {
        if s > 100 {
            return Err(CgroupError::Invalid(format!("memory.swappiness {s} is above 100")));
        }
        fs::write(&dir.join("memory.swappiness"), &s.to_string())?;
    }
    if let Some(d) = mem.disable_oom_killer() {
        fs::write(&dir.join("memory.oom_control"), if d { "1" } else { "0" })?;
    }
    if let Some(t) = mem.kernel_tcp() {
        fs::write(
            &dir.join("memory.kmem.tcp.limit_in_bytes"),
            &limit_str("memory.kernelTCP", t)?,
        )?;
    }
    if let Some(h) = mem.use_hierarchy() {
        fs::write(&dir.join("memory.use_hierarchy"), if h { "1" } else { "0" })?;
    }
    // memory.kernel is deprecated by the spec and ignored, as runc does.
    Ok(())
}

/// Two files whose valid values depend on each other (quota/period, rt runtime/period): write
/// `first`; if the kernel refuses it (EINVAL) and `second` is also being set, write `second`
/// and then retry `first`.
fn write_pair(dir: &Path, first: (&str, Option<String>), second: (&str, Option<String>)) -> Result<()> {
    let mut retry = None;
    if let Some(v) = &first.1 {
        match fs::write(&dir.join(first.0), v) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(Errno::EINVAL) && second.1.is_some() => retry = Some(v),
            Err(e) => return Err(e),
        }
    }
    if let Some(v) = &second.1 {
        fs::write(&dir.join(second.0), v)?;
    }
    if let Some(v) = retry {
        fs::write(&dir.join(first.0), v)?;
    }
    Ok(())
}

fn cpu(m: &dyn Dirs, c: &LinuxCpu) -> Result<()> {
    let nz_u = |v: Option<u64>| v.filter(|v| *v != 0).map(|v| v.to_string());
    let nz_i = |v: Option<i64>| v.filter(|v| *v != 0).map(|v| v.to_string());
    let (shares, period, quota) = (nz_u(c.shares()), nz_u(c.period()), nz_i(c.quota()));
    let (rt_period, rt_runtime) = (nz_u(c.realtime_period()), nz_i(c.realtime_runtime()));
    let any_cpu = shares.is_some()
        || period.is_some()
        || quota.is_some()
        || c.burst().is_some()
        || rt_period.is_some()
        || rt_runtime.is_some()
        || c.idle().is_some();
    if any_cpu {
        let dir = m.need("cpu", "linux.resources.cpu")?;
        if let Some(s) = &shares {
            fs::write(&dir.join("cpu.shares"), s)?;
        }
        write_pair(dir, ("cpu.cfs_period_us", period), ("cpu.cfs_quota_us", quota))?;
        if let Some(b) = c.burst() {
            fs::write(&dir.join("cpu.cfs_burst_us"), &b.to_string())?;
        }
        write_pair(dir, ("cpu.rt_period_us", rt_period), ("cpu.rt_runtime_us", rt_runtime))?;
        if let Some(i) = c.idle() {
            fs::write(&dir.join("cpu.idle"), &i.to_string())?;
        }
    }
    let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = c.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_some() || mems.is_some() {
        let dir = m.need("cpuset", "linux.resources.cpu.cpus/mems")?;
        if let Some(v) = cpus {
            fs::write(&dir.join("cpuset.cpus"), v)?;
        }
        if let Some(v) = mems {
            fs::write(&dir.join("cpuset.mems"), v)?;
        }
    }
    Ok(())
}

fn blkio(m: &dyn Dirs, b: &LinuxBlockIo) -> Result<()> {
    let weight = b.weight().filter(|w| *w != 0);
    let throttles = [
        (b.throttle_read_bps_device(), "blkio.throttle.read_bps_device"),
        (b.throttle_write_bps_device(), "blkio.throttle.write_bps_device"),
        (b.throttle_read_iops_device(), "blkio.throttle.read_iops_device"),
        (b.throttle_write_iops_device(), "blkio.throttle.write_iops_device"),
    ];
    let any = weight.is_some()
        || b.leaf_weight().is_some()
        || b.weight_device().as_ref().is_some_and(|d| !d.is_empty())
        || throttles.iter().any(|(l, _)| l.as_ref().is_some_and(|l| !l.is_empty()));
    if !any {
        return Ok(());
    }
    let dir = m.need("blkio", "linux.resources.blockIO")?;
    // CFQ's blkio.weight is gone from current kernels; BFQ offers blkio.bfq.weight (same range).
    let prefix = if dir.join("blkio.weight").exists() {
        "blkio."
    } else {
        "blkio.bfq."
    };
    if let Some(w) = weight {
        fs::write(&dir.join(format!("{prefix}weight")), &w.to_string())?;
    }
    if let Some(lw) = b.leaf_weight() {
        fs::write(&dir.join("blkio.leaf_weight"), &lw.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            let f = dir.join(format!("{prefix}weight_device"));
            fs::write(&f, &format!("{}:{} {w}", d.major(), d.minor()))?;
        }
        if let Some(lw) = d.leaf_weight() {
            fs::write(
                &dir.join("blkio.leaf_weight_device"),
                &format!("{}:{} {lw}", d.major(), d.minor()),
            )?;
        }
    }
    for (list, file) in throttles {
        for d in list.iter().flatten() {
            // A rate of 0 removes the device's limit.
            fs::write(&dir.join(file), &format!("{}:{} {}", d.major(), d.minor(), d.rate()))?;
        }
    }
    Ok(())
}

/// hugetlb is on whichever hierarchy has it: a v1 mount, or (hybrid) the unified one.
fn hugetlb(m: &dyn Dirs, limits: &[LinuxHugepageLimit]) -> Result<()> {
    if let Some(d) = m.v1_dir("hugetlb") {
        for h in limits {
            check_page_size(h.page_size())?;
            let v = limit_str("hugepageLimits limit", h.limit())?;
            fs::write(&d.file(&format!("hugetlb.{}.limit_in_bytes", h.page_size())), &v)?;
            let rsvd = d.file(&format!("hugetlb.{}.rsvd.limit_in_bytes", h.page_size()));
            if rsvd.exists() {
                fs::write(&rsvd, &v)?;
            }
        }
        return Ok(());
    }
    match m.unified_enable("hugetlb")? {
        Some(u) => v2_resources::hugetlb(u, limits),
        None => Err(CgroupError::Unsupported(
            "hugepageLimits need the hugetlb cgroup controller, which is in no mounted hierarchy".into(),
        )),
    }
}

fn rdma(m: &dyn Dirs, map: &HashMap<String, LinuxRdma>) -> Result<()> {
    if let Some(d) = m.v1_dir("rdma") {
        for (dev, r) in map {
            fs::write(&d.file("rdma.max"), &rdma_line(dev, r)?)?;
        }
        return Ok(());
    }
    match m.unified_enable("rdma")? {
        Some(u) => v2_resources::rdma(u, map),
        None => Err(CgroupError::Unsupported(
            "linux.resources.rdma needs the rdma cgroup controller, which is in no mounted hierarchy".into(),
        )),
    }
}

fn network(m: &dyn Dirs, n: &LinuxNetwork) -> Result<()> {
    if let Some(id) = n.class_id() {
        fs::write(
            &m.need("net_cls", "network.classID")?.join("net_cls.classid"),
            &id.to_string(),
        )?;
    }
    let prios = n.priorities().as_deref().unwrap_or_default();
    if !prios.is_empty() {
        let dir = m.need("net_prio", "network.priorities")?;
        for p in prios {
            if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                return Err(CgroupError::Invalid(format!(
                    "network priority interface name {:?} is invalid",
                    p.name()
                )));
            }
            fs::write(
                &dir.join("net_prio.ifpriomap"),
                &format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    Ok(())
}
