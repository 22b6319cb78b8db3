//! Stats: libcontainer's cgroup counters as containerd's metrics messages
//! (`io.containerd.cgroups.v1.Metrics` on a v1 or hybrid host, `io.containerd.cgroups.v2.Metrics`
//! on a pure v2 host), packed in an Any, which is what `ctr task metrics` and the CRI decode.

use std::path::Path;

use containerd_shim::protos::cgroups::metrics as v1;
use containerd_shim::protos::cgroups_v2::metrics as v2;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::MessageDyn;
use libcontainer::cgroups::Stats;

/// Whether the host runs the unified hierarchy alone (containerd then expects v2 metrics).
fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

pub fn to_any(s: &Stats) -> Result<Any, String> {
    let msg: Box<dyn MessageDyn> = if unified() {
        Box::new(to_v2(s))
    } else {
        Box::new(to_v1(s))
    };
    containerd_shim::util::convert_to_any(msg).map_err(|e| format!("encode metrics: {e}"))
}

fn raw(s: &Stats, key: &str) -> u64 {
    s.memory.raw.get(key).copied().unwrap_or(0)
}

fn entry(e: &libcontainer::cgroups::MemoryEntry) -> v1::MemoryEntry {
    v1::MemoryEntry {
        limit: e.limit,
        usage: e.usage,
        max: e.max,
        failcnt: e.failcnt,
        ..Default::default()
    }
}

pub fn to_v1(s: &Stats) -> v1::Metrics {
    let mut m = v1::Metrics::new();
    m.pids = Some(v1::PidsStat {
        current: s.pids.current,
        limit: s.pids.limit,
        ..Default::default()
    })
    .into();
    m.cpu = Some(v1::CPUStat {
        usage: Some(v1::CPUUsage {
            total: s.cpu.usage.total,
            kernel: s.cpu.usage.kernel,
            user: s.cpu.usage.user,
            per_cpu: s.cpu.usage.percpu.clone(),
            ..Default::default()
        })
        .into(),
        throttling: Some(v1::Throttle {
            periods: s.cpu.throttling.periods,
            throttled_periods: s.cpu.throttling.throttled_periods,
            throttled_time: s.cpu.throttling.throttled_time,
            ..Default::default()
        })
        .into(),
        ..Default::default()
    })
    .into();
    m.memory = Some(v1::MemoryStat {
        cache: s.memory.cache,
        rss: raw(s, "rss"),
        rss_huge: raw(s, "rss_huge"),
        mapped_file: raw(s, "mapped_file"),
        dirty: raw(s, "dirty"),
        writeback: raw(s, "writeback"),
        pg_pg_in: raw(s, "pgpgin"),
        pg_pg_out: raw(s, "pgpgout"),
        pg_fault: raw(s, "pgfault"),
        pg_maj_fault: raw(s, "pgmajfault"),
        inactive_anon: raw(s, "inactive_anon"),
        active_anon: raw(s, "active_anon"),
        inactive_file: raw(s, "inactive_file"),
        active_file: raw(s, "active_file"),
        unevictable: raw(s, "unevictable"),
        hierarchical_memory_limit: raw(s, "hierarchical_memory_limit"),
        hierarchical_swap_limit: raw(s, "hierarchical_memsw_limit"),
        total_cache: raw(s, "total_cache"),
        total_rss: raw(s, "total_rss"),
        total_rss_huge: raw(s, "total_rss_huge"),
        total_mapped_file: raw(s, "total_mapped_file"),
        total_dirty: raw(s, "total_dirty"),
        total_writeback: raw(s, "total_writeback"),
        total_pg_pg_in: raw(s, "total_pgpgin"),
        total_pg_pg_out: raw(s, "total_pgpgout"),
        total_pg_fault: raw(s, "total_pgfault"),
        total_pg_maj_fault: raw(s, "total_pgmajfault"),
        total_inactive_anon: raw(s, "total_inactive_anon"),
        total_active_anon: raw(s, "total_active_anon"),
        total_inactive_file: raw(s, "total_inactive_file"),
        total_active_file: raw(s, "total_active_file"),
        total_unevictable: raw(s, "total_unevictable"),
        usage: Some(entry(&s.memory.usage)).into(),
        swap: Some(entry(&s.memory.swap)).into(),
        kernel: Some(entry(&s.memory.kernel)).into(),
        kernel_tcp: Some(entry(&s.memory.kernel_tcp)).into(),
        ..Default::default()
    })
    .into();
    let blk = |v: &[libcontainer::cgroups::BlkioEntry]| {
        v.iter()
            .map(|e| v1::BlkIOEntry {
                op: e.op.clone(),
                major: e.major,
                minor: e.minor,
                value: e.value,
                ..Default::default()
            })
            .collect::<Vec<_>>()
    };
    m.blkio = Some(v1::BlkIOStat {
        io_service_bytes_recursive: blk(&s.blkio.io_service_bytes_recursive),
        io_serviced_recursive: blk(&s.blkio.io_serviced_recursive),
        ..Default::default()
    })
    .into();
    m.hugetlb = s
        .hugetlb
        .iter()
        .map(|(size, h)| v1::HugetlbStat {
            usage: h.usage,
            max: h.max,
            failcnt: h.failcnt,
            pagesize: size.clone(),
            ..Default::default()
        })
        .collect();
    m
}

