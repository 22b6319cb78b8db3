//! The default seccomp profile `run --image --seccomp` turns on (ctr's `--seccomp`), in the
//! style of Docker's and containerd's: an allow-list. What ordinary programs use is allowed;
//! everything else fails with EPERM. Syscalls that only a capability makes useful (mount,
//! ptrace, reboot...) are allowed when the process holds that capability, so `--cap-add`
//! still means something under the filter. `clone` may not make namespaces without
//! CAP_SYS_ADMIN, `clone3` (whose flags a filter cannot read) answers ENOSYS so that libc
//! falls back to `clone`, and `personality` only takes the harmless personas.
//!
//! Names this host's libseccomp does not know are skipped by hezi's seccomp loader, so the list
//! may name syscalls of every architecture.

use serde_json::{json, Value};

/// Allowed for every container.
const ALLOWED: &[&str] = &[
    // Files and descriptors.
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "open",
    "openat",
    "openat2",
    "close",
    "close_range",
    "creat",
    "lseek",
    "_llseek",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "fcntl64",
    "ioctl",
    "flock",
    "fsync",
    "fdatasync",
    "sync",
    "syncfs",
    "sync_file_range",
    "sync_file_range2",
    "arm_sync_file_range",
    "truncate",
    "truncate64",
    "ftruncate",
    "ftruncate64",
    "fallocate",
    "fadvise64",
    "fadvise64_64",
    "arm_fadvise64_64",
    "readahead",
    "sendfile",
    "sendfile64",
    "splice",
    "tee",
    "vmsplice",
    "copy_file_range",
    "pipe",
    "pipe2",
    "mknod",
    "mknodat",
    "access",
    "faccessat",
    "faccessat2",
    "stat",
    "stat64",
    "lstat",
    "lstat64",
    "fstat",
    "fstat64",
    "newfstatat",
    "fstatat64",
    "statx",
    "statfs",
    "statfs64",
    "fstatfs",
    "fstatfs64",
    "getdents",
    "getdents64",
    "readlink",
    "readlinkat",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "rmdir",
    "chdir",
    "fchdir",
    "getcwd",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "chown32",
    "fchown",
    "fchown32",
    "lchown",
    "lchown32",
    "fchownat",
    "utime",
    "utimes",
    "futimesat",
    "utimensat",
    "utimensat_time64",
    "umask",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "memfd_create",
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    "io_setup",
    "io_destroy",
    "io_submit",
    "io_cancel",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "cachestat",
    // Waiting for descriptors, events and timers.
    "select",
    "_newselect",
    "pselect6",
    "pselect6_time64",
    "poll",
    "ppoll",
    "ppoll_time64",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_wait",
    "epoll_wait_old",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd",
    "eventfd2",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_settime64",
    "timerfd_gettime",
    "timerfd_gettime64",
    // Memory.
    "brk",
    "mmap",
    "mmap2",
    "munmap",
    "mremap",
    "mprotect",
    "pkey_mprotect",
    "pkey_alloc",
    "pkey_free",
    "madvise",
    "mlock",
    "mlock2",
    "munlock",
    "mlockall",
    "munlockall",
    "mincore",
    "msync",
    "membarrier",
    "remap_file_pages",
    // Processes, threads and their ids.
    "fork",
    "vfork",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "waitpid",
    "getpid",
    "getppid",
    "gettid",
    "getpgid",
    "setpgid",
    "getpgrp",
    "getsid",
    "setsid",
    "getuid",
    "getuid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getegid",
    "getegid32",
    "setuid",
    "setuid32",
    "setgid",
    "setgid32",
    "setreuid",
    "setreuid32",
    "setregid",
    "setregid32",
    "setresuid",
    "setresuid32",
    "setresgid",
    "setresgid32",
    "getresuid",
    "getresuid32",
    "getresgid",
    "getresgid32",
    "setfsuid",
    "setfsuid32",
    "setfsgid",
    "setfsgid32",
    "getgroups",
    "getgroups32",
    "setgroups",
    "setgroups32",
    "capget",
    "capset",
    "prctl",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "get_robust_list",
    "futex",
    "futex_time64",
    "futex_waitv",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "rseq",
    "get_thread_area",
    "set_thread_area",
    "set_tls",
    "cacheflush",
    "breakpoint",
    "modify_ldt",
    "restart_syscall",
    "seccomp",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    // Limits, priorities and scheduling.
    "getrlimit",
    "ugetrlimit",
    "setrlimit",
    "prlimit64",
    "getrusage",
    "times",
    "getpriority",
    "setpriority",
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getparam",
    "sched_setparam",
    "sched_getscheduler",
    "sched_setscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_getattr",
    "sched_setattr",
    "ioprio_get",
    "ioprio_set",
    "uname",
    "sysinfo",
    "getcpu",
    "getrandom",
    // Signals.
    "kill",
    "tkill",
    "tgkill",
    "pidfd_open",
    "pidfd_send_signal",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigreturn",
    "rt_sigpending",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "sigaction",
    "sigprocmask",
    "sigpending",
    "sigsuspend",
    "signal",
    "alarm",
    "pause",
    // Time.
    "nanosleep",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_getres",
    "clock_getres_time64",
    "gettimeofday",
    "time",
    "getitimer",
    "setitimer",
    "timer_create",
    "timer_settime",
    "timer_settime64",
    "timer_gettime",
    "timer_gettime64",
    "timer_getoverrun",
    "timer_delete",
    // Sockets.
    "socket",
    "socketpair",
    "bind",
    "listen",
    "accept",
    "accept4",
    "connect",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "recvmmsg_time64",
    "shutdown",
    "socketcall",
    "send",
    "recv",
    // System V and POSIX IPC (the container has its own IPC namespace).
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "semctl",
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "ipc",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_notify",
    "mq_getsetattr",
];

