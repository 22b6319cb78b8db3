//! The shim's protocol with containerd at its edges, with real bytes and no containerd: `start`
//! as each containerd calls it (1.6: nothing on stdin, a plain address back; 2.0-2.2: told by
//! its binary, JSON of version 3; 2.3+: BootstrapParams in, BootstrapResult out), `-info`
//! decoded as RuntimeInfo, both task services over ttrpc, and the status codes of failures.
//! The messages and the ttrpc client are the shim's own (src/proto, src/ttrpc.rs).

#[allow(dead_code, unused_imports)]
#[path = "../src/proto/mod.rs"]
mod proto;
#[allow(dead_code)]
#[path = "../src/ttrpc.rs"]
mod ttrpc;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use proto::bootstrap::{BootstrapParams, BootstrapResult, Extension, RuntimeInfo, RuntimeOptions};
use proto::rpc::Code;
use proto::task::{ConnectResponse, ContainerRequest, CreateTaskRequest, ProcessRequest, ShutdownRequest};
use proto::{Any, Message};
use ttrpc::{CallError, Client};

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-hezi-v2");
const V2: &str = "containerd.task.v2.Task";
const V3: &str = "containerd.task.v3.Task";
const NS: &str = "hezi-proto-test";

/// A scratch directory: a bundle for `start`, a place for sockets and fake binaries.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("hezi-proto-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::write(dir.join("config.json"), r#"{"ociVersion":"1.0.2"}"#).expect("config.json");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A started shim server; shut down (or killed) on drop.
struct Shim {
    client: Client,
    pid: i32,
}

impl Shim {
    fn call<M: Message>(&mut self, service: &str, method: &str, req: &impl Message) -> Result<M, CallError> {
        let out = self.client.call(service, method, req.encode())?;
        Ok(M::decode(&out).expect("decode the answer"))
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        let req = ShutdownRequest {
            id: String::new(),
            now: true,
        };
        if self.client.call(V2, "Shutdown", req.encode()).is_err() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), nix::sys::signal::SIGKILL);
        }
    }
}

/// `<shim> start` in `bundle` for container `id`, with `stdin` and extra environment; stdout.
fn start(bundle: &Path, id: &str, publish_binary: &str, env: &[(&str, &str)], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new(SHIM)
        .args(["-namespace", NS, "-address"])
        .arg(bundle.join("containerd.sock"))
        .args(["-publish-binary", publish_binary, "-id", id, "start"])
        .current_dir(bundle)
        .env_remove("MAX_SHIM_VERSION")
        .env("TTRPC_ADDRESS", bundle.join("nowhere.ttrpc"))
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the shim");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for start");
    assert!(out.status.success(), "start: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn connect(address: &str, service: &str) -> Shim {
    let client = Client::connect(address).unwrap_or_else(|e| panic!("connect to {address}: {e}"));
    let mut shim = Shim { client, pid: 0 };
    let c: ConnectResponse = shim
        .call(service, "Connect", &ContainerRequest { id: "x".into() })
        .expect("Connect");
    shim.pid = c.shim_pid as i32;
    assert!(shim.pid > 0);
    shim
}

fn skip() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipped: the shim's start needs root (/run/containerd/s)");
    }
    !root
}

fn runtime_options(toml: &str) -> Any {
    Any::pack(
        "runtimeoptions.v1.Options",
        &RuntimeOptions {
            config_body: toml.as_bytes().to_vec(),
            ..Default::default()
        },
    )
}

fn status_code(r: Result<impl std::fmt::Debug, CallError>) -> i32 {
    match r {
        Err(CallError::Status(s)) => s.code,
        other => panic!("expected a status, got {other:?}"),
    }
}

