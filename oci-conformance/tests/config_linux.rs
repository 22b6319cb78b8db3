//! config-linux.md: filesystems, namespaces, id mappings, devices, cgroups, sysctl, seccomp,
//! rootfs propagation, masked and read-only paths, personality.

use oci_conformance::{cgroup_of, create_fails, ns_link, require, sh_out, unique_id, Bundle, Runtime};
use serde_json::{json, Value};

/// A created (not started) sleeper container; returns (runtime, bundle, id, host pid).
fn created(edit: impl FnOnce(&mut Bundle)) -> (Runtime, Bundle, String, i64) {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["sleep", "1000"]);
    edit(&mut bundle);
    let id = unique_id("c");
    rt.create_ok(&bundle, &id);
    let pid = rt.pid(&id);
    (rt, bundle, id, pid)
}

/// Default filesystems: "The following filesystems SHOULD be made available in each container's
/// filesystem: /proc proc, /sys sysfs, /dev/pts devpts, /dev/shm tmpfs".
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#default-filesystems>
#[test]
fn config_linux_default_filesystems() {
    require!();
    let out = sh_out(|_| {}, "cat /proc/self/mountinfo");
    for (dest, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
    ] {
        let found = out.lines().any(|l| {
            l.split(' ').nth(4) == Some(dest) && l.split(" - ").nth(1).and_then(|r| r.split(' ').next()) == Some(fstype)
        });
        assert!(found, "no {fstype} at {dest}: {out}");
    }
}

/// Namespaces `path`: "If `path` is not specified, the runtime MUST create a new container
/// namespace of type `type`." (every type this host has: pid, network, ipc, uts, mount, cgroup)
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#namespaces>
#[test]
fn config_linux_namespaces_created_without_path() {
    require!();
    let (_rt, _b, _id, pid) = created(|b| b.namespaces(&["pid", "network", "ipc", "uts", "mount", "cgroup"]));
    for kind in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        assert_ne!(
            ns_link(&pid.to_string(), kind),
            ns_link("self", kind),
            "no new {kind} namespace"
        );
    }
}

/// Namespaces `pid`: "processes inside the container will only be able to see other processes
/// inside the same container".
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#namespaces>
#[test]
fn config_linux_namespaces_pid_isolated() {
    require!();
    let out = sh_out(|_| {}, "echo $$; ls /proc | grep -c '^[0-9]'");
    // The shell is pid 1; /proc shows it and the `ls` (the grep may or may not have started yet).
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "{out}");
    let count: u32 = lines[1].parse().expect("process count");
    assert!(count <= 3, "the container sees {count} processes");
}

/// "If a namespace type is not specified in the `namespaces` array, the container MUST inherit the
/// runtime namespace of that type."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#namespaces>
#[test]
fn config_linux_namespaces_inherited_when_absent() {
    require!();
    let (_rt, _b, _id, pid) = created(|b| b.namespaces(&["pid", "mount"]));
    for kind in ["net", "ipc", "uts"] {
        assert_eq!(
            ns_link(&pid.to_string(), kind),
            ns_link("self", kind),
            "{kind} namespace not inherited"
        );
    }
}

/// Namespaces `path`: "The runtime MUST place the container process in the namespace associated
/// with that `path`."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#namespaces>
#[test]
fn config_linux_namespaces_path_joins() {
    require!();
    let (_rt, _b, _id, holder) = created(|_| {});
    let (_rt2, _b2, _id2, pid) = created(|b| {
        b.linux()["namespaces"] = json!([
            { "type": "pid" }, { "type": "mount" },
            { "type": "network", "path": format!("/proc/{holder}/ns/net") },
            { "type": "ipc", "path": format!("/proc/{holder}/ns/ipc") },
            { "type": "uts", "path": format!("/proc/{holder}/ns/uts") }
        ]);
        b.config.as_object_mut().expect("config").remove("hostname");
    });
    for kind in ["net", "ipc", "uts"] {
        assert_eq!(
            ns_link(&pid.to_string(), kind),
            ns_link(&holder.to_string(), kind),
            "{kind} not joined"
        );
    }
}

