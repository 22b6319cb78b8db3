//! A private containerd 1.6 with the CRI plugin, everything of it under one temp dir: root,
//! state, sockets, CNI binaries and config, the runc shim's `--root` for hezi, pod logs.
//!
//! It runs in a network namespace of its own (`unshare --net`): the CNI bridge it creates, the
//! pods' addresses (10.88.0.0/16) and "host network" pods all stay inside it, so a test never
//! touches the machine's real network. Mounts stay in the host's mount namespace, so the test
//! sees (and checks) every mount it leaves.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hezi_e2e::{mounts_under, wait_until, TempDir};

use crate::image;

/// The runtime handlers every instance knows: hezi through containerd's own runc shim, and
/// hezi's shim (containerd finds `containerd-shim-hezi-v2` on its PATH, which starts with the
/// directory of the hezi binary).
pub const HANDLER_RUNC: &str = "hezi-runc";
pub const HANDLER_SHIM: &str = "hezi";

/// The CNI network the pods join (conflist name and bridge).
const CNI_NETWORK: &str = "hezi-test";
/// The pods' subnet: private, and only ever inside the instance's own network namespace.
pub const POD_SUBNET_PREFIX: &str = "10.88.";

pub struct Containerd {
    dir: TempDir,
    child: Option<Child>,
}

impl Containerd {
    /// Start an instance and import the suite's images into its `k8s.io` namespace; returns
    /// once the CRI answers and both images are known to it.
    pub fn start() -> Containerd {
        let dir = TempDir::new("cri");
        let d = dir.path();
        for sub in [
            "root",
            "state",
            "opt",
            "cni/bin",
            "cni/conf",
            "cni/ipam",
            "runc-root",
            "logs",
            "images",
        ] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir in containerd dir");
        }
        // Only the plugins the conflist names, linked from Debian's containernetworking-plugins.
        for plugin in ["bridge", "host-local", "loopback"] {
            std::os::unix::fs::symlink(
                Path::new(crate::CNI_BIN_DIR).join(plugin),
                d.join("cni/bin").join(plugin),
            )
            .expect("link CNI plugin");
        }
        std::fs::write(d.join("cni/conf/10-hezi-test.conflist"), conflist(d)).expect("write conflist");
        std::fs::write(d.join("config.toml"), config(d)).expect("write containerd config");

        let log = std::fs::File::create(d.join("containerd.log")).expect("create containerd log");
        // containerd looks shims up on PATH: the hezi shim is built next to hezi.
        let bin_dir = crate::hezi_bin().parent().expect("hezi's directory").to_path_buf();
        let path = format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            bin_dir.display()
        );
        let script = "ip link set lo up && exec containerd --config \"$1\"";
        let child = Command::new("unshare")
            .args(["--net", "--", "sh", "-c", script, "sh"])
            .arg(d.join("config.toml"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn containerd");
        let c = Containerd {
            dir,
            child: Some(child),
        };
        let sock = c.address();
        if !wait_until(30, || sock.exists()) {
            panic!("containerd never made {}:\n{}", sock.display(), c.log_tail());
        }
        c.import_images();
        c
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The gRPC (and so CRI) socket.
    pub fn address(&self) -> PathBuf {
        self.dir().join("containerd.sock")
    }

    /// The `--root` the runc shim passes to hezi for the `k8s.io` namespace.
    pub fn runc_root(&self) -> PathBuf {
        self.dir().join("runc-root/k8s.io")
    }

    /// Where pods' log directories go.
    pub fn log_dir(&self) -> PathBuf {
        self.dir().join("logs")
    }

    /// containerd's pid (the network namespace "host network" pods share).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The last lines containerd logged, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir().join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// `ctr` against this instance, in the `k8s.io` namespace the CRI uses.
    fn ctr(&self, args: &[&str]) -> std::process::Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.address())
            .args(["--namespace", "k8s.io"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr")
    }

    fn import_images(&self) {
        let (busybox, pause) = image::write_archives(&self.dir().join("images"));
        for archive in [busybox, pause] {
            // `ctr` may reach the socket before containerd serves it: retry until it answers.
            let mut last = None;
            let imported = wait_until(30, || {
                let out = self.ctr(&["images", "import", archive.to_str().expect("utf-8 path")]);
                let ok = out.status.success();
                last = Some(out);
                ok
            });
            let out = last.expect("ctr ran");
            assert!(
                imported,
                "ctr images import {}: {}{}\n{}",
                archive.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_tail()
            );
        }
    }

    /// Processes of this instance's shims (their command line carries its socket's path).
    pub fn shim_pids(&self) -> Vec<i32> {
        let needle = format!("-address {}", self.address().display());
        pids_with_cmdline(&needle)
    }

    /// Mounts under the instance's directory.
    pub fn mounts(&self) -> Vec<String> {
        mounts_under(self.dir())
    }
}

/// Every live process whose command line contains `needle`.
pub fn pids_with_cmdline(needle: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(needle))
                .unwrap_or(false)
                && hezi_e2e::alive((*pid).into())
        })
        .collect()
}

