//! Usage counters, shaped as runc's `events --stats` data (`types/events.go`): field names and
//! omitted zeroes match, so tools that read runc's JSON read ours. Readers for v1 and v2 files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::fs::{parse_u64, read, read_opt, read_u64_or_zero};
use super::{CgroupError, Result};

fn zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Serialize, Default, Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

#[derive(Serialize, Default, Debug, Clone, PartialEq, Eq)]
pub struct CpuStats {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Serialize, Default, Debug, Clone, PartialEq, Eq)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Serialize, Default, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

#[derive(Serialize, Default, Debug, Clone, PartialEq, Eq)]
pub struct MemoryEntry {
    /// `u64::MAX` when unlimited.
    pub limit: u64,
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Serialize, Default, Debug, Clone, PartialEq, Eq)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    /// v2: memory + swap, as runc reports it for v1 compatibility.
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat as read.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Serialize, Default, Debug, Clone, PartialEq, Eq)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    /// 0 when unlimited.
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

#[derive(Serialize, Default, Debug, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

/// Bytes and operations per device and direction. (runc's CFQ-only fields — queued, service
/// time, wait time, merged, time, sectors — no longer exist in current kernels and are left out.)
#[derive(Serialize, Default, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BlkioStats {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Serialize, Default, Debug, Clone, PartialEq, Eq)]
pub struct HugetlbStats {
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// `key value` lines (memory.stat, cpu.stat, memory.events, …). Lines that do not parse as such
/// are skipped: kernels add fields.
pub(crate) fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// A flat-keyed file read whole; a missing file is empty.
pub(crate) fn read_keyed(path: &Path) -> Result<BTreeMap<String, u64>> {
    Ok(read_opt(path)?.map(|t| flat_keyed(&t)).unwrap_or_default())
}

fn majmin(path: &Path, s: &str) -> Result<(u64, u64)> {
    let bad = || CgroupError::Parse {
        path: path.to_path_buf(),
        message: format!("{s:?} is not major:minor"),
    };
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

/// v1 blkio files: `8:0 Read 4096` lines and a `Total` line (skipped).
pub(crate) fn v1_blkio_lines(path: &Path, text: &str) -> Result<Vec<BlkioEntry>> {
    let mut out = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() != 3 {
            continue;
        }
        let (major, minor) = majmin(path, f[0])?;
        out.push(BlkioEntry {
            major,
            minor,
            op: f[1].to_string(),
            value: parse_u64(path, f[2])?,
        });
    }
    Ok(out)
}

/// v2 io.stat: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0` → (bytes, ios) entries
/// with runc's ops `Read` and `Write`.
pub(crate) fn v2_io_stat(path: &Path, text: &str) -> Result<BlkioStats> {
    let mut s = BlkioStats::default();
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some(dev) = f.next() else { continue };
        let (major, minor) = majmin(path, dev)?;
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut s.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.io_service_bytes_recursive, "Write"),
                "rios" => (&mut s.io_serviced_recursive, "Read"),
                "wios" => (&mut s.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value: parse_u64(path, v)?,
            });
        }
    }
    Ok(s)
}

/// Space-separated numbers (cpuacct.usage_percpu).
pub(crate) fn numbers(path: &Path, text: &str) -> Result<Vec<u64>> {
    text.split_whitespace().map(|n| parse_u64(path, n)).collect()
}

/// The huge page sizes of this kernel as cgroup files name them (`2MB`, `1GB`).
pub(crate) fn hugepage_sizes() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut out: Vec<String> = rd
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let kb: u64 = name.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok()?;
            Some(page_size_name(kb))
        })
        .collect();
    out.sort();
    out
}

pub(crate) fn page_size_name(kb: u64) -> String {
    match kb {
        k if k >= 1 << 20 && k % (1 << 20) == 0 => format!("{}GB", k >> 20),
        k if k >= 1 << 10 && k % (1 << 10) == 0 => format!("{}MB", k >> 10),
        k => format!("{k}KB"),
    }
}