/// Namespaces `path`: "The runtime MUST generate an error if `path` is not associated with a
/// namespace of type `type`."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#namespaces>
#[test]
fn config_linux_namespaces_path_wrong_type_error() {
    require!();
    assert!(
        create_fails(|b| b.linux()["namespaces"][1] = json!({ "type": "network", "path": "/proc/self/ns/uts" })),
        "a uts namespace was accepted as the network namespace"
    );
}

/// Namespaces `path`: "This value MUST be an absolute path in the runtime mount namespace."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#namespaces>
#[test]
fn config_linux_namespaces_path_relative_error() {
    require!();
    assert!(
        create_fails(|b| b.linux()["namespaces"][1] = json!({ "type": "network", "path": "proc/self/ns/net" })),
        "a relative namespace path was accepted"
    );
}

/// "If a `namespaces` field contains duplicated namespaces with same `type`, the runtime MUST
/// generate an error."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#namespaces>
#[test]
fn config_linux_namespaces_duplicate_error() {
    require!();
    assert!(
        create_fails(|b| b.namespaces(&["pid", "mount", "network", "network"])),
        "duplicate namespace accepted"
    );
}

/// Namespaces `cgroup`: "the container will have an isolated view of the cgroup hierarchy".
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#namespaces>
#[test]
fn config_linux_namespaces_cgroup_view() {
    require!();
    let out = sh_out(|b| b.namespaces(&["pid", "mount", "cgroup"]), "cat /proc/self/cgroup");
    for line in out.lines() {
        assert!(
            line.ends_with(":/"),
            "the container sees a cgroup path outside its own: {line}"
        );
    }
}

/// User namespace mappings: `uidMappings` / `gidMappings` describe the mappings "from the host to
/// the container" (`containerID`, `hostID`, `size`).
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#user-namespace-mappings>
#[test]
fn config_linux_user_namespace_mappings() {
    require!();
    let out = sh_out(
        |b| {
            b.namespaces(&["pid", "network", "ipc", "uts", "mount", "user"]);
            b.linux()["uidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
            b.linux()["gidMappings"] = json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
        },
        "cat /proc/self/uid_map /proc/self/gid_map",
    );
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows, [["0", "100000", "65536"], ["0", "200000", "65536"]], "{out}");
}

/// Time namespace `timeOffsets`: "sets the offset for Time Namespace" (here: 10 days of boottime).
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#offset-for-time-namespace>
#[test]
fn config_linux_time_offsets() {
    require!();
    let out = sh_out(
        |b| {
            b.namespaces(&["pid", "mount", "time"]);
            b.linux()["timeOffsets"] = json!({ "boottime": { "secs": 864000, "nanosecs": 0 } });
        },
        "cut -d. -f1 /proc/uptime",
    );
    let uptime: u64 = out.trim().parse().expect("uptime");
    assert!(uptime >= 864000, "uptime {uptime} has no 10-day offset");
}

/// The `stat -c '%F %t:%T %a %u:%g'` of `path` in a container with the given devices.
fn device_stat(devices: Value, path: &str) -> String {
    sh_out(
        |b| b.linux()["devices"] = devices,
        &format!("stat -c '%F %t:%T %a %u:%g' {path}"),
    )
}