/// Allowed only to a process holding the capability: what the capability lets it do.
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "mount",
            "umount",
            "umount2",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "pivot_root",
            "unshare",
            "setns",
            "sethostname",
            "setdomainname",
            "quotactl",
            "quotactl_fd",
            "fanotify_init",
            "fanotify_mark",
            "name_to_handle_at",
            "lookup_dcookie",
            "bpf",
            "perf_event_open",
            "syslog",
        ],
    ),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_MODULE", &["init_module", "finit_module", "delete_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "process_madvise",
            "kcmp",
            "pidfd_getfd",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &[
            "settimeofday",
            "stime",
            "clock_settime",
            "clock_settime64",
            "adjtimex",
            "clock_adjtime",
            "clock_adjtime64",
        ],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "set_mempolicy",
            "set_mempolicy_home_node",
            "mbind",
            "migrate_pages",
            "move_pages",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
];

/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET: the clone flags that make namespaces.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (which only asks).
const PERSONAS: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// EPERM, what a denied syscall returns.
const EPERM: u32 = 1;
/// ENOSYS, for clone3: "not there" makes glibc and musl use clone instead.
const ENOSYS: u32 = 38;

/// The architectures the filter covers: the host's and the 32-bit ones it can run.
fn architectures() -> &'static [&'static str] {
    match std::env::consts::ARCH {
        "x86_64" => &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "x86" => &["SCMP_ARCH_X86"],
        "aarch64" => &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "arm" => &["SCMP_ARCH_ARM"],
        "riscv64" => &["SCMP_ARCH_RISCV64"],
        "powerpc64" => &["SCMP_ARCH_PPC64LE"],
        "s390x" => &["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
        _ => &[],
    }
}

/// The profile (an OCI `linux.seccomp`) for a process holding `caps` (its bounding set).
pub fn default_profile(caps: &[String]) -> Value {
    let held = |c: &str| caps.iter().any(|x| x == c);
    let mut names: Vec<&str> = ALLOWED.to_vec();
    for (cap, calls) in BY_CAPABILITY {
        if held(cap) {
            names.extend(calls.iter().filter(|c| !names.contains(c)).collect::<Vec<_>>());
        }
    }
    let mut syscalls = vec![json!({ "names": names, "action": "SCMP_ACT_ALLOW" })];
    // s390 passes clone's flags second.
    let flags_arg = if std::env::consts::ARCH == "s390x" { 1 } else { 0 };
    if held("CAP_SYS_ADMIN") {
        syscalls.push(json!({ "names": ["clone", "clone3"], "action": "SCMP_ACT_ALLOW" }));
    } else {
        syscalls.push(json!({
            "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{ "index": flags_arg, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }]
        }));
        syscalls.push(json!({ "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS }));
    }
    for p in PERSONAS {
        syscalls.push(json!({
            "names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{ "index": 0, "value": p, "op": "SCMP_CMP_EQ" }]
        }));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": architectures(),
        "syscalls": syscalls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(profile: &Value) -> Vec<String> {
        profile["syscalls"][0]["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn an_allow_list() {
        let p = default_profile(&[]);
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(p["defaultErrnoRet"], 1);
        let names = allowed(&p);
        for n in ["execve", "read", "openat", "exit_group", "wait4", "rt_sigreturn"] {
            assert!(names.contains(&n.to_string()), "{n} missing");
        }
        for n in ["mount", "reboot", "ptrace", "kexec_load", "swapon", "keyctl", "unshare"] {
            assert!(!names.contains(&n.to_string()), "{n} allowed without its capability");
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "a name is listed twice");
        assert_eq!(
            p["syscalls"][2],
            json!({ "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 })
        );
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                p["architectures"],
                json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
            );
        }
    }

    #[test]
    fn capabilities_widen_it() {
        let p = default_profile(&["CAP_SYS_ADMIN".to_string(), "CAP_SYS_PTRACE".to_string()]);
        let names = allowed(&p);
        for n in ["mount", "unshare", "ptrace", "perf_event_open"] {
            assert!(names.contains(&n.to_string()), "{n} missing");
        }
        assert!(!names.contains(&"reboot".to_string()));
        assert!(!names.contains(&"swapon".to_string()), "swapon is never allowed");
        assert_eq!(p["syscalls"][1]["names"], json!(["clone", "clone3"]));
        assert!(p["syscalls"][1].get("args").is_none());
    }
}
