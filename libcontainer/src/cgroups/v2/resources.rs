//! The spec's resources written to a cgroup v2 directory, converted as runc does. Also used
//! for the unified directory of a hybrid host (hugetlb, rdma, unified keys there).

use std::collections::HashMap;
use std::path::Path;

use nix::errno::Errno;
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxPids, LinuxRdma, LinuxResources,
};

use crate::cgroups::convert::{blkio_weight_to_io_weight, cpu_max, shares_to_weight, swap_to_v2, V2Value};
use crate::cgroups::fs::{self, read_opt, read_u64};
use crate::cgroups::{CgroupError, Result};

/// The controllers enabled for `dir` (its cgroup.controllers).
pub(crate) fn controllers(dir: &Path) -> Result<Vec<String>> {
    Ok(read_opt(&dir.join("cgroup.controllers"))?
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect())
}

/// Write `value` to `dir/file`; a missing file whose controller is not enabled gets an error
/// saying so.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let e = match fs::write(&dir.join(file), value) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    if e.errno() == Some(Errno::ENOENT) {
        let ctl = file.split('.').next().unwrap_or(file);
        let have = controllers(dir)?;
        if ctl != "cgroup" && !have.iter().any(|c| c == ctl) {
            return Err(CgroupError::Unsupported(format!(
                "cannot write {value} to {}: the {ctl} controller is not enabled there (cgroup.controllers: {})",
                dir.join(file).display(),
                if have.is_empty() { "none".into() } else { have.join(" ") }
            )));
        }
    }
    Err(e)
}

/// Apply everything (pure cgroup v2).
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    if let Some(p) = r.pids() {
        pids(dir, p)?;
    }
    if let Some(m) = r.memory() {
        memory(dir, m)?;
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dir, c)?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb(dir, h)?;
    }
    if let Some(rd) = r.rdma() {
        rdma(dir, rd)?;
    }
    if let Some(n) = r.network() {
        network(n)?;
    }
    // v2 has no devices files: the rules become an eBPF program on the cgroup. No list at all
    // leaves devices alone, as on v1.
    if let Some(d) = r.devices() {
        super::device_filter::apply(dir, d)?;
    }
    if let Some(u) = r.unified() {
        unified(dir, u)?;
    }
    Ok(())
}

pub(crate) fn pids(dir: &Path, p: &LinuxPids) -> Result<()> {
    // As runc: 0 or below is unlimited.
    write(
        dir,
        "pids.max",
        &V2Value::from_limit(if p.limit() > 0 { p.limit() } else { -1 }).to_string(),
    )
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit().filter(|l| *l != 0);
    if m.check_before_update() == Some(true) {
        if let Some(l) = limit.filter(|l| *l > 0) {
            let cur = dir.join("memory.current");
            let usage = read_u64(&cur)?;
            if usage > l as u64 {
                return Err(CgroupError::Invalid(format!(
                    "memory limit {l} is below the current usage {usage} ({})",
                    cur.display()
                )));
            }
        }
    }
    if let Some(swap) = swap_to_v2(m.swap(), limit)? {
        let f = dir.join("memory.swap.max");
        match fs::write(&f, &swap.to_string()) {
            Ok(()) => {}
            // Without swap accounting there is no file; "no limit" or "no swap" are then moot.
            Err(e) if e.errno() == Some(Errno::ENOENT) && matches!(swap, V2Value::Max | V2Value::Num(0)) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(l) = limit {
        write(dir, "memory.max", &V2Value::from_limit(l).to_string())?;
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        write(dir, "memory.low", &V2Value::from_limit(r).to_string())?;
    }
    if let Some(s) = m.swappiness() {
        return Err(CgroupError::Unsupported(format!(
            "memory.swappiness {s}: cgroup v2 has no per-cgroup swappiness"
        )));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(CgroupError::Unsupported(
            "memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer for a cgroup".into(),
        ));
    }
    if let Some(t) = m.kernel_tcp() {
        return Err(CgroupError::Unsupported(format!(
            "memory.kernelTCP {t}: cgroup v2 has no separate TCP memory limit"
        )));
    }
    // memory.kernel is deprecated by the spec and ignored; use_hierarchy is always on in v2.
    Ok(())
}

fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    // BFQ takes the blkio weight as is; io.weight (iocost) wants it converted.
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if bfq {
            write(dir, "io.bfq.weight", &w.to_string())?;
        } else {
            write(dir, "io.weight", &format!("default {}", blkio_weight_to_io_weight(w)))?;
        }
    }
    if let Some(lw) = b.leaf_weight() {
        return Err(CgroupError::Unsupported(format!(
            "blockIO.leafWeight {lw}: cgroup v2 has no leaf weight"
        )));
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            let (file, v) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", blkio_weight_to_io_weight(w))
            };
            write(dir, file, &format!("{}:{} {v}", d.major(), d.minor()))?;
        }
        if let Some(lw) = d.leaf_weight() {
            return Err(CgroupError::Unsupported(format!(
                "blockIO.weightDevice {}:{} leafWeight {lw}: cgroup v2 has no leaf weight",
                d.major(),
                d.minor()
            )));
        }
    }
    for (list, key) in [
        (b.throttle_read_bps_device(), "rbps"),
        (b.throttle_write_bps_device(), "wbps"),
        (b.throttle_read_iops_device(), "riops"),
        (b.throttle_write_iops_device(), "wiops"),
    ] {
        for d in list.iter().flatten() {
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            write(dir, "io.max", &format!("{}:{} {key}={rate}", d.major(), d.minor()))?;
        }
    }
    Ok(())
}

fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        write(dir, "cpu.weight", &shares_to_weight(s).to_string())?;
    }
    if let Some(max) = cpu_max(c.quota(), c.period()) {
        write(dir, "cpu.max", &max)?;
    }
    if let Some(b) = c.burst() {
        write(dir, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write(dir, "cpu.idle", &i.to_string())?;
    }
    if c.realtime_runtime().is_some_and(|r| r != 0) || c.realtime_period().is_some_and(|p| p != 0) {
        return Err(CgroupError::Unsupported(
            "cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime CPU controller".into(),
        ));
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// A page size as the spec and cgroup files name it: digits then KB, MB or GB.
pub(crate) fn check_page_size(s: &str) -> Result<()> {
    // runc 1.1 says only "cannot set hugetlb limit" here; the same start, then why.
    if s.is_empty() {
        return Err(CgroupError::Invalid(
            "cannot set hugetlb limit: a hugepageLimits entry has no pageSize".into(),
        ));
    }
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !["KB", "MB", "GB"].contains(&unit) {
        return Err(CgroupError::Invalid(format!(
            "hugepageLimits pageSize {s:?} is not a size such as 2MB or 1GB"
        )));
    }
    Ok(())
}

pub(crate) fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for h in limits {
        check_page_size(h.page_size())?;
        let v = V2Value::from_limit(h.limit()).to_string();
        write(dir, &format!("hugetlb.{}.max", h.page_size()), &v)?;
        // Reservations count too where the kernel has them (5.7+), as runc sets both.
        let rsvd = dir.join(format!("hugetlb.{}.rsvd.max", h.page_size()));
        if rsvd.exists() {
            fs::write(&rsvd, &v)?;
        }
    }
    Ok(())
}

/// `<device> hca_handle=<n|max> hca_object=<n|max>`, for v1 and v2 alike.
pub(crate) fn rdma_line(dev: &str, r: &LinuxRdma) -> Result<String> {
    if dev.is_empty() || dev.contains(char::is_whitespace) {
        return Err(CgroupError::Invalid(format!("rdma device name {dev:?} is invalid")));
    }
    let f = |v: Option<u32>| v.map_or("max".to_string(), |n| n.to_string());
    Ok(format!(
        "{dev} hca_handle={} hca_object={}",
        f(r.hca_handles()),
        f(r.hca_objects())
    ))
}

pub(crate) fn rdma(dir: &Path, map: &HashMap<String, LinuxRdma>) -> Result<()> {
    for (dev, r) in map {
        write(dir, "rdma.max", &rdma_line(dev, r)?)?;
    }
    Ok(())
}

fn network(n: &LinuxNetwork) -> Result<()> {
    if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
        return Err(CgroupError::Unsupported(
            "network classID/priorities need the cgroup v1 net_cls/net_prio controllers; cgroup v2 has none".into(),
        ));
    }
    Ok(())
}

/// cgroup core files a unified key may set; the rest (procs, kill, freeze, subtree_control…)
/// belong to the runtime.
const CORE_KEYS: &[&str] = &["cgroup.max.depth", "cgroup.max.descendants"];

/// A unified key must name one file of an enabled controller, never a path.
pub(crate) fn check_unified_key(key: &str, enabled: &[String]) -> Result<()> {
    if key.is_empty() || key.contains('/') || key.contains("..") || key.starts_with('.') {
        return Err(CgroupError::Invalid(format!(
            "unified key {key:?} is not a cgroup file name"
        )));
    }
    let Some((ctl, _)) = key.split_once('.') else {
        return Err(CgroupError::Invalid(format!(
            "unified key {key:?} is not of the form <controller>.<file>"
        )));
    };
    if ctl == "cgroup" {
        if CORE_KEYS.contains(&key) {
            return Ok(());
        }
        return Err(CgroupError::Invalid(format!(
            "unified key {key:?} is managed by the runtime"
        )));
    }
    if !enabled.iter().any(|c| c == ctl) {
        return Err(CgroupError::Unsupported(format!(
            "unified key {key:?}: the {ctl} controller is not enabled (enabled: {})",
            if enabled.is_empty() {
                "none".into()
            } else {
                enabled.join(" ")
            }
        )));
    }
    Ok(())
}

