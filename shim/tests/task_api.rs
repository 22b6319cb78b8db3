//! The parts of the task API that containerd reaches without the common `ctr run` path: kill
//! with `all`, stdin and CloseIO, Checkpoint, the events and their order (OOM included), and
//! `delete` cleaning up after a shim that died. A private containerd 1.6, as in containerd.rs.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{wait_for, Containerd, IMAGE, NS, RUNTIME};

/// Host pids of the task's processes, from `ctr tasks ps`.
fn task_pids(c: &Containerd, id: &str) -> Vec<i32> {
    c.stdout(&["tasks", "ps", id])
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn kill_all_reaches_exec_processes_too() {
    let Some(c) = Containerd::start() else { return };
    let id = support::id("killall");
    c.ctr(&["run", "-d", "--runtime", RUNTIME, IMAGE, &id, "sleep", "1000"]);
    c.ctr(&["tasks", "exec", "-d", "--exec-id", "x1", &id, "sleep", "1001"]);
    wait_for("two processes", Duration::from_secs(10), || {
        task_pids(&c, &id).len() == 2
    });
    let pids = task_pids(&c, &id);
    c.ctr(&["tasks", "kill", "--all", "-s", "SIGKILL", &id]);
    wait_for("every process to die", Duration::from_secs(10), || {
        !pids.iter().any(|&p| alive(p))
    });
    wait_for("the task to stop", Duration::from_secs(10), || {
        c.task_status(&id).as_deref() == Some("STOPPED")
    });
    c.ctr(&["tasks", "delete", &id]);
    c.ctr(&["containers", "delete", &id]);
}

#[test]
fn stdin_reaches_the_process_and_close_io_ends_it() {
    let Some(c) = Containerd::start() else { return };
    let id = support::id("stdin");
    // ctr closes the task's stdin (CloseIO) when its own stdin ends; cat then exits.
    let mut ctr = Command::new("ctr")
        .args(["--address", &c.address(), "--namespace", NS])
        .args(["run", "--rm", "--runtime", RUNTIME, IMAGE, &id, "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ctr");
    let mut stdin = ctr.stdin.take().expect("stdin");
    stdin.write_all(b"through stdin\n").expect("write");
    drop(stdin);
    let out = ctr.wait_with_output().expect("wait for ctr");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");
}

/// `ctr tasks checkpoint` reaches the shim's Checkpoint, which runs CRIU. Where CRIU cannot
/// work (this host's kernel is newer than Debian's CRIU knows) the error is what `criu check`
/// said and the task runs on undisturbed; where it works the image is written, and `ctr
/// containers checkpoint --task` then `restore --live` bring the task back. The full round
/// (checkpoint, then a Create naming it and Start restoring) runs in the VM, where CRIU works:
/// t_checkpoint_hezi_shim in scripts/vm/checkpoint.sh.
#[test]
fn checkpoint_through_ctr_goes_to_criu() {
    let Some(c) = Containerd::start() else { return };
    let id = support::id("ckpt");
    // Runtime options (an empty hezi config): containerd 1.6's `containers restore` fails
    // ("media type not found") on a checkpoint of a container that had none.
    let config = std::env::temp_dir().join(format!("{id}.toml"));
    std::fs::write(&config, "# no options\n").expect("write the runtime config");
    let config = config.to_str().expect("utf-8 path");
    c.ctr(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        "--runtime-config-path",
        config,
        IMAGE,
        &id,
        "sleep",
        "1000",
    ]);
    let criu_works = Command::new("criu")
        .arg("check")
        .output()
        .is_ok_and(|o| o.status.success());
    if criu_works {
        // The whole round through containerd: `containers checkpoint --task` (the shim's
        // Checkpoint, the image into the content store), the original gone, and a container
        // made again from it whose task the shim restores (Create naming the checkpoint,
        // Start restoring).
        let image_ref = format!("hezi.test/checkpoint:{id}");
        c.ctr(&["containers", "checkpoint", "--task", &id, &image_ref]);
        c.remove(&id);
        c.ctr(&["containers", "restore", "--live", &id, &image_ref]);
        wait_for("the restored task to run", Duration::from_secs(20), || {
            c.task_status(&id).as_deref() == Some("RUNNING")
        });
    } else {
        let out = c.try_ctr(&["tasks", "checkpoint", &id]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success());
        assert!(err.contains("criu check"), "{err}");
        assert_eq!(
            c.task_status(&id).as_deref(),
            Some("RUNNING"),
            "a failed checkpoint disturbed the task"
        );
    }
    let _ = std::fs::remove_file(config);
    c.remove(&id);
}

/// `ctr events` lines for `id`'s topics, in order, until `done` says enough.
struct Events {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl Events {
    fn start(c: &Containerd) -> Events {
        let out = c.dir.join(format!("events-{}", support::id("ev")));
        let child = Command::new("ctr")
            .args(["--address", &c.address(), "--namespace", NS, "events"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("events file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ctr events");
        // ctr events subscribes asynchronously: wait until an event of our own shows up.
        let ev = Events { child, out };
        let mut n = 0;
        wait_for("ctr events to subscribe", Duration::from_secs(30), || {
            n += 1;
            c.ctr(&["namespaces", "label", NS, "hezi-test-probe", &n.to_string()]);
            std::thread::sleep(Duration::from_millis(100));
            std::fs::read_to_string(&ev.out).is_ok_and(|t| t.contains("/namespaces/update"))
        });
        ev
    }

    /// The topics of events that mention `id`, in the order containerd delivered them.
    fn topics(&self, id: &str) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(id))
            .filter_map(|l| {
                l.split_whitespace()
                    .find(|w| w.starts_with("/tasks/"))
                    .map(str::to_string)
            })
            .collect()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn events_come_in_containerds_order() {
    let Some(c) = Containerd::start() else { return };
    let ev = Events::start(&c);
    let id = support::id("events");
    c.ctr(&["run", "-d", "--runtime", RUNTIME, IMAGE, &id, "sleep", "1000"]);
    c.ctr(&["tasks", "exec", "--exec-id", "e1", &id, "true"]);
    c.ctr(&["tasks", "pause", &id]);
    c.ctr(&["tasks", "resume", &id]);
    c.ctr(&["tasks", "kill", "-s", "SIGKILL", &id]);
    wait_for("the task to stop", Duration::from_secs(10), || {
        c.task_status(&id).as_deref() == Some("STOPPED")
    });
    c.ctr(&["tasks", "delete", &id]);
    let want = [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exec-added",
        "/tasks/exec-started",
        "/tasks/exit",
        "/tasks/paused",
        "/tasks/resumed",
        "/tasks/exit",
        "/tasks/delete",
    ];
    wait_for("the delete event", Duration::from_secs(10), || {
        ev.topics(&id).last().map(String::as_str) == Some("/tasks/delete")
    });
    assert_eq!(ev.topics(&id), want);
    c.ctr(&["containers", "delete", &id]);
}

#[test]
fn an_oom_kill_is_a_task_oom_event() {
    let Some(c) = Containerd::start() else { return };
    let ev = Events::start(&c);
    let id = support::id("oom");
    // A shell holding 64 MB in a variable, under a 16 MiB limit (the host has no swap to hide in).
    c.ctr(&[
        "run",
        "-d",
        "--memory-limit",
        "16777216",
        "--runtime",
        RUNTIME,
        IMAGE,
        &id,
        "sh",
        "-c",
        "sleep 1; x=$(yes | head -c 64000000); sleep 1000",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ev.topics(&id).iter().any(|t| t == "/tasks/oom") {
        assert!(
            Instant::now() < deadline,
            "no /tasks/oom event; events: {:?}; containerd log:\n{}",
            ev.topics(&id),
            support::tail(&c.log(), 30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The OOM killer may have taken the init itself: remove's kill may find nothing.
    c.remove(&id);
}

/// A shim killed under a running container: containerd runs `containerd-shim-hezi-v2 delete`,
/// which kills the container, unmounts its rootfs and reports it killed.
#[test]
fn delete_cleans_up_after_a_dead_shim() {
    let Some(c) = Containerd::start() else { return };
    let id = support::id("deadshim");
    c.ctr(&["run", "-d", "--runtime", RUNTIME, IMAGE, &id, "sleep", "1000"]);
    let pids = task_pids(&c, &id);
    let shims = c.shim_pids();
    assert_eq!(shims.len(), 1);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(shims[0]), nix::sys::signal::Signal::SIGKILL)
        .expect("kill the shim");
    wait_for("containerd to clean up the task", Duration::from_secs(30), || {
        c.task_status(&id).as_deref() != Some("RUNNING")
    });
    wait_for("the container's processes to die", Duration::from_secs(10), || {
        !pids.iter().any(|&p| alive(p))
    });
    let _ = c.try_ctr(&["tasks", "delete", &id]);
    c.ctr(&["containers", "delete", &id]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(!mounts.contains(&id), "rootfs of {id} still mounted");
}
