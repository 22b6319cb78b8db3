//! Pods through containerd's CRI, as the kubelet drives them, with hezi as the runtime: the
//! whole lifecycle, namespace sharing inside a pod, and pod networking over CNI. Each test runs
//! once per runtime handler (module per test, function per handler).

use std::time::{Duration, Instant};

use hezi_cri_tests::client::{
    container_config, info_pid, pod_config, with_pid_mode, ContainerState, Cri, NamespaceMode, Net, PodSandboxState,
};
use hezi_cri_tests::containerd::{pids_with_cmdline, Containerd, POD_SUBNET_PREFIX};
use hezi_cri_tests::image::{BUSYBOX_IMAGE, PAUSE_IMAGE};
use hezi_cri_tests::{cgroup_children, parse_cri_log, prerequisites, remove_cgroups, Handler};
use hezi_e2e::{alive, ns_link, unique_id, wait_until};

/// One test function, run once per handler: `name::hezi_runc` and `name::hezi`.
macro_rules! per_handler {
    ($($name:ident),*) => {$(
        mod $name {
            #[test]
            fn hezi_runc() {
                super::$name(hezi_cri_tests::Handler::HeziRunc)
            }
            #[test]
            fn hezi() {
                super::$name(hezi_cri_tests::Handler::Hezi)
            }
        }
    )*};
}

per_handler!(
    lifecycle,
    shared_namespaces,
    pod_network,
    stop_host_pid_pod,
    stop_shared_pid_pod,
    stop_host_network_server
);

/// A container that logs a line to each stream, then waits; SIGTERM makes it say so and exit
/// 7, so the exit code StopContainer reports proves the signal reached it. `marker` becomes
/// the shell's $0, so the process can be found on the host.
const WAITER: &str =
    "echo hello from hezi; echo oops >&2; trap 'echo got TERM; exit 7' TERM; while :; do sleep 1; done";

/// A test's containerd, CRI client and pod cgroup parent. Fields drop in order: after a failed
/// test the pods are torn down through the CRI (see Drop), then the containerd instance cleans up
/// what is left, then the pod cgroup goes, as the kubelet removes it once the pod is gone.
struct Setup {
    cri: Cri,
    c: Containerd,
    cgroup_parent: PodCgroup,
}

/// The cgroup parent the tests give pods (the kubelet's pod cgroup).
struct PodCgroup(String);

impl std::ops::Deref for PodCgroup {
    type Target = String;
    fn deref(&self) -> &String {
        &self.0
    }
}

impl Drop for PodCgroup {
    fn drop(&mut self) {
        remove_cgroups(&self.0);
    }
}

impl Setup {
    fn new() -> Setup {
        let c = Containerd::start();
        let cri = Cri::connect(&c, &[BUSYBOX_IMAGE, PAUSE_IMAGE]);
        let cgroup_parent = PodCgroup(format!("/{}", unique_id("hezi-cri")));
        Setup { cri, c, cgroup_parent }
    }

    /// RunPodSandbox, then check the sandbox is ready; returns (pod id, sandbox pid).
    fn run_pod(&self, config: &k8s_cri::v1::PodSandboxConfig, handler: Handler) -> (String, String) {
        let id = self
            .cri
            .run_pod(config, handler.name())
            .unwrap_or_else(|e| panic!("RunPodSandbox ({}): {e}\n{}", handler.name(), self.c.log_tail()));
        let (status, info) = self.cri.pod_status(&id);
        assert_eq!(status.state, PodSandboxState::SandboxReady as i32, "{status:?}");
        (id, info_pid(&info))
    }