pub fn to_v2(s: &Stats) -> v2::Metrics {
    let mut m = v2::Metrics::new();
    m.pids = Some(v2::PidsStat {
        current: s.pids.current,
        limit: s.pids.limit,
        ..Default::default()
    })
    .into();
    // libcontainer reports nanoseconds (runc's shape); cgroup v2 counts microseconds.
    m.cpu = Some(v2::CPUStat {
        usage_usec: s.cpu.usage.total / 1000,
        user_usec: s.cpu.usage.user / 1000,
        system_usec: s.cpu.usage.kernel / 1000,
        nr_periods: s.cpu.throttling.periods,
        nr_throttled: s.cpu.throttling.throttled_periods,
        throttled_usec: s.cpu.throttling.throttled_time / 1000,
        ..Default::default()
    })
    .into();
    let mem = &s.memory;
    m.memory = Some(v2::MemoryStat {
        anon: raw(s, "anon"),
        file: raw(s, "file"),
        kernel_stack: raw(s, "kernel_stack"),
        slab: raw(s, "slab"),
        sock: raw(s, "sock"),
        shmem: raw(s, "shmem"),
        file_mapped: raw(s, "file_mapped"),
        file_dirty: raw(s, "file_dirty"),
        file_writeback: raw(s, "file_writeback"),
        inactive_anon: raw(s, "inactive_anon"),
        active_anon: raw(s, "active_anon"),
        inactive_file: raw(s, "inactive_file"),
        active_file: raw(s, "active_file"),
        unevictable: raw(s, "unevictable"),
        pgfault: raw(s, "pgfault"),
        pgmajfault: raw(s, "pgmajfault"),
        usage: mem.usage.usage,
        usage_limit: mem.usage.limit,
        max_usage: mem.usage.max,
        // libcontainer's swap entry is memory + swap, as runc reports it on v2.
        swap_usage: mem.swap.usage.saturating_sub(mem.usage.usage),
        swap_limit: mem.swap.limit,
        ..Default::default()
    })
    .into();
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_carries_the_counters() {
        let mut s = Stats::default();
        s.pids.current = 3;
        s.cpu.usage.total = 5000;
        s.memory.usage.usage = 4096;
        s.memory.raw.insert("rss".into(), 1024);
        let m = to_v1(&s);
        assert_eq!(m.pids.current, 3);
        assert_eq!(m.cpu.usage.total, 5000);
        assert_eq!(m.memory.usage.usage, 4096);
        assert_eq!(m.memory.rss, 1024);
        let v = to_v2(&s);
        assert_eq!(v.cpu.usage_usec, 5);
        assert_eq!(v.memory.usage, 4096);
    }

    #[test]
    fn type_urls() {
        let a = containerd_shim::util::convert_to_any(Box::new(to_v1(&Stats::default()))).ok();
        assert_eq!(
            a.map(|a| a.type_url).as_deref(),
            Some("io.containerd.cgroups.v1.Metrics")
        );
        let a = containerd_shim::util::convert_to_any(Box::new(to_v2(&Stats::default()))).ok();
        assert_eq!(
            a.map(|a| a.type_url).as_deref(),
            Some("io.containerd.cgroups.v2.Metrics")
        );
    }
}