/// A failed test leaves pods running: take down what this instance started, so one failure
/// does not leak shims, containers or mounts into the next test or the machine.
impl Drop for Containerd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_wait(&mut child);
        }
        for pid in self.shim_pids() {
            // SAFETY: kill(2) on a pid we just read from /proc; at worst it is gone (ESRCH).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // The shims are gone, so hezi's containers under the runc shim's root are orphans.
        let root = self.runc_root();
        if let Ok(out) = Command::new(crate::hezi_bin())
            .arg("--root")
            .arg(&root)
            .args(["list", "-q"])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = Command::new(crate::hezi_bin())
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "--force", id])
                    .output();
            }
        }
        // Innermost first: a mount over a mount must go before the one under it.
        let mut left = self.mounts();
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in left {
            if let Ok(c) = std::ffi::CString::new(m) {
                // SAFETY: a valid C string; a lazy unmount of a path under our own temp dir.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        self.forget_cni_results();
        if std::thread::panicking() {
            let _ = writeln!(std::io::stderr(), "containerd log (tail):\n{}", self.log_tail());
        }
    }
}

impl Containerd {
    /// containerd 1.6 keeps each pod's CNI results in the machine's /var/lib/cni/results (not
    /// configurable); a pod whose StopPodSandbox never ran its CNI DEL leaves them there. Remove
    /// those of this instance's pods: the file names carry the network and the sandbox id.
    fn forget_cni_results(&self) {
        let sandboxes = self.dir().join("root/io.containerd.grpc.v1.cri/sandboxes");
        let Ok(entries) = std::fs::read_dir(sandboxes) else {
            return;
        };
        for id in entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()) {
            for name in [format!("{CNI_NETWORK}-{id}-eth0"), format!("cni-loopback-{id}-lo")] {
                let _ = std::fs::remove_file(Path::new("/var/lib/cni/results").join(name));
            }
        }
    }
}

/// SIGTERM, then SIGKILL if it has not exited within 10 s.
fn kill_and_wait(child: &mut Child) {
    let pid = child.id() as i32;
    // SAFETY: kill(2) on our own child, not yet reaped, so the pid is still ours.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let exited = wait_until(10, || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// containerd 1.6's config (version 2): everything under `d`, the CRI plugin with both hezi
/// handlers, and the two settings this machine needs: no AppArmor, and no raising of
/// oom_score_adj (no CAP_SYS_RESOURCE here).
fn config(d: &Path) -> String {
    let d = d.display();
    let hezi = crate::hezi_bin();
    let hezi = hezi.display();
    let pause = image::PAUSE_IMAGE;
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
# Snapshotters that cannot work here would only log errors.
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  level = "debug"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  # Port 0: parallel instances must not fight over the default 10010.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Pod network namespaces are bind-mounted under state, not the machine's /var/run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "{HANDLER_RUNC}"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{HANDLER_RUNC}]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{HANDLER_RUNC}.options]
        BinaryName = "{hezi}"
        Root = "{d}/runc-root"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{HANDLER_SHIM}]
      runtime_type = "io.containerd.hezi.v2"
"#
    )
}

/// The pods' network (containerd brings each pod's `lo` up itself, with the loopback plugin
/// from bin_dir): a bridge with host-local addresses, IPAM state under `d` (not the
/// machine's /var/lib/cni), no masquerading, no default route out of the pod.
fn conflist(d: &Path) -> String {
    let ipam_dir = d.join("cni/ipam");
    let conf = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni-hezi0",
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "dataDir": ipam_dir,
                    "ranges": [[{ "subnet": format!("{POD_SUBNET_PREFIX}0.0/16") }]],
                },
            },
        ],
    });
    serde_json::to_string_pretty(&conf).expect("serialize conflist")
}

/// How long CRI calls may take before a test gives up on them.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