/// Devices: "lists devices that MUST be available in the container" with `type`, `major`, `minor`,
/// `fileMode`, `uid` and `gid`; "The path MAY be anywhere in the container filesystem, notably
/// outside of `/dev`."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#devices>
#[test]
fn config_linux_devices() {
    require!();
    let dev = |path: &str| json!([{ "path": path, "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 12, "gid": 34 }]);
    assert_eq!(
        device_stat(dev("/dev/spec-null"), "/dev/spec-null"),
        "character special file 1:3 640 12:34\n"
    );
    assert_eq!(
        device_stat(dev("/elsewhere/null"), "/elsewhere/null"),
        "character special file 1:3 640 12:34\n"
    );
}

/// Devices `major, minor`: "REQUIRED unless `type` is `p`" — a FIFO needs neither.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#devices>
#[test]
fn config_linux_devices_fifo() {
    require!();
    let out = device_stat(
        json!([{ "path": "/dev/spec-fifo", "type": "p", "fileMode": 0o600 }]),
        "/dev/spec-fifo",
    );
    assert!(out.starts_with("fifo "), "{out}");
}

/// Devices `path`: "If a file already exists at `path` that does not match the requested device,
/// the runtime MUST generate an error."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#devices>
#[test]
fn config_linux_devices_existing_mismatch_error() {
    require!();
    assert!(
        create_fails(|b| {
            std::fs::write(b.rootfs().join("taken"), "a regular file").expect("write");
            b.linux()["devices"] = json!([{ "path": "/taken", "type": "c", "major": 1, "minor": 3 }]);
        }),
        "a device over a regular file was accepted"
    );
}

/// Default devices: "the runtime MUST also supply: /dev/null, /dev/zero, /dev/full, /dev/random,
/// /dev/urandom, /dev/tty, ... /dev/ptmx. A bind-mount or symlink of the container's
/// /dev/pts/ptmx."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#default-devices>
#[test]
fn config_linux_default_devices() {
    require!();
    let out = sh_out(
        |_| {},
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T' /dev/$d; done; \
         stat -L -c '%t:%T' /dev/ptmx /dev/pts/ptmx",
    );
    let want = "/dev/null character special file 1:3\n/dev/zero character special file 1:5\n\
                /dev/full character special file 1:7\n/dev/random character special file 1:8\n\
                /dev/urandom character special file 1:9\n/dev/tty character special file 5:0\n";
    assert!(out.starts_with(want), "{out}");
    let ptmx: Vec<&str> = out.lines().skip(6).collect();
    assert!(
        ptmx.len() == 2 && ptmx[0] == ptmx[1],
        "/dev/ptmx is not the container's /dev/pts/ptmx: {out}"
    );
}

/// Cgroups path: "In the case of an absolute path (starting with `/`), the runtime MUST take the
/// path to be relative to the cgroups mount point."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#cgroups-path>
#[test]
fn config_linux_cgroups_path_absolute() {
    require!();
    let path = format!("/{}", unique_id("oci-conformance"));
    let (_rt, _b, _id, pid) = created(|b| b.linux()["cgroupsPath"] = json!(path));
    for controller in ["pids", "memory", "cpu"] {
        assert_eq!(
            cgroup_of(pid, controller).as_deref(),
            Some(path.as_str()),
            "{controller} cgroup"
        );
    }
}

/// Cgroups path: "If the value is specified, the runtime MUST consistently attach to the same place
/// in the cgroups hierarchy given the same value of `cgroupsPath`."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#cgroups-path>
#[test]
fn config_linux_cgroups_path_consistent() {
    require!();
    let path = unique_id("oci-conformance-rel");
    let place = |_: u8| {
        let rt = Runtime::new();
        let mut bundle = Bundle::new(&["sleep", "1000"]);
        bundle.linux()["cgroupsPath"] = json!(path);
        let id = unique_id("cg");
        rt.create_ok(&bundle, &id);
        let cg = cgroup_of(rt.pid(&id), "pids");
        rt.ok(&["kill", &id, "KILL"]);
        rt.wait_status(&id, "stopped");
        rt.ok(&["delete", &id]);
        cg
    };
    let first = place(1);
    assert!(
        first.as_deref().is_some_and(|p| p.contains(&path)),
        "{first:?} does not hold {path}"
    );
    assert_eq!(place(2), first);
}

/// The content of v1 cgroup file `file` of `controller` for container process `pid`.
fn cgroup_file(pid: i64, controller: &str, file: &str) -> String {
    let path = cgroup_of(pid, controller).unwrap_or_else(|| panic!("no {controller} cgroup for {pid}"));
    std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}{path}/{file}"))
        .unwrap_or_else(|e| panic!("read {controller}{path}/{file}: {e}"))
}

/// Resources: "If resources are specified, the cgroups at cgroupsPath will be updated" — memory
/// `limit`, cpu `shares`/`quota`/`period`, cpuset `cpus`, pids `limit`.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#control-groups>
#[test]
fn config_linux_resources() {
    require!();
    let (_rt, _b, _id, pid) = created(|b| {
        b.linux()["resources"] = json!({
            "memory": { "limit": 67108864 },
            "cpu": { "shares": 512, "quota": 20000, "period": 100000, "cpus": "0" },
            "pids": { "limit": 42 }
        })
    });
    assert_eq!(cgroup_file(pid, "memory", "memory.limit_in_bytes"), "67108864\n");
    assert_eq!(cgroup_file(pid, "cpu", "cpu.shares"), "512\n");
    assert_eq!(cgroup_file(pid, "cpu", "cpu.cfs_quota_us"), "20000\n");
    assert_eq!(cgroup_file(pid, "cpu", "cpu.cfs_period_us"), "100000\n");
    assert_eq!(cgroup_file(pid, "cpuset", "cpuset.cpus"), "0\n");
    assert_eq!(cgroup_file(pid, "pids", "pids.max"), "42\n");
}

/// Allowed device list: "The runtime MUST apply entries in the listed order." An allow followed
/// by a deny of the same device denies it; the reverse allows it.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#allowed-device-list>
#[test]
fn config_linux_resources_devices_order() {
    require!();
    // c 1:11 (/dev/kmsg) is in no runtime's default list.
    let kmsg = |allow: bool| json!({ "allow": allow, "type": "c", "major": 1, "minor": 11, "access": "rwm" });
    let listed = |rules: Value| {
        let (_rt, _b, _id, pid) = created(|b| b.linux()["resources"] = json!({ "devices": rules }));
        cgroup_file(pid, "devices", "devices.list")
            .lines()
            .any(|l| l.starts_with("c 1:11 "))
    };
    let deny_all = json!({ "allow": false, "access": "rwm" });
    assert!(
        !listed(json!([deny_all, kmsg(true), kmsg(false)])),
        "allow-then-deny left 1:11 allowed"
    );
    assert!(
        listed(json!([deny_all, kmsg(false), kmsg(true)])),
        "deny-then-allow left 1:11 denied"
    );
}

/// Sysctl: "allows kernel parameters to be modified at runtime for the container."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#sysctl>
#[test]
fn config_linux_sysctl() {
    require!();
    let out = sh_out(
        |b| b.linux()["sysctl"] = json!({ "net.ipv4.ip_forward": "1", "kernel.msgmax": "4096" }),
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax",
    );
    assert_eq!(out, "1\n4096\n");
}

/// The seccomp profile "allow everything, but `action` (with `errnoRet`) for mkdir/mkdirat".
fn seccomp_mkdir(action: &str, errno: Option<u32>) -> Value {
    let mut rule = json!({ "names": ["mkdir", "mkdirat"], "action": action });
    if let Some(e) = errno {
        rule["errnoRet"] = json!(e);
    }
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule] })
}

