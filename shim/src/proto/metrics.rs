//! containerd's cgroup metrics messages, the two shapes `ctr task metrics` and the CRI decode:
//! `io.containerd.cgroups.v1.Metrics` (containerd/cgroups stats/v1) and
//! `io.containerd.cgroups.v2.Metrics` (cgroup2/stats). Only the fields hezi fills are declared.

pub mod v1 {
    crate::message!(Metrics {
        1 => hugetlb: Vec<HugetlbStat>,
        2 => pids: Option<PidsStat>,
        3 => cpu: Option<CpuStat>,
        4 => memory: Option<MemoryStat>,
        5 => blkio: Option<BlkIoStat>,
    });
    crate::message!(HugetlbStat { 1 => usage: u64, 2 => max: u64, 3 => failcnt: u64, 4 => pagesize: String });
    crate::message!(PidsStat { 1 => current: u64, 2 => limit: u64 });
    crate::message!(CpuStat { 1 => usage: Option<CpuUsage>, 2 => throttling: Option<Throttle> });
    crate::message!(CpuUsage { 1 => total: u64, 2 => kernel: u64, 3 => user: u64, 4 => per_cpu: Vec<u64> });
    crate::message!(Throttle { 1 => periods: u64, 2 => throttled_periods: u64, 3 => throttled_time: u64 });
    crate::message!(MemoryStat {
        1 => cache: u64,
        2 => rss: u64,
        3 => rss_huge: u64,
        4 => mapped_file: u64,
        5 => dirty: u64,
        6 => writeback: u64,
        7 => pg_pg_in: u64,
        8 => pg_pg_out: u64,
        9 => pg_fault: u64,
        10 => pg_maj_fault: u64,
        11 => inactive_anon: u64,
        12 => active_anon: u64,
        13 => inactive_file: u64,
        14 => active_file: u64,
        15 => unevictable: u64,
        16 => hierarchical_memory_limit: u64,
        17 => hierarchical_swap_limit: u64,
        18 => total_cache: u64,
        19 => total_rss: u64,
        20 => total_rss_huge: u64,
        21 => total_mapped_file: u64,
        22 => total_dirty: u64,
        23 => total_writeback: u64,
        24 => total_pg_pg_in: u64,
        25 => total_pg_pg_out: u64,
        26 => total_pg_fault: u64,
        27 => total_pg_maj_fault: u64,
        28 => total_inactive_anon: u64,
        29 => total_active_anon: u64,
        30 => total_inactive_file: u64,
        31 => total_active_file: u64,
        32 => total_unevictable: u64,
        33 => usage: Option<MemoryEntry>,
        34 => swap: Option<MemoryEntry>,
        35 => kernel: Option<MemoryEntry>,
        36 => kernel_tcp: Option<MemoryEntry>,
    });
    crate::message!(MemoryEntry { 1 => limit: u64, 2 => usage: u64, 3 => max: u64, 4 => failcnt: u64 });
    crate::message!(BlkIoStat { 1 => io_service_bytes_recursive: Vec<BlkIoEntry>, 2 => io_serviced_recursive: Vec<BlkIoEntry> });
    crate::message!(BlkIoEntry { 1 => op: String, 2 => device: String, 3 => major: u64, 4 => minor: u64, 5 => value: u64 });
}

pub mod v2 {
    crate::message!(Metrics { 1 => pids: Option<PidsStat>, 2 => cpu: Option<CpuStat>, 4 => memory: Option<MemoryStat> });
    crate::message!(PidsStat { 1 => current: u64, 2 => limit: u64 });
    crate::message!(CpuStat {
        1 => usage_usec: u64,
        2 => user_usec: u64,
        3 => system_usec: u64,
        4 => nr_periods: u64,
        5 => nr_throttled: u64,
        6 => throttled_usec: u64,
    });
    crate::message!(MemoryStat {
        1 => anon: u64,
        2 => file: u64,
        3 => kernel_stack: u64,
        4 => slab: u64,
        5 => sock: u64,
        6 => shmem: u64,
        7 => file_mapped: u64,
        8 => file_dirty: u64,
        9 => file_writeback: u64,
        11 => inactive_anon: u64,
        12 => active_anon: u64,
        13 => inactive_file: u64,
        14 => active_file: u64,
        15 => unevictable: u64,
        18 => pgfault: u64,
        19 => pgmajfault: u64,
        32 => usage: u64,
        33 => usage_limit: u64,
        34 => swap_usage: u64,
        35 => swap_limit: u64,
        36 => max_usage: u64,
    });
}
