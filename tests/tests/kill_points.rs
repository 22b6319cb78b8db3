//! Nothing is left behind, whatever is killed when. `create`, `run -d`, `start`, `exec` and
//! `delete` are each SIGKILLed at random points of their whole path, and every time `delete
//! --force` must succeed and leave nothing of the container on the host: no state entry, no
//! cgroup directory in any hierarchy, no mount under the bundle, no process carrying the
//! container's id. And a program never runs unless `start` (or `run`) got that far.
//!
//! A kill point is one system call of the killed command: an uninterrupted run of the same
//! command is traced once (strace), and each round draws an index into that trace. The kill is
//! strace's fault injection at that call (`-e inject=NAME:signal=KILL:when=N`, the Nth call of
//! NAME), which is where the runtime is, whatever the machine's speed. Without strace (outside
//! CI) the rounds kill after a random delay instead.
//!
//! `HEZI_KILL_SEED` picks the schedule (a fixed one by default; CI sets a new one each run, see
//! scripts/test.sh) and `HEZI_KILL_ROUNDS` the rounds per command. A failure prints the seed,
//! the command, the round and the kill point, so `HEZI_KILL_SEED=S cargo test -p hezi-e2e --test
//! kill_points NAME` replays it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hezi_e2e::*;

/// The schedule `cargo test` runs when no seed is given.
const FIXED_SEED: u64 = 0x6865_7a69_6b69_6c6c;
const DEFAULT_ROUNDS: usize = 40;

/// xorshift64*: enough randomness for a schedule, and replayable from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// The seed of this run, mixed with the command's name so each command gets its own schedule.
fn rng_for(what: &str) -> (u64, Rng) {
    let seed = env_number("HEZI_KILL_SEED").unwrap_or(FIXED_SEED);
    let mixed = what
        .bytes()
        .fold(seed | 1, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    (seed, Rng(mixed | 1))
}

fn rounds() -> usize {
    env_number("HEZI_KILL_ROUNDS").map_or(DEFAULT_ROUNDS, |n| n as usize)
}

fn have_strace() -> bool {
    let ok = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var_os("CI").is_some() {
        panic!("needs strace (apt-get install strace): CI must provide it");
    }
    ok
}

/// Where a round kills the command.
#[derive(Clone)]
enum KillPoint {
    /// At the entry of the `nth` call (from 1) of `name`, which is call `index` of the trace.
    Syscall { index: usize, name: String, nth: usize },
    /// After a delay (no strace).
    After(Duration),
}

/// The system calls `hezi args` makes, in order (the command's own process, not its children).
fn trace(h: &Hezi, args: &[&str], out: &Path) -> Vec<String> {
    let status = Command::new("strace")
        .args(["-qq", "-o"])
        .arg(out)
        .arg(hezi_bin())
        .arg("--root")
        .arg(h.root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run strace");
    assert!(status.success(), "traced run of hezi {args:?} failed: {status}");
    let text = std::fs::read_to_string(out).expect("read the trace");
    text.lines()
        .filter_map(|l| {
            let name = l.split('(').next()?;
            (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).then(|| name.to_string())
        })
        .collect()
}

impl std::fmt::Display for KillPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KillPoint::Syscall { index, name, nth } => write!(f, "system call #{index} ({name}, call {nth} of it)"),
            KillPoint::After(d) => write!(f, "{d:?} after its start"),
        }
    }
}

fn draw(rng: &mut Rng, calls: &[String]) -> KillPoint {
    if calls.is_empty() {
        return KillPoint::After(Duration::from_micros(rng.below(40_000) as u64));
    }
    let index = rng.below(calls.len());
    let name = calls[index].clone();
    let nth = calls[..=index].iter().filter(|c| **c == name).count();
    KillPoint::Syscall { index, name, nth }
}

/// Run `hezi args`, killed at `point`. Returns whether it was killed (it may finish first: a
/// run's path varies a little, and a delay may outlast it).
fn run_killed(h: &Hezi, args: &[&str], point: &KillPoint) -> bool {
    let mut cmd = match point {
        KillPoint::Syscall { name, nth, .. } => {
            let mut c = Command::new("strace");
            c.args(["-qq", "-o", "/dev/null", "-e"])
                .arg(format!("trace={name}"))
                .arg("-e")
                .arg(format!("inject={name}:signal=KILL:when={nth}"))
                .arg(hezi_bin())
                .arg("--root")
                .arg(h.root())
                .args(args);
            c
        }
        KillPoint::After(_) => h.command(args),
    };
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn the command to kill");
    if let KillPoint::After(d) = point {
        std::thread::sleep(*d);
        let _ = child.kill();
    }
    let status = child.wait().expect("wait for the killed command");
    // strace exits with the tracee's status: 128 + SIGKILL.
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGKILL) || status.code() == Some(128 + libc::SIGKILL)
}