/// Seccomp `errnoRet`: "If not specified its default value is `EPERM`." and, when given, is the
/// errno returned.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#seccomp>
#[test]
fn config_linux_seccomp_errno() {
    require!();
    let try_mkdir = "mkdir /blocked 2>&1; true";
    let out = sh_out(
        |b| b.linux()["seccomp"] = seccomp_mkdir("SCMP_ACT_ERRNO", None),
        try_mkdir,
    );
    assert!(
        out.contains("Operation not permitted"),
        "default errno is not EPERM: {out}"
    );
    let out = sh_out(
        |b| b.linux()["seccomp"] = seccomp_mkdir("SCMP_ACT_ERRNO", Some(13)),
        try_mkdir,
    );
    assert!(
        out.contains("Permission denied"),
        "errnoRet 13 (EACCES) not returned: {out}"
    );
}

/// Seccomp `errnoRet`: "When the action doesn't support an errno, the runtime MUST print and error
/// and fail."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#seccomp>
#[test]
fn config_linux_seccomp_errno_unsupported_action_error() {
    require!();
    assert!(
        create_fails(|b| b.linux()["seccomp"] = seccomp_mkdir("SCMP_ACT_KILL", Some(1))),
        "errnoRet with SCMP_ACT_KILL accepted"
    );
}

