//! What `exec` applies to the process it starts, as runc does: the process's scheduler and I/O
//! priority, the container's personality, and CPU affinity (execCPUAffinity, or the container's
//! cpuset in place of the runtime's own affinity). Read back from the host, through /proc and
//! sched_getattr/ioprio_get on the exec'd process.

use std::path::Path;

use hezi_e2e::{require, unique_id, Bundle, Hezi, TempDir};
use serde_json::{json, Value};

/// create + start a busybox `sleep` after `edit`; the bundle must live as long as the container.
fn running(h: &Hezi, prefix: &str, edit: impl FnOnce(&mut Bundle)) -> (Bundle, String) {
    let mut b = Bundle::busybox(&["sleep", "3101"]);
    edit(&mut b);
    let id = unique_id(prefix);
    h.create(&b, &id);
    h.ok(&["start", &id]);
    (b, id)
}

/// `exec -d` `process` (a process.json) in `id`; returns the exec'd process's host pid.
fn exec_detached(h: &Hezi, id: &str, process: &Value) -> i32 {
    let dir = TempDir::new("exec-attrs");
    let (file, pid_file) = (dir.path().join("process.json"), dir.path().join("pid"));
    std::fs::write(&file, process.to_string()).unwrap();
    h.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "-p",
        file.to_str().unwrap(),
        id,
    ]);
    std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap()
}

/// The kernel's struct sched_attr (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Default, Debug)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

fn sched_getattr(pid: i32) -> SchedAttr {
    let mut attr = SchedAttr::default();
    let size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `attr` is a writable sched_attr of the size passed.
    let r = unsafe { libc::syscall(libc::SYS_sched_getattr, pid, &mut attr as *mut SchedAttr, size, 0) };
    assert_eq!(r, 0, "sched_getattr({pid}): {}", std::io::Error::last_os_error());
    attr
}

/// ioprio_get(IOPRIO_WHO_PROCESS, pid): (class, level).
fn ioprio_get(pid: i32) -> (i64, i64) {
    // SAFETY: ioprio_get(2) takes integers only.
    let v = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid) };
    assert!(v >= 0, "ioprio_get({pid}): {}", std::io::Error::last_os_error());
    (v >> 13, v & 0xff)
}

fn personality_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/personality"))
        .unwrap()
        .trim()
        .to_string()
}

const SCHED_BATCH: u32 = 3;
const SCHED_IDLE: u32 = 5;
const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;
const IOPRIO_CLASS_BE: i64 = 2;
const IOPRIO_CLASS_IDLE: i64 = 3;

#[test]
fn exec_applies_the_scheduler_io_priority_and_personality() {
    require!();
    let h = Hezi::new();
    // The container's process carries them, so a plain `exec` gets them too (its base process).
    let (b, id) = running(&h, "exec-sched", |b| {
        b.linux()["personality"] = json!({ "domain": "LINUX32" });
        b.config["process"]["scheduler"] = json!({ "policy": "SCHED_BATCH", "nice": 7 });
        b.config["process"]["ioPriority"] = json!({ "class": "IOPRIO_CLASS_BE", "priority": 6 });
    });
    let mut process = b.config["process"].clone();
    process["args"] = json!(["sleep", "3102"]);
    let pid = exec_detached(&h, &id, &process);
    let attr = sched_getattr(pid);
    assert_eq!((attr.policy, attr.nice), (SCHED_BATCH, 7), "{attr:?}");
    assert_eq!(ioprio_get(pid), (IOPRIO_CLASS_BE, 6));
    // PER_LINUX32 is 0x0008.
    assert_eq!(personality_of(pid), "00000008");

    // A process.json of its own: its scheduler (flags included) and I/O priority.
    process["scheduler"] = json!({ "policy": "SCHED_IDLE", "flags": ["SCHED_FLAG_RESET_ON_FORK"] });
    process["ioPriority"] = json!({ "class": "IOPRIO_CLASS_IDLE", "priority": 0 });
    let pid = exec_detached(&h, &id, &process);
    let attr = sched_getattr(pid);
    assert_eq!(attr.policy, SCHED_IDLE, "{attr:?}");
    assert_eq!(
        attr.flags & SCHED_FLAG_RESET_ON_FORK,
        SCHED_FLAG_RESET_ON_FORK,
        "{attr:?}"
    );
    assert_eq!(ioprio_get(pid), (IOPRIO_CLASS_IDLE, 0));
    assert_eq!(personality_of(pid), "00000008");
    h.ok(&["delete", "-f", &id]);
}

/// `Cpus_allowed_list` of /proc/PID/status.
fn cpus_allowed(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no Cpus_allowed_list in {status}"))
}

/// The CPUs of the cpuset cgroup `pid` is in (v1 cpuset hierarchy, or the v2 cgroup), in the
/// kernel's list format.
fn cpuset_of(pid: i32) -> String {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let line = |key: &str| {
        cgroups
            .lines()
            .find_map(|l| l.split_once(':').and_then(|(_, r)| r.strip_prefix(key)))
            .map(str::to_string)
    };
    let file = match (line("cpuset:"), line(":")) {
        (Some(p), _) => format!("/sys/fs/cgroup/cpuset{p}/cpuset.effective_cpus"),
        (None, Some(p)) => format!("/sys/fs/cgroup{p}/cpuset.cpus.effective"),
        (None, None) => panic!("no cpuset in {cgroups}"),
    };
    let file = if Path::new(&file).exists() {
        file
    } else {
        "/sys/devices/system/cpu/online".to_string()
    };
    std::fs::read_to_string(&file).unwrap().trim().to_string()
}

/// Runs `f` with the calling thread (so every process it spawns) on `cpu` only.
fn pinned<T>(cpu: usize, f: impl FnOnce() -> T) -> T {
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    let me = nix::unistd::Pid::from_raw(0);
    let old = sched_getaffinity(me).unwrap();
    let mut one = CpuSet::new();
    one.set(cpu).unwrap();
    sched_setaffinity(me, &one).unwrap();
    let out = f();
    sched_setaffinity(me, &old).unwrap();
    out
}

#[test]
fn exec_never_keeps_the_runtimes_cpu_affinity() {
    require!();
    let h = Hezi::new();
    let (b, id) = running(&h, "exec-aff", |_| {});
    let init = h.state(&id)["pid"].as_i64().unwrap() as i32;
    let cpuset = cpuset_of(init);
    if cpuset == "0" {
        eprintln!("SKIP: the container's cpuset is CPU 0 alone; pinning hezi to it shows nothing");
        return;
    }
    let mut process = b.config["process"].clone();
    process["args"] = json!(["sleep", "3103"]);
    // hezi itself pinned to CPU 0, no execCPUAffinity: the process gets the container's cpuset.
    let pid = pinned(0, || exec_detached(&h, &id, &process));
    assert_eq!(cpus_allowed(pid), cpuset, "the exec'd process kept hezi's affinity");
    // With `final`, that list, whatever hezi's own affinity.
    let last = cpuset.rsplit([',', '-']).next().unwrap().to_string();
    process["execCPUAffinity"] = json!({ "initial": "0", "final": last });
    let pid = pinned(0, || exec_detached(&h, &id, &process));
    assert_eq!(cpus_allowed(pid), last);
    h.ok(&["delete", "-f", &id]);
}