/// cgroup v2 counters of `dir` (files of controllers that are not enabled read as zero).
pub(crate) fn v2(dir: &Path) -> Result<Stats> {
    let mut st = Stats::default();
    let cpu = read_keyed(&dir.join("cpu.stat"))?;
    let us = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
    st.cpu.usage.total = us("usage_usec");
    st.cpu.usage.user = us("user_usec");
    st.cpu.usage.kernel = us("system_usec");
    st.cpu.throttling = Throttling {
        periods: cpu.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
        throttled_time: us("throttled_usec"),
    };

    let m = &mut st.memory;
    m.raw = read_keyed(&dir.join("memory.stat"))?;
    m.cache = m.raw.get("file").copied().unwrap_or(0);
    m.usage = MemoryEntry {
        limit: read_u64_or_zero(&dir.join("memory.max"))?,
        usage: read_u64_or_zero(&dir.join("memory.current"))?,
        max: read_u64_or_zero(&dir.join("memory.peak"))?,
        failcnt: read_keyed(&dir.join("memory.events"))?.get("max").copied().unwrap_or(0),
    };
    let swap_limit = read_u64_or_zero(&dir.join("memory.swap.max"))?;
    m.swap = MemoryEntry {
        usage: read_u64_or_zero(&dir.join("memory.swap.current"))? + m.usage.usage,
        limit: swap_limit.saturating_add(m.usage.limit),
        max: read_u64_or_zero(&dir.join("memory.swap.peak"))?,
        failcnt: 0,
    };

    let limit = read_u64_or_zero(&dir.join("pids.max"))?;
    st.pids = PidsStats {
        current: read_u64_or_zero(&dir.join("pids.current"))?,
        limit: if limit == u64::MAX { 0 } else { limit },
    };
    let io = dir.join("io.stat");
    if let Some(t) = read_opt(&io)? {
        st.blkio = v2_io_stat(&io, &t)?;
    }
    st.hugetlb = v2_hugetlb(dir)?;
    Ok(st)
}

/// hugetlb counters from a cgroup v2 directory (also the hybrid unified one); none when the
/// controller is not enabled there.
pub(crate) fn v2_hugetlb(dir: &Path) -> Result<BTreeMap<String, HugetlbStats>> {
    let mut out = BTreeMap::new();
    for size in hugepage_sizes() {
        let f = |s: &str| dir.join(format!("hugetlb.{size}.{s}"));
        if !f("current").exists() {
            continue;
        }
        let max = read_u64_or_zero(&f("max"))?;
        out.insert(
            size.clone(),
            HugetlbStats {
                usage: read_u64_or_zero(&f("current"))?,
                max: if max == u64::MAX { 0 } else { max },
                failcnt: read_keyed(&f("events"))?.get("max").copied().unwrap_or(0),
            },
        );
    }
    Ok(out)
}

/// A v1 memory counter group: `memory.{prefix}usage_in_bytes` and friends.
pub(crate) fn v1_memory_entry(dir: &Path, prefix: &str) -> Result<MemoryEntry> {
    let f = |s: &str| dir.join(format!("memory.{prefix}{s}"));
    Ok(MemoryEntry {
        limit: read_u64_or_zero(&f("limit_in_bytes"))?,
        usage: read_u64_or_zero(&f("usage_in_bytes"))?,
        max: read_u64_or_zero(&f("max_usage_in_bytes"))?,
        failcnt: read_u64_or_zero(&f("failcnt"))?,
    })
}

/// cpuacct (usage) and cpu (throttling) of v1; either directory may be absent.
pub(crate) fn v1_cpu(cpuacct: Option<&Path>, cpu: Option<&Path>) -> Result<CpuStats> {
    let mut s = CpuStats::default();
    if let Some(d) = cpuacct {
        s.usage.total = read_u64_or_zero(&d.join("cpuacct.usage"))?;
        for (file, list) in [
            ("cpuacct.usage_percpu", &mut s.usage.percpu),
            ("cpuacct.usage_percpu_sys", &mut s.usage.percpu_kernel),
            ("cpuacct.usage_percpu_user", &mut s.usage.percpu_user),
        ] {
            let p = d.join(file);
            if let Some(t) = read_opt(&p)? {
                *list = numbers(&p, &t)?;
            }
        }
        // cpuacct.stat counts USER_HZ ticks.
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|h| *h > 0)
            .unwrap_or(100) as u64;
        let st = read_keyed(&d.join("cpuacct.stat"))?;
        s.usage.user = st.get("user").copied().unwrap_or(0) * 1_000_000_000 / hz;
        s.usage.kernel = st.get("system").copied().unwrap_or(0) * 1_000_000_000 / hz;
    }
    if let Some(d) = cpu {
        let st = read_keyed(&d.join("cpu.stat"))?;
        s.throttling = Throttling {
            periods: st.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: st.get("throttled_time").copied().unwrap_or(0),
        };
    }
    Ok(s)
}

/// v1 blkio: the first of CFQ, BFQ and throttle counters that the kernel offers.
pub(crate) fn v1_blkio(dir: &Path) -> Result<BlkioStats> {
    for prefix in ["blkio.", "blkio.bfq.", "blkio.throttle."] {
        let bytes = dir.join(format!("{prefix}io_service_bytes_recursive"));
        let ios = dir.join(format!("{prefix}io_serviced_recursive"));
        let (Some(b), Some(i)) = (read_opt(&bytes)?, read_opt(&ios)?) else {
            continue;
        };
        let s = BlkioStats {
            io_service_bytes_recursive: v1_blkio_lines(&bytes, &b)?,
            io_serviced_recursive: v1_blkio_lines(&ios, &i)?,
        };
        if !s.io_service_bytes_recursive.is_empty() || prefix == "blkio.throttle." {
            return Ok(s);
        }
    }
    Ok(BlkioStats::default())
}

