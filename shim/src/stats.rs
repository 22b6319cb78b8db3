//! Stats: libcontainer's cgroup counters as containerd's metrics messages
//! (`io.containerd.cgroups.v1.Metrics` on a v1 or hybrid host, `io.containerd.cgroups.v2.Metrics`
//! on a pure v2 host), packed in an Any, which is what `ctr task metrics` and the CRI decode.

use std::path::Path;

use libcontainer::cgroups::Stats;

use crate::proto::metrics::{v1, v2};
use crate::proto::Any;

/// Whether the host runs the unified hierarchy alone (containerd then expects v2 metrics).
fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

pub fn to_any(s: &Stats) -> Any {
    if unified() {
        Any::pack("io.containerd.cgroups.v2.Metrics", &to_v2(s))
    } else {
        Any::pack("io.containerd.cgroups.v1.Metrics", &to_v1(s))
    }
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
    }
}

pub fn to_v1(s: &Stats) -> v1::Metrics {
    let blk = |v: &[libcontainer::cgroups::BlkioEntry]| {
        v.iter()
            .map(|e| v1::BlkIoEntry {
                op: e.op.clone(),
                device: String::new(),
                major: e.major,
                minor: e.minor,
                value: e.value,
            })
            .collect::<Vec<_>>()
    };
    v1::Metrics {
        pids: Some(v1::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
        }),
        cpu: Some(v1::CpuStat {
            usage: Some(v1::CpuUsage {
                total: s.cpu.usage.total,
                kernel: s.cpu.usage.kernel,
                user: s.cpu.usage.user,
                per_cpu: s.cpu.usage.percpu.clone(),
            }),
            throttling: Some(v1::Throttle {
                periods: s.cpu.throttling.periods,
                throttled_periods: s.cpu.throttling.throttled_periods,
                throttled_time: s.cpu.throttling.throttled_time,
            }),
        }),
        memory: Some(v1::MemoryStat {
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
            usage: Some(entry(&s.memory.usage)),
            swap: Some(entry(&s.memory.swap)),
            kernel: Some(entry(&s.memory.kernel)),
            kernel_tcp: Some(entry(&s.memory.kernel_tcp)),
        }),
        blkio: Some(v1::BlkIoStat {
            io_service_bytes_recursive: blk(&s.blkio.io_service_bytes_recursive),
            io_serviced_recursive: blk(&s.blkio.io_serviced_recursive),
        }),
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| v1::HugetlbStat {
                usage: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: size.clone(),
            })
            .collect(),
    }
}

pub fn to_v2(s: &Stats) -> v2::Metrics {
    let mem = &s.memory;
    v2::Metrics {
        pids: Some(v2::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
        }),
        // libcontainer reports nanoseconds (runc's shape); cgroup v2 counts microseconds.
        cpu: Some(v2::CpuStat {
            usage_usec: s.cpu.usage.total / 1000,
            user_usec: s.cpu.usage.user / 1000,
            system_usec: s.cpu.usage.kernel / 1000,
            nr_periods: s.cpu.throttling.periods,
            nr_throttled: s.cpu.throttling.throttled_periods,
            throttled_usec: s.cpu.throttling.throttled_time / 1000,
        }),
        memory: Some(v2::MemoryStat {
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
        }),
    }
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
        assert_eq!(m.pids.map(|p| p.current), Some(3));
        assert_eq!(m.cpu.and_then(|c| c.usage).map(|u| u.total), Some(5000));
        let mem = m.memory.unwrap_or_default();
        assert_eq!(mem.usage.map(|u| u.usage), Some(4096));
        assert_eq!(mem.rss, 1024);
        let v = to_v2(&s);
        assert_eq!(v.cpu.map(|c| c.usage_usec), Some(5));
        assert_eq!(v.memory.map(|m| m.usage), Some(4096));
    }

    #[test]
    fn metrics_decode_as_containerds_messages() {
        let mut s = Stats::default();
        s.pids.current = 3;
        s.cpu.usage.percpu = vec![1, 2];
        let a = Any::pack("io.containerd.cgroups.v1.Metrics", &to_v1(&s));
        // Metrics.pids (2) { current (1): 3 }, then cpu (3) of 8 bytes: usage (1) holding the
        // packed per_cpu (4) [1, 2], and an empty throttling (2).
        assert_eq!(&a.value[..12], &[0x12, 2, 0x08, 3, 0x1a, 8, 0x0a, 4, 0x22, 2, 1, 2]);
        use crate::proto::Message;
        assert_eq!(v1::Metrics::decode(&a.value), Ok(to_v1(&s)));
    }
}