    /// CreateContainer + StartContainer; returns (id, pid) once the CRI says it runs.
    fn start(&self, pod_id: &str, pod: &k8s_cri::v1::PodSandboxConfig, name: &str, args: &[&str]) -> (String, String) {
        let cfg = container_config(name, pod, args);
        let id = self
            .cri
            .create_container(pod_id, pod, &cfg)
            .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}\n{}", self.c.log_tail()));
        assert_eq!(self.cri.status(&id).0.state, ContainerState::ContainerCreated as i32);
        self.cri
            .start(&id)
            .unwrap_or_else(|e| panic!("StartContainer {name}: {e}\n{}", self.c.log_tail()));
        self.cri.wait_state(&id, ContainerState::ContainerRunning, 10);
        let (_, info) = self.cri.status(&id);
        (id, info_pid(&info))
    }

    /// StopContainer with a grace period, which a [`WAITER`] must not need: it exits 7 on SIGTERM.
    fn stop_waiter(&self, id: &str, pid: &str) {
        let t = Instant::now();
        self.cri.stop(id, 30).unwrap_or_else(|e| panic!("StopContainer: {e}"));
        let status = self.cri.wait_state(id, ContainerState::ContainerExited, 5);
        assert_eq!(
            status.exit_code, 7,
            "exit code of a container stopped by SIGTERM: {status:?}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "StopContainer took {:?}: SIGTERM did not reach the container, the grace period ran out",
            t.elapsed()
        );
        assert!(
            wait_until(5, || !alive(pid.parse().expect("pid"))),
            "container process {pid} still alive"
        );
    }

    /// Remove the containers, stop and remove the pod, then check nothing of it is left:
    /// no container or pod listed, no shim, no hezi state (under the runc shim's root or hezi's
    /// shim's), no mounts
    /// under the instance's directory, no process carrying a marker, no container cgroups.
    fn tear_down(&self, pod_id: &str, containers: &[&str], markers: &[&str]) {
        for id in containers {
            self.cri
                .remove(id)
                .unwrap_or_else(|e| panic!("RemoveContainer {id}: {e}"));
        }
        assert!(self.cri.list_containers(pod_id).is_empty(), "containers still listed");
        self.cri
            .stop_pod(pod_id)
            .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", self.c.log_tail()));
        let (status, _) = self.cri.pod_status(pod_id);
        assert_eq!(status.state, PodSandboxState::SandboxNotready as i32, "{status:?}");
        self.cri
            .remove_pod(pod_id)
            .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", self.c.log_tail()));
        assert!(
            self.cri.list_pods().is_empty(),
            "pods still listed: {:?}",
            self.cri.list_pods()
        );

        assert!(
            wait_until(10, || self.c.shim_pids().is_empty()),
            "shim still running: {:?}",
            self.c.shim_pids()
        );
        let left: Vec<_> = std::fs::read_dir(self.c.runc_root())
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "hezi state left under the runc shim's root: {left:?}");
        // hezi's own shim keeps its state under one root per namespace, shared by every
        // containerd instance (and so every test) on the host: look for this pod's ids only.
        let shim_root = std::path::Path::new("/run/containerd/hezi/k8s.io");
        let left: Vec<&str> = std::iter::once(pod_id)
            .chain(containers.iter().copied())
            .filter(|id| shim_root.join(id).exists())
            .collect();
        assert!(
            left.is_empty(),
            "hezi shim state left in {}: {left:?}",
            shim_root.display()
        );
        assert_eq!(
            self.c.mounts(),
            Vec::<String>::new(),
            "mounts left under the containerd dir"
        );
        for m in markers {
            assert_eq!(pids_with_cmdline(m), Vec::<i32>::new(), "process {m:?} still alive");
        }
        let cgroups = cgroup_children(&self.cgroup_parent);
        assert!(cgroups.is_empty(), "container cgroups left: {cgroups:?}");
    }
}

impl Drop for Setup {
    /// After a failed test, stop and remove its pods as the kubelet would, so that the CNI
    /// plugins release the pod's address and cache entries (killing containerd would not).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for pod in self.cri.pods().unwrap_or_default() {
            let _ = self.cri.stop_pod(&pod);
            let _ = self.cri.remove_pod(&pod);
        }
    }
}

/// The parent pid of `pid` (from /proc/PID/status).
fn ppid(pid: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .map(|p| p.trim().to_string())
        .unwrap_or_default()
}