#[test]
fn containerd_1_6_gets_a_plain_address_and_both_task_services_answer() {
    if skip() {
        return;
    }
    let s = Scratch::new("plain");
    // 1.6: no MAX_SHIM_VERSION; runtime options (not BootstrapParams) on stdin.
    let out = start(
        &s.0,
        "c1",
        "/usr/bin/containerd",
        &[],
        &runtime_options("LogLevel = 'debug'").encode(),
    );
    let address = String::from_utf8(out).expect("UTF-8");
    assert!(address.starts_with("unix:///run/containerd/s/"), "{address:?}");
    assert_eq!(
        std::fs::read_to_string(s.0.join("address")).ok().as_deref(),
        Some(address.as_str())
    );
    let mut shim = connect(&address, V2);
    let v3: ConnectResponse = shim
        .call(V3, "Connect", &ContainerRequest { id: "x".into() })
        .expect("Connect over v3");
    assert_eq!(v3.shim_pid as i32, shim.pid, "one shim serves both");
    assert_eq!(
        status_code(shim.call::<ConnectResponse>("containerd.task.v9.Task", "Connect", &ContainerRequest::default())),
        Code::Unimplemented as i32
    );
}

#[test]
fn containerd_2_3_sends_bootstrap_params_and_gets_a_bootstrap_result() {
    if skip() {
        return;
    }
    let s = Scratch::new("bootstrap");
    let sockets = s.0.join("s");
    let params = BootstrapParams {
        instance_id: "c1".into(),
        namespace: NS.into(),
        log_level: -4,
        containerd_version: "v2.3.4".into(),
        containerd_ttrpc_address: format!("unix://{}", s.0.join("nowhere.ttrpc").display()),
        extensions: vec![Extension {
            value: Some(runtime_options("SystemdCgroup = false\nNoSuchOption = 1\n")),
        }],
        socket_dir: sockets.display().to_string(),
        ..Default::default()
    };
    let out = start(
        &s.0,
        "c1",
        "/nonexistent",
        &[("MAX_SHIM_VERSION", "2")],
        &params.encode(),
    );
    let result = BootstrapResult::decode(&out).expect("stdout is a BootstrapResult");
    assert_eq!((result.version, result.protocol.as_str()), (3, "ttrpc"));
    let path = result.address.strip_prefix("unix://").expect("a unix address");
    assert_eq!(
        Path::new(path).parent(),
        Some(sockets.as_path()),
        "socket_dir is honoured"
    );
    let _shim = connect(&result.address, V3);
}

#[test]
fn containerd_2_0_to_2_2_are_told_from_1_7_by_their_binary() {
    if skip() {
        return;
    }
    let s = Scratch::new("json");
    let v2 = s.0.join("containerd-v2");
    std::fs::write(
        &v2,
        fake_go_binary("github.com/containerd/containerd/v2/cmd/containerd"),
    )
    .expect("write");
    let v1 = s.0.join("containerd-v1");
    std::fs::write(&v1, fake_go_binary("github.com/containerd/containerd/cmd/containerd")).expect("write");
    let env = [("MAX_SHIM_VERSION", "2")];
    let out = start(&s.0, "c1", &v2.display().to_string(), &env, b"");
    let json: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
    assert_eq!(
        (json["version"].as_i64(), json["protocol"].as_str()),
        (Some(3), Some("ttrpc"))
    );
    let address = json["address"].as_str().expect("address").to_string();
    let _shim = connect(&address, V3);
    // 1.7 refuses version 3: the same group's shim is named by a plain address.
    let out = start(&s.0, "c1", &v1.display().to_string(), &env, b"");
    assert_eq!(String::from_utf8_lossy(&out), address);
}