/// `delete --force` succeeds and nothing of `id` is left. Processes killed through a dead
/// runtime's parent-death signal die asynchronously: they get a few seconds.
fn assert_clean(h: &Hezi, id: &str, b: &Bundle, context: &str) {
    let out = h.cmd(&["delete", "--force", id]);
    assert!(
        out.status.success(),
        "{context}: delete --force failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(10, || process_with_cmdline(id).is_none());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_nothing_left(h, id, b, Some(id));
    }));
    if let Err(e) = result {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("{context}: {msg}");
    }
}

/// The container's program carries its id on its command line (the marker the leak check looks
/// for), and writes a file when it starts, so a program that ran without `start` is seen.
fn bundle() -> Bundle {
    let mut b = Bundle::busybox(&["sh", "-c", "touch /started-$0; exec sleep 100000", "ID"]);
    b.config["root"]["readonly"] = serde_json::json!(false);
    b.write();
    b
}

fn program_args(id: &str) -> serde_json::Value {
    serde_json::json!(["sh", "-c", "touch /started-$0; exec sleep 100000", id])
}

/// Whether the program of `id` ever started (it leaves /started-ID in the rootfs).
fn started(b: &Bundle, id: &str) -> bool {
    b.rootfs().join(format!("started-{id}")).exists()
}

/// One kill schedule: `prepare` brings container `id` to where the command starts (and returns
/// the command's arguments), the command is killed at a drawn point, then everything must go.
/// `may_start` says whether the command itself may start the program.
fn schedule(what: &str, may_start: bool, prepare: impl Fn(&Hezi, &mut Bundle, &str) -> Vec<String>) {
    require!();
    let h = Hezi::new();
    let mut b = bundle();
    let (seed, mut rng) = rng_for(what);
    let strace = have_strace();
    let trace_file = TempDir::new("trace");
    let calls = if strace {
        let id = format!("{}-k", unique_id(what));
        let args = prepare(&h, &mut b, &id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let calls = trace(&h, &args, &trace_file.path().join("trace"));
        h.ok(&["delete", "--force", &id]);
        calls
    } else {
        Vec::new()
    };
    let mut killed = 0;
    for round in 0..rounds() {
        // The trailing "-k" keeps one id from being a prefix of another (run-1-4, run-1-40) in
        // the leak check's command-line match.
        let id = format!("{}-k", unique_id(what));
        let args = prepare(&h, &mut b, &id);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let point = draw(&mut rng, &calls);
        let context = format!(
            "HEZI_KILL_SEED={seed:#x}, `hezi {what}` round {round}, killed at {point} of {} calls",
            calls.len()
        );
        if run_killed(&h, &args, &point) {
            killed += 1;
            if !may_start {
                assert!(
                    !started(&b, &id),
                    "{context}: the program ran although `start` never came"
                );
            }
        }
        assert_clean(&h, &id, &b, &context);
        let _ = std::fs::remove_file(b.rootfs().join(format!("started-{id}")));
    }
    eprintln!("{what}: {killed} of {} rounds killed (seed {seed:#x})", rounds());
    assert!(
        killed > 0,
        "no round of `hezi {what}` was killed: the schedule tests nothing"
    );
}

fn bundle_arg(b: &Bundle) -> String {
    b.path().to_str().expect("utf-8 bundle path").to_string()
}

/// Set the program's marker to `id` and write the config.
fn for_id(b: &mut Bundle, id: &str) {
    b.config["process"]["args"] = program_args(id);
    b.write();
}

#[test]
fn create_killed_anywhere_leaves_nothing() {
    schedule("create", false, |_, b, id| {
        for_id(b, id);
        vec!["create".into(), "--bundle".into(), bundle_arg(b), id.into()]
    });
}

#[test]
fn run_detached_killed_anywhere_leaves_nothing() {
    schedule("run", true, |_, b, id| {
        for_id(b, id);
        vec!["run".into(), "-d".into(), "--bundle".into(), bundle_arg(b), id.into()]
    });
}

#[test]
fn start_killed_anywhere_leaves_nothing() {
    schedule("start", true, |h, b, id| {
        for_id(b, id);
        h.ok(&["create", "--bundle", &bundle_arg(b), id]);
        vec!["start".into(), id.into()]
    });
}

#[test]
fn exec_killed_anywhere_leaves_nothing() {
    schedule("exec", true, |h, b, id| {
        for_id(b, id);
        h.ok(&["run", "-d", "--bundle", &bundle_arg(b), id]);
        vec![
            "exec".into(),
            "-d".into(),
            id.into(),
            "sh".into(),
            "-c".into(),
            "exec sleep 100001".into(),
            id.into(),
        ]
    });
}

#[test]
fn delete_killed_anywhere_leaves_nothing() {
    schedule("delete", true, |h, b, id| {
        for_id(b, id);
        h.ok(&["run", "-d", "--bundle", &bundle_arg(b), id]);
        vec!["delete".into(), "--force".into(), id.into()]
    });
}