/// A host-network pod through its whole life: sandbox, a container that logs, execs with output
/// and exit codes, the CRI log file, stop by SIGTERM, a container that exits by itself, removal,
/// and nothing left behind.
fn lifecycle(handler: Handler) {
    if !prerequisites(handler) {
        return;
    }
    let s = Setup::new();
    let logs = s.c.log_dir().join("lifecycle");
    let pod = pod_config("lifecycle", Net::Node, &logs, &s.cgroup_parent);
    let (pod_id, sandbox_pid) = s.run_pod(&pod, handler);
    // Host network: the node's network and UTS namespaces (containerd's: it runs in its own
    // network namespace, see containerd.rs).
    let node = s.c.pid().to_string();
    assert_eq!(
        ns_link(&sandbox_pid, "net"),
        ns_link(&node, "net"),
        "host-network sandbox"
    );
    assert_eq!(
        ns_link(&sandbox_pid, "uts"),
        ns_link(&node, "uts"),
        "host-network sandbox's UTS"
    );

    let marker = unique_id("cri-app");
    let (app, app_pid) = s.start(&pod_id, &pod, "app", &["sh", "-c", WAITER, &marker]);
    assert_eq!(
        ns_link(&app_pid, "net"),
        ns_link(&node, "net"),
        "container of a host-network pod"
    );
    assert!(
        !pids_with_cmdline(&marker).is_empty(),
        "container process {marker} not found"
    );

    let (out, err, code) = s.cri.exec_ok(&app, &["sh", "-c", "echo out; echo err >&2; exit 5"]);
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        ("out\n", "err\n", 5),
        "ExecSync output and exit code"
    );
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("host name");
    let (out, _, code) = s.cri.exec_ok(&app, &["hostname"]);
    assert_eq!(
        (out.trim(), code),
        (host_name.trim(), 0),
        "hostname in a host-network pod"
    );
    match s.cri.exec(&app, &["/no/such/binary"]) {
        Ok(r) => assert_ne!(r.exit_code, 0, "exec of a missing binary succeeded: {r:?}"),
        Err(e) => eprintln!("exec of a missing binary: {e}"),
    }

    // UpdateContainerResources reaches the container's cgroup (the shim's Update, or hezi update).
    s.cri
        .update(&app, 64 << 20, 512)
        .unwrap_or_else(|e| panic!("UpdateContainerResources: {e}"));
    assert_eq!(
        memory_limit_of(&app_pid),
        (64u64 << 20).to_string(),
        "memory limit after update"
    );

    // The log: containerd writes the container's stdout and stderr to log_path in CRI format.
    let log_path = logs.join("app.log");
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        wait_until(10, || read_log().contains("oops")
            && read_log().contains("hello from hezi")),
        "log {} lacks the container's output: {:?}",
        log_path.display(),
        read_log()
    );
    let lines = parse_cri_log(&read_log());
    let has = |stream: &str, text: &str| {
        lines
            .iter()
            .any(|l| l.stream == stream && l.tag == "F" && l.text == text)
    };
    assert!(has("stdout", "hello from hezi") && has("stderr", "oops"), "{lines:?}");

    s.stop_waiter(&app, &app_pid);
    assert!(
        wait_until(5, || read_log().contains("got TERM")),
        "trap output not logged: {:?}",
        read_log()
    );
    let (status, _) = s.cri.status(&app);
    assert!(
        status.finished_at >= status.started_at && status.started_at > 0,
        "{status:?}"
    );

    // A container that exits on its own: the CRI reports its exit code.
    let cfg = container_config("quitter", &pod, &["sh", "-c", "exit 3"]);
    let quitter = s
        .cri
        .create_container(&pod_id, &pod, &cfg)
        .expect("CreateContainer quitter");
    s.cri.start(&quitter).expect("StartContainer quitter");
    let status = s.cri.wait_state(&quitter, ContainerState::ContainerExited, 10);
    assert_eq!((status.exit_code, status.reason.as_str()), (3, "Error"), "{status:?}");

    s.tear_down(&pod_id, &[&app, &quitter], &[&marker]);
}