#[test]
fn info_is_a_runtime_info_with_hezis_features() {
    let opts = runtime_options("SystemdCgroup = true");
    let mut child = Command::new(SHIM)
        .arg("-info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&opts.encode())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info = RuntimeInfo::decode(&out.stdout).expect("RuntimeInfo");
    assert_eq!(info.name, "io.containerd.hezi.v2");
    assert_eq!(
        info.version.map(|v| v.version),
        Some(env!("CARGO_PKG_VERSION").to_string())
    );
    assert_eq!(info.options, Some(opts), "the options come back");
    let features = info.features.expect("features");
    assert_eq!(
        features.type_url,
        "types.containerd.io/opencontainers/runtime-spec/1/features/Features"
    );
    let doc: serde_json::Value = serde_json::from_slice(&features.value).expect("features JSON");
    assert_eq!(doc, libcontainer::features::document());
    assert_eq!(doc["linux"]["cgroup"]["systemd"], true);
}

#[test]
fn failures_carry_status_codes_through_the_helper() {
    if skip() {
        return;
    }
    let s = Scratch::new("codes");
    let address = String::from_utf8(start(&s.0, "c1", "/nonexistent", &[], b"")).expect("UTF-8");
    let mut shim = connect(&address, V3);
    let create = |id: &str| CreateTaskRequest {
        id: id.into(),
        bundle: s.0.display().to_string(),
        ..Default::default()
    };
    // A spec with neither root nor process: refused by libcontainer in the forked helper.
    let code = status_code(shim.call::<ConnectResponse>(V3, "Create", &create("c1")));
    assert_eq!(code, Code::InvalidArgument as i32);
    // An id libcontainer refuses.
    let code = status_code(shim.call::<ConnectResponse>(V2, "Create", &create("../c1")));
    assert_eq!(code, Code::InvalidArgument as i32);
    let unknown = ProcessRequest {
        id: "c1".into(),
        exec_id: String::new(),
    };
    for method in ["Start", "State", "Delete"] {
        let code = status_code(shim.call::<ConnectResponse>(V3, method, &unknown));
        assert_eq!(
            code,
            Code::NotFound as i32,
            "{method} of a container that does not exist"
        );
    }
    assert!(
        !Path::new("/run/containerd/hezi").join(NS).join("c1").exists(),
        "a failed Create leaves no state"
    );
}

/// The smallest ELF file whose `.go.buildinfo` section says its main package is `main`, as Go
/// 1.18+ writes it (inline strings), for telling containerd versions apart without them.
fn fake_go_binary(main: &str) -> Vec<u8> {
    let mut info = b"\xff Go buildinf:".to_vec();
    info.extend_from_slice(&[8, 2]);
    info.resize(32, 0);
    let go = b"go1.23.5";
    // Go brackets the module info with 16-byte sentinels; only their length matters here.
    // Longer than the 4 KiB the shim reads, as a real dependency list is.
    let deps = "dep\tgithub.com/x/y\tv1.0.0\t\n".repeat(200);
    let modinfo = format!(
        "{}path\t{main}\nmod\tx\t(devel)\t\n{deps}{}",
        "s".repeat(16),
        "s".repeat(16)
    );
    info.push(go.len() as u8);
    info.extend_from_slice(go);
    let bytes = modinfo.as_bytes();
    let mut len = bytes.len();
    while len >= 0x80 {
        info.push((len as u8) | 0x80);
        len >>= 7;
    }
    info.push(len as u8);
    info.extend_from_slice(bytes);
    let names = b"\0.shstrtab\0.go.buildinfo\0";
    let names_off = 64u64;
    let info_off = names_off + names.len() as u64;
    let sh_off = info_off + info.len() as u64;
    let mut elf = vec![0u8; 64];
    elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
    elf[0x28..0x30].copy_from_slice(&sh_off.to_le_bytes());
    elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
    elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
    elf.extend_from_slice(names);
    elf.extend_from_slice(&info);
    let section = |name: u32, off: u64, size: u64| {
        let mut sh = vec![0u8; 64];
        sh[..4].copy_from_slice(&name.to_le_bytes());
        sh[0x18..0x20].copy_from_slice(&off.to_le_bytes());
        sh[0x20..0x28].copy_from_slice(&size.to_le_bytes());
        sh
    };
    elf.extend(section(0, 0, 0));
    elf.extend(section(1, names_off, names.len() as u64));
    elf.extend(section(11, info_off, info.len() as u64));
    elf
}

/// What containerd 2.x sends for a Kubernetes pod with `hostUsers: false`: a spec with a new
/// user namespace (root as host uid 200000) and an overlay rootfs whose options carry
/// `uidmap=`/`gidmap=` (the snapshotter's idmapped layers). The shim mounts the lower layer
/// idmapped, so inside the user namespace the image's root-owned files are root's (0:0, not
/// the overflow id 65534), and what the container writes lands in the upper layer as the
/// mapped root (host 200000). containerd 1.6 (CI's) sends no such options; this is the shim's
/// side of it with the same bytes, checked by hand against containerd 2.1.5 too (README).
#[test]
fn an_idmapped_overlay_rootfs_for_a_user_namespaced_pod() {
    if skip() || !Path::new("/bin/busybox").exists() {
        return;
    }
    let s = Scratch::new("idmapped");
    let (lower, upper, work) = (s.0.join("lower"), s.0.join("upper"), s.0.join("work"));
    for d in [
        &lower.join("bin"),
        &lower.join("proc"),
        &upper,
        &work,
        &s.0.join("rootfs"),
    ] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", lower.join("bin/busybox")).expect("copy busybox");
    std::os::unix::fs::symlink("busybox", lower.join("bin/sh")).expect("symlink sh");
    // The snapshotter gives the upper layer to the mapped root.
    for d in [&upper, &work] {
        std::os::unix::fs::chown(d, Some(200000), Some(200000)).expect("chown");
    }
    let map = serde_json::json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
    let config = serde_json::json!({
        "ociVersion": "1.2.0",
        "root": { "path": "rootfs" },
        "process": {
            "args": ["/bin/sh", "-c", "/bin/busybox stat -c %u:%g /bin/busybox > /owner"],
            "cwd": "/", "user": { "uid": 0, "gid": 0 }, "env": ["PATH=/bin"]
        },
        "mounts": [{ "destination": "/proc", "type": "proc", "source": "proc" }],
        "linux": {
            "namespaces": [{ "type": "user" }, { "type": "mount" }, { "type": "pid" }],
            "uidMappings": map, "gidMappings": map
        }
    });
    std::fs::write(s.0.join("config.json"), config.to_string()).expect("config.json");
    let id = "idmapped1";
    let address = String::from_utf8(start(&s.0, id, "/bin/true", &[], b"")).expect("UTF-8");
    let mut shim = connect(&address, V3);
    let rootfs = vec![proto::Mount {
        kind: "overlay".into(),
        source: "overlay".into(),
        target: String::new(),
        options: vec![
            "uidmap=0:200000:65536".into(),
            "gidmap=0:200000:65536".into(),
            format!("workdir={}", work.display()),
            format!("upperdir={}", upper.display()),
            format!("lowerdir={}", lower.display()),
        ],
    }];
    let create = CreateTaskRequest {
        id: id.into(),
        bundle: s.0.display().to_string(),
        rootfs,
        ..Default::default()
    };
    shim.call::<proto::task::CreateTaskResponse>(V3, "Create", &create)
        .expect("Create");
    let process = ProcessRequest {
        id: id.into(),
        exec_id: String::new(),
    };
    shim.call::<proto::task::StartResponse>(V3, "Start", &process)
        .expect("Start");
    let waited: proto::task::WaitResponse = shim.call(V3, "Wait", &process).expect("Wait");
    assert_eq!(waited.exit_status, 0);
    shim.call::<proto::task::DeleteResponse>(V3, "Delete", &process)
        .expect("Delete");
    let owner = std::fs::read_to_string(upper.join("owner")).expect("the container wrote /owner");
    assert_eq!(owner.trim(), "0:0", "the image's root-owned files are root's inside");
    use std::os::unix::fs::MetadataExt;
    let written = std::fs::metadata(upper.join("owner")).expect("stat").uid();
    assert_eq!(written, 200000, "written as the mapped root");
    assert!(
        !s.0.join(".rootfs-idmapped-lowers").exists(),
        "the idmapped lower layers are gone with the mount"
    );
}