/// Seccomp `names`: "`names` MUST contain at least one entry." — with "Valid values", an empty
/// list is an error.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#seccomp>
#[test]
fn config_linux_seccomp_names_empty_error() {
    require!();
    assert!(
        create_fails(|b| {
            b.linux()["seccomp"] =
                json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{ "names": [], "action": "SCMP_ACT_ERRNO" }] })
        }),
        "an empty names list accepted"
    );
}

/// Rootfs mount propagation: `shared` ("belongs to a new peer group"), `private`, `slave` and
/// `unbindable` ("a private mount that cannot be bind-mounted") as seen on the container's `/`.
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#rootfs-mount-propagation>
#[test]
fn config_linux_rootfs_propagation() {
    require!();
    let root_line = |value: &str| {
        let out = sh_out(
            |b| b.linux()["rootfsPropagation"] = json!(value),
            "cat /proc/self/mountinfo",
        );
        let line = out
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .expect("a / mount")
            .to_string();
        line.split(" - ").next().unwrap_or_default().to_string()
    };
    assert!(
        root_line("shared").contains("shared:"),
        "shared rootfs is in no peer group"
    );
    assert!(
        root_line("unbindable").contains("unbindable"),
        "unbindable rootfs is bindable"
    );
    let private = root_line("private");
    assert!(
        !private.contains("shared:") && !private.contains("master:"),
        "private rootfs propagates: {private}"
    );
    assert!(!root_line("slave").contains("shared:"), "slave rootfs is shared");
}

/// Masked paths: "will mask over the provided paths inside the container so that they cannot be
/// read." (a file and a directory)
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#masked-paths>
#[test]
fn config_linux_masked_paths() {
    require!();
    let out = sh_out(
        |b| {
            std::fs::write(b.rootfs().join("secret"), "secret file\n").expect("write");
            std::fs::create_dir(b.rootfs().join("secrets")).expect("mkdir");
            std::fs::write(b.rootfs().join("secrets/inside"), "secret dir\n").expect("write");
            b.linux()["maskedPaths"] = json!(["/secret", "/secrets"]);
        },
        "cat /secret; ls /secrets; echo end",
    );
    assert_eq!(out, "end\n");
}

/// Readonly paths: "will set the provided paths as readonly inside the container."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#readonly-paths>
#[test]
fn config_linux_readonly_paths() {
    require!();
    let out = sh_out(
        |b| {
            std::fs::create_dir(b.rootfs().join("frozen")).expect("mkdir");
            b.linux()["readonlyPaths"] = json!(["/frozen", "/proc/sys"]);
        },
        "touch /frozen/x 2>/dev/null && echo rw || echo ro; \
         (echo 1 > /proc/sys/kernel/msgmax) 2>/dev/null && echo rw || echo ro; touch /tmp/x && echo rw",
    );
    assert_eq!(out, "ro\nro\nrw\n");
}

/// Personality `domain`: "`LINUX32` will set the `uname` system call to show a 32 bit CPU type,
/// such as `i686`."
/// <https://github.com/opencontainers/runtime-spec/blob/v1.2.0/config-linux.md#personality>
#[test]
fn config_linux_personality_linux32() {
    require!();
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("SKIP: the expected 32-bit name is only known here for x86_64");
        return;
    }
    let out = sh_out(
        |b| b.linux()["personality"] = json!({ "domain": "LINUX32" }),
        "uname -m",
    );
    assert_eq!(out, "i686\n");
}