/// Two containers in a pod with its own network: both join the sandbox's network, IPC and UTS
/// namespaces (not the host's), each has its own pid and mount namespace, and one shim process
/// serves the pod.
fn shared_namespaces(handler: Handler) {
    if !prerequisites(handler) {
        return;
    }
    let s = Setup::new();
    let pod = pod_config("shared", Net::Pod, &s.c.log_dir().join("shared"), &s.cgroup_parent);
    let (pod_id, sandbox) = s.run_pod(&pod, handler);
    let (ma, mb) = (unique_id("cri-a"), unique_id("cri-b"));
    let (a, a_pid) = s.start(&pod_id, &pod, "a", &["sh", "-c", WAITER, &ma]);
    let (b, b_pid) = s.start(&pod_id, &pod, "b", &["sh", "-c", WAITER, &mb]);

    let me = std::process::id().to_string();
    for kind in ["net", "ipc", "uts"] {
        let sb = ns_link(&sandbox, kind);
        assert!(!sb.is_empty(), "sandbox {sandbox} has no {kind} namespace link");
        assert_ne!(sb, ns_link(&me, kind), "sandbox is in the host's {kind} namespace");
        assert_eq!(
            ns_link(&a_pid, kind),
            sb,
            "container a did not join the sandbox's {kind} namespace"
        );
        assert_eq!(
            ns_link(&b_pid, kind),
            sb,
            "container b did not join the sandbox's {kind} namespace"
        );
    }
    for kind in ["pid", "mnt"] {
        let (na, nb) = (ns_link(&a_pid, kind), ns_link(&b_pid, kind));
        assert_ne!(na, nb, "containers share a {kind} namespace");
        assert_ne!(
            na,
            ns_link(&sandbox, kind),
            "container a shares the sandbox's {kind} namespace"
        );
    }
    let (out, _, _) = s.cri.exec_ok(&b, &["hostname"]);
    assert_eq!(out.trim(), "shared", "the pod's hostname");

    // One shim per pod: the sandbox and both containers are its children (it is their
    // subreaper once the runtime's create has exited).
    let shims = s.c.shim_pids();
    assert_eq!(shims.len(), 1, "shim processes for one pod: {shims:?}");
    let shim = shims[0].to_string();
    for (what, pid) in [("sandbox", &sandbox), ("a", &a_pid), ("b", &b_pid)] {
        assert_eq!(ppid(pid), shim, "parent of {what} ({pid}) is not the pod's shim");
    }

    s.stop_waiter(&a, &a_pid);
    s.stop_waiter(&b, &b_pid);
    s.tear_down(&pod_id, &[&a, &b], &[&ma, &mb]);
}

/// A pod on the CNI bridge gets an address in the pod subnet; its containers reach each other
/// over localhost and the pod address, and the node reaches the pod.
fn pod_network(handler: Handler) {
    if !prerequisites(handler) {
        return;
    }
    let s = Setup::new();
    let pod = pod_config("web", Net::Pod, &s.c.log_dir().join("web"), &s.cgroup_parent);
    let (pod_id, _) = s.run_pod(&pod, handler);
    let (status, _) = s.cri.pod_status(&pod_id);
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    assert!(
        ip.starts_with(POD_SUBNET_PREFIX),
        "pod address {ip:?} not from the CNI range"
    );

    let (ms, mc) = (unique_id("cri-server"), unique_id("cri-client"));
    let server = "echo hezi-pong > /tmp/index.html; trap 'exit 7' TERM; httpd -f -p 8080 -h /tmp & wait";
    let (srv, srv_pid) = s.start(&pod_id, &pod, "server", &["sh", "-c", server, &ms]);
    let (cli, cli_pid) = s.start(&pod_id, &pod, "client", &["sh", "-c", WAITER, &mc]);

    let (out, _, code) = s.cri.exec_ok(&cli, &["ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(
        code == 0 && out.contains(&format!("inet {ip}/")),
        "eth0 in the pod: {out:?}"
    );
    for url in [
        "http://127.0.0.1:8080/index.html".to_string(),
        format!("http://{ip}:8080/index.html"),
    ] {
        let mut last = (String::new(), String::new(), -1);
        let got = wait_until(20, || {
            // No -T: Debian's busybox 1.35 wget segfaults with a timeout on a refused connection;
            // ExecSync's own timeout bounds it.
            last = s.cri.exec_ok(&cli, &["wget", "-q", "-O", "-", &url]);
            last.0.trim() == "hezi-pong"
        });
        let server_log = std::fs::read_to_string(s.c.log_dir().join("web/server.log")).unwrap_or_default();
        assert!(
            got,
            "client could not fetch {url} from the server container: {last:?}; server log: {server_log:?}"
        );
    }
    // The node (containerd's network namespace, where the bridge is) reaches the pod address.
    let out = std::process::Command::new("timeout")
        .args(["20", "nsenter"])
        .arg(format!("--net=/proc/{}/ns/net", s.c.pid()))
        .args([hezi_e2e::BUSYBOX, "wget", "-q", "-O", "-"])
        .arg(format!("http://{ip}:8080/index.html"))
        .output()
        .expect("run nsenter");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hezi-pong", "{out:?}");

    s.stop_waiter(&srv, &srv_pid);
    s.stop_waiter(&cli, &cli_pid);
    s.tear_down(&pod_id, &[&srv, &cli], &[&ms, &mc]);
    // host-local gave the address back (it keeps one file per address in use).
    let ipam = s.c.dir().join("cni/ipam/hezi-test");
    let held: Vec<_> = std::fs::read_dir(&ipam)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| n.to_string_lossy().starts_with("10."))
                .collect()
        })
        .unwrap_or_default();
    assert!(held.is_empty(), "pod addresses still allocated: {held:?}");
}