/// Unified keys are written last, so they override values converted from the v1 fields.
pub(crate) fn unified(dir: &Path, map: &HashMap<String, String>) -> Result<()> {
    let enabled = controllers(dir)?;
    let mut keys: Vec<_> = map.iter().collect();
    keys.sort();
    for (k, _) in &keys {
        check_unified_key(k, &enabled)?;
    }
    for (k, v) in keys {
        fs::write(&dir.join(k), v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// runc's v2 rule: io.bfq.weight as is where BFQ offers it, else io.weight converted.
    #[test]
    fn blkio_weight_goes_to_bfq_or_converted_to_io_weight() {
        let dir = std::env::temp_dir().join(format!("hezi-ioweight-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let b: LinuxBlockIo = serde_json::from_str(r#"{"weight": 500}"#).unwrap();
        std::fs::write(dir.join("io.weight"), "").unwrap();
        io(&dir, &b).unwrap();
        let want = format!("default {}", blkio_weight_to_io_weight(500));
        assert_eq!(std::fs::read_to_string(dir.join("io.weight")).unwrap(), want);
        std::fs::write(dir.join("io.bfq.weight"), "").unwrap();
        io(&dir, &b).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("io.bfq.weight")).unwrap(), "500");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unified_keys() {
        let en: Vec<String> = ["memory", "pids"].iter().map(|s| s.to_string()).collect();
        assert!(check_unified_key("memory.high", &en).is_ok());
        assert!(check_unified_key("cgroup.max.depth", &en).is_ok());
        for bad in [
            "../memory.max",
            "memory/../../x",
            "memory..max",
            "",
            ".hidden",
            "nodot",
            "cgroup.procs",
        ] {
            assert!(
                matches!(check_unified_key(bad, &en), Err(CgroupError::Invalid(_))),
                "{bad}"
            );
        }
        let e = check_unified_key("io.max", &en).unwrap_err();
        assert!(matches!(e, CgroupError::Unsupported(_)), "{e}");
        assert!(e.to_string().contains("io controller"), "{e}");
    }

    #[test]
    fn page_sizes_and_rdma() {
        assert!(check_page_size("2MB").is_ok());
        assert!(check_page_size("1GB").is_ok());
        for bad in ["2mb", "MB", "2M", "../2MB", "2MB/x"] {
            assert!(check_page_size(bad).is_err(), "{bad}");
        }
        let r = LinuxRdma::default();
        assert_eq!(rdma_line("mlx5_0", &r).unwrap(), "mlx5_0 hca_handle=max hca_object=max");
        assert!(rdma_line("a b", &r).is_err());
    }

    // Fake cgroupfs: the v2 memory, pids, cpu and io controllers are not available on this
    // (hybrid) machine's unified mount, so the files these write are plain files here.
    #[test]
    fn writes_converted_values() {
        let d = std::env::temp_dir().join(format!("hezi-v2res-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        for f in [
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "pids.max",
            "cpu.weight",
            "cpu.max",
            "io.weight",
        ] {
            std::fs::write(d.join(f), "").unwrap();
        }
        std::fs::write(d.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":67108864,"swap":134217728,"reservation":-1},"pids":{"limit":0},
                "cpu":{"shares":1024,"quota":50000,"period":100000},"blockIO":{"weight":500},
                "unified":{"memory.max":"max"}}"#,
        )
        .unwrap();
        let memory_max_before_unified = {
            let mut r2 = r.clone();
            r2.set_unified(None);
            apply(&d, &r2).unwrap();
            std::fs::read_to_string(d.join("memory.max")).unwrap()
        };
        let rd = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        assert_eq!(memory_max_before_unified, "67108864");
        assert_eq!(rd("memory.swap.max"), "67108864");
        assert_eq!(rd("memory.low"), "max");
        assert_eq!(rd("pids.max"), "max");
        assert_eq!(rd("cpu.weight"), "39");
        assert_eq!(rd("cpu.max"), "50000 100000");
        assert_eq!(rd("io.weight"), format!("default {}", blkio_weight_to_io_weight(500)));
        apply(&d, &r).unwrap();
        assert_eq!(rd("memory.max"), "max", "unified keys are written last");
        // A controller that is not enabled: the error says so.
        let e = write(&d, "hugetlb.2MB.max", "1").unwrap_err().to_string();
        assert!(e.contains("hugetlb controller is not enabled"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