/// v1 hugetlb counters per page size.
pub(crate) fn v1_hugetlb(dir: &Path) -> Result<BTreeMap<String, HugetlbStats>> {
    let mut out = BTreeMap::new();
    for size in hugepage_sizes() {
        let f = |s: &str| dir.join(format!("hugetlb.{size}.{s}"));
        out.insert(
            size.clone(),
            HugetlbStats {
                usage: read_u64_or_zero(&f("usage_in_bytes"))?,
                max: read_u64_or_zero(&f("max_usage_in_bytes"))?,
                failcnt: read_u64_or_zero(&f("failcnt"))?,
            },
        );
    }
    Ok(out)
}

/// pids.current and pids.max of a v1 or v2 directory.
pub(crate) fn pids(dir: &Path) -> Result<PidsStats> {
    let limit = match read_opt(&dir.join("pids.max"))? {
        Some(s) => parse_u64(&dir.join("pids.max"), &s)?,
        None => 0,
    };
    Ok(PidsStats {
        current: read_u64_or_zero(&dir.join("pids.current"))?,
        limit: if limit == u64::MAX { 0 } else { limit },
    })
}

/// The `oom_kill` counter of memory.events (v2) or memory.oom_control (v1, kernel ≥ 4.13).
pub(crate) fn oom_kills(file: &Path) -> Result<u64> {
    let text = read(file)?;
    Ok(flat_keyed(&text).get("oom_kill").copied().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files() {
        let m = flat_keyed("cache 4096\nrss 8192\nbogus\nhierarchical_memory_limit 9223372036854771712\n");
        assert_eq!(m["cache"], 4096);
        assert_eq!(m["hierarchical_memory_limit"], 9_223_372_036_854_771_712);
        assert_eq!(m.len(), 3);
        let ev = flat_keyed("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n");
        assert_eq!(ev["oom_kill"], 1);
    }

    #[test]
    fn blkio_v1_and_io_stat_v2() {
        let p = Path::new("/f");
        let v1 = v1_blkio_lines(p, "254:0 Read 4096\n254:0 Write 8192\n254:0 Total 12288\nTotal 12288\n").unwrap();
        assert_eq!(v1.len(), 3);
        assert_eq!(
            (v1[1].major, v1[1].minor, v1[1].op.as_str(), v1[1].value),
            (254, 0, "Write", 8192)
        );
        let v2 = v2_io_stat(p, "8:16 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n").unwrap();
        assert_eq!(v2.io_service_bytes_recursive.len(), 2);
        assert_eq!(v2.io_serviced_recursive[1].value, 4);
        assert!(v2_io_stat(p, "x rbytes=1\n").is_err());
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size_name(2048), "2MB");
        assert_eq!(page_size_name(1_048_576), "1GB");
        assert_eq!(page_size_name(64), "64KB");
    }

    #[test]
    fn json_shape_matches_runc() {
        let mut s = Stats::default();
        s.pids.current = 3;
        s.memory.usage.limit = 100;
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["pids"], serde_json::json!({"current": 3}));
        assert_eq!(v["memory"]["usage"], serde_json::json!({"limit": 100, "failcnt": 0}));
        assert!(v["memory"].get("kernelTCP").is_some());
        assert_eq!(v["cpu"]["usage"], serde_json::json!({"kernel": 0, "user": 0}));
        assert_eq!(v["blkio"], serde_json::json!({}));
        assert_eq!(v["hugetlb"], serde_json::json!({}));
    }

    #[test]
    fn v2_reads_fake_files() {
        // Fake cgroupfs: this machine has no pure cgroup v2 memory/pids/io controllers to read.
        let d = std::env::temp_dir().join(format!("hezi-stats-v2-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        for (f, c) in [
            (
                "cpu.stat",
                "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 2\nnr_throttled 1\nthrottled_usec 5\n",
            ),
            ("memory.current", "4096\n"),
            ("memory.max", "max\n"),
            ("memory.stat", "anon 1\nfile 2\n"),
            ("memory.events", "low 0\nhigh 0\nmax 7\noom 0\noom_kill 0\n"),
            ("memory.swap.current", "10\n"),
            ("memory.swap.max", "max\n"),
            ("pids.current", "2\n"),
            ("pids.max", "20\n"),
        ] {
            std::fs::write(d.join(f), c).unwrap();
        }
        let s = v2(&d).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
        assert_eq!(s.cpu.usage.total, 10_000);
        assert_eq!(s.cpu.throttling.throttled_time, 5000);
        assert_eq!(s.memory.usage.usage, 4096);
        assert_eq!(s.memory.usage.limit, u64::MAX);
        assert_eq!(s.memory.usage.failcnt, 7);
        assert_eq!(s.memory.cache, 2);
        assert_eq!(s.memory.swap.usage, 4106);
        assert_eq!(s.pids, PidsStats { current: 2, limit: 20 });
    }
}