/// The memory limit of `pid`'s cgroup, read on the host: v1 memory.limit_in_bytes, or v2
/// memory.max.
fn memory_limit_of(pid: &str) -> String {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/PID/cgroup");
    let file = match cgroups
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
    {
        Some(path) => format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"),
        None => {
            let path = cgroups
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .expect("a cgroup v2 line");
            format!("/sys/fs/cgroup{path}/memory.max")
        }
    };
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("read {file}: {e}"))
        .trim()
        .to_string()
}

/// A container whose shell leaves two background processes holding its output, and serves
/// `port` with busybox httpd when given one. The sleeps' durations are unique to this test
/// process (tests run in parallel), so they mark the processes for the leak check.
fn busy_container(port: Option<u16>) -> (String, [String; 2]) {
    let n = 200_000 + 2 * hezi_e2e::next_number();
    let marks = [format!("sleep {n}"), format!("sleep {}", n + 1)];
    let server = port.map_or(String::new(), |p| {
        format!("echo up > /tmp/index.html; httpd -f -p {p} -h /tmp & ")
    });
    let script = format!("{server}{} & {} & while :; do sleep 1; done", marks[0], marks[1]);
    (script, marks)
}

/// StopPodSandbox with its containers still running, as `crictl stopp` or a kubelet whose
/// StopContainer timed out sends it: containerd kills each container, waits for its exit, then
/// the sandbox's. It must end within a CRI call's time (a hang shows as a timeout error), and
/// every process of the pod must be gone.
fn stop_running_pod(handler: Handler, name: &str, net: Net, pid: NamespaceMode, port: Option<u16>) {
    if !prerequisites(handler) {
        return;
    }
    let s = Setup::new();
    let pod = with_pid_mode(pod_config(name, net, &s.c.log_dir().join(name), &s.cgroup_parent), pid);
    let (pod_id, _) = s.run_pod(&pod, handler);
    let (ma, mb) = (unique_id("cri-busy-a"), unique_id("cri-busy-b"));
    let (script_a, marks_a) = busy_container(port);
    let (script_b, marks_b) = busy_container(None);
    let (a, _) = s.start(&pod_id, &pod, "a", &["sh", "-c", &script_a, &ma]);
    let (b, _) = s.start(&pod_id, &pod, "b", &["sh", "-c", &script_b, &mb]);
    if let Some(p) = port {
        let url = format!("http://127.0.0.1:{p}/index.html");
        assert!(
            wait_until(10, || s.cri.exec_ok(&b, &["wget", "-q", "-O", "/dev/null", &url]).2
                == 0),
            "the server in container a does not answer on {url}"
        );
    }
    let t = Instant::now();
    s.cri
        .stop_pod(&pod_id)
        .unwrap_or_else(|e| panic!("StopPodSandbox after {:?}: {e}\n{}", t.elapsed(), s.c.log_tail()));
    eprintln!("{name}: StopPodSandbox with running containers took {:?}", t.elapsed());
    for id in [&a, &b] {
        assert_eq!(s.cri.status(id).0.state, ContainerState::ContainerExited as i32);
    }
    let markers: Vec<&str> = [&ma, &mb]
        .into_iter()
        .chain(&marks_a)
        .chain(&marks_b)
        .map(String::as_str)
        .collect();
    s.tear_down(&pod_id, &[&a, &b], &markers);
}

/// hostPID: the containers' processes live in the node's pid namespace, so killing a
/// container's init leaves its children; the runtime must end them through the cgroup.
fn stop_host_pid_pod(handler: Handler) {
    stop_running_pod(handler, "hostpid", Net::Node, NamespaceMode::Node, None);
}

/// shareProcessNamespace: the containers join the sandbox's pid namespace.
fn stop_shared_pid_pod(handler: Handler) {
    stop_running_pod(handler, "sharedpid", Net::Pod, NamespaceMode::Pod, None);
}

/// A host-network pod whose container serves a port on the node's network.
fn stop_host_network_server(handler: Handler) {
    stop_running_pod(handler, "hostserver", Net::Node, NamespaceMode::Container, Some(18080));
}
