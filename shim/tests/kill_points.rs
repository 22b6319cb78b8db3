//! The shim SIGKILLed while it creates a container: containerd notices the shim is gone, runs
//! `containerd-shim-hezi-v2 delete` to clean up, and after `ctr task rm` / `ctr c rm` nothing of
//! the container is left: no hezi state, no cgroup, no mount, no process. The kill comes after a
//! random delay from the moment the shim exists, so the rounds spread over its whole create
//! path; `HEZI_KILL_SEED` replays a schedule (a fixed one by default), `HEZI_KILL_ROUNDS` widens
//! it. A private containerd 1.6, as in containerd.rs.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Containerd, IMAGE, NS, RUNTIME};

const FIXED_SEED: u64 = 0x7368_696d_6b69_6c6c;

fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// xorshift64*, replayable from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n.max(1)
    }
}

/// Processes whose command line holds `needle`.
fn pids_with(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmd).replace('\0', " ").contains(needle) {
            out.push(pid);
        }
    }
    out
}

fn parent_of(pid: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let ppid = status.lines().find_map(|l| l.strip_prefix("PPid:"));
    ppid.and_then(|p| p.trim().parse().ok()).unwrap_or(0)
}

/// Whether `pid` runs the shim binary (the server, `start`, or a process it forked).
fn is_shim(pid: i32) -> bool {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = cmd.split(|b| *b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(argv0).ends_with("containerd-shim-hezi-v2")
}

fn comm(pid: i32) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    comm.trim().to_string()
}

/// Cgroup directories named `id` below any hierarchy (ctr puts a container at /NS/ID).
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut roots = vec![base.to_path_buf()];
    roots.extend(
        std::fs::read_dir(base)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir()),
    );
    roots
        .into_iter()
        .map(|r| r.join(NS).join(id))
        .filter(|d| d.exists())
        .collect()
}

#[test]
fn a_shim_killed_while_creating_leaves_nothing() {
    let Some(c) = Containerd::start() else { return };
    let seed = env_number("HEZI_KILL_SEED").unwrap_or(FIXED_SEED);
    let mut rng = Rng(seed | 1);
    let rounds = env_number("HEZI_KILL_ROUNDS").map_or(20, |n| n.min(1000)) as usize;
    let mut killed = 0;
    for round in 0..rounds {
        let id = format!("{}-k", support::id("shimkill"));
        let delay = Duration::from_micros(rng.below(60_000));
        let context = format!("HEZI_KILL_SEED={seed:#x}, round {round}: shim killed {delay:?} after it appeared");
        let mut ctr = Command::new("ctr")
            .args(["--address", &c.address(), "--namespace", NS])
            .args([
                "run",
                "-d",
                "--runtime",
                RUNTIME,
                IMAGE,
                &id,
                "sh",
                "-c",
                "exec sleep 100000",
                &id,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run ctr");
        // The shim server of this container. Its command line names the container id, and so
        // do the `start` process (a child of containerd, which forks the server and exits),
        // the helper the server forks for create, and the init that helper clones: the server
        // is the one whose parent is neither containerd nor one of those.
        let deadline = Instant::now() + Duration::from_secs(10);
        let shim = loop {
            // Only shim processes: ctr's own command line names the id too, and a ctr killed
            // in place of the shim would test something else.
            let candidates: Vec<i32> = pids_with(&id).into_iter().filter(|p| is_shim(*p)).collect();
            let server = candidates.iter().copied().find(|p| {
                let parent = parent_of(*p);
                !candidates.contains(&parent) && comm(parent) != "containerd"
            });
            if server.is_some() {
                break server;
            }
            if Instant::now() > deadline || ctr.try_wait().ok().flatten().is_some() {
                break None;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        if let Some(pid) = shim {
            std::thread::sleep(delay);
            if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
        // ctr returns once containerd has the shim's answer or has noticed the shim is gone.
        let waited = Instant::now();
        while ctr.try_wait().ok().flatten().is_none() {
            if waited.elapsed() > Duration::from_secs(60) {
                let _ = ctr.kill();
                panic!(
                    "{context}: `ctr run` hung for a minute\n{}",
                    support::tail(&c.log(), 30)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // What a user does next: remove the task (forced) and the container.
        let _ = c.try_ctr(&["tasks", "kill", "-s", "SIGKILL", &id]);
        let _ = c.try_ctr(&["tasks", "rm", "-f", &id]);
        let _ = c.try_ctr(&["containers", "rm", &id]);
        let listed = c.stdout(&["containers", "ls", "-q"]);
        assert!(!listed.lines().any(|l| l == id), "{context}: container still listed");
        let state = Path::new("/run/containerd/hezi").join(NS).join(&id);
        assert!(!state.exists(), "{context}: hezi state left at {}", state.display());
        let gone = Instant::now();
        while !pids_with(&id).is_empty() {
            if gone.elapsed() > Duration::from_secs(10) {
                let left: Vec<String> = pids_with(&id)
                    .into_iter()
                    .map(|p| {
                        let wchan = std::fs::read_to_string(format!("/proc/{p}/wchan")).unwrap_or_default();
                        let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
                        let cmd = format!(
                            "{cmd} {:?}",
                            status
                                .lines()
                                .filter(|l| l.starts_with("Threads")
                                    || l.starts_with("NSpid")
                                    || l.starts_with("NSsid"))
                                .collect::<Vec<_>>()
                        );
                        format!(
                            "{p} {cmd:?} (parent {} {}, waiting in {wchan})",
                            parent_of(p),
                            comm(parent_of(p))
                        )
                    })
                    .collect();
                panic!("{context}: processes left: {left:?}\n{}", support::tail(&c.log(), 20));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let cgroups = cgroup_dirs(&id);
        assert!(cgroups.is_empty(), "{context}: cgroups left: {cgroups:?}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        assert!(!mounts.contains(&id), "{context}: mounts of {id} left");
    }
    eprintln!("{killed} of {rounds} shims killed (seed {seed:#x})");
    assert!(killed > 0, "no shim was killed: the schedule tests nothing");
}
