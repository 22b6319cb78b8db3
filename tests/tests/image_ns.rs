//! The daemonless stack as a complete tool (issue 20), its last pieces: containerd's namespaces
//! for containers as for images, Ctrl-C during a transfer leaving nothing, and
//! `--log-uri binary://` (a logging program started as containerd's shims start it). Bad input
//! fails naming what was wrong and leaves nothing behind.

mod image_support;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use hezi_e2e::{require, unique_id, Bundle, Hezi, TempDir};
use image_support::*;
use serde_json::Value;

const DEMO: &str = "hezi.local/demo:latest";

/// Force-deletes, on drop, the containers the test left in namespace `ns` (the harness's own
/// cleanup sees only `default`'s).
struct NsCleanup<'a> {
    h: &'a Hezi,
    ns: &'static str,
}

impl Drop for NsCleanup<'_> {
    fn drop(&mut self) {
        let out = self.h.cmd(&["-n", self.ns, "list", "-q"]);
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = self.h.cmd(&["-n", self.ns, "delete", "--force", id]);
        }
    }
}

fn ids(out: &str) -> Vec<&str> {
    out.lines().collect()
}

/// Containers made in a namespace are that namespace's alone: `list` there shows them and no
/// other, every command on an id of another namespace says it is not found there, `delete -f`
/// from elsewhere leaves them (and their bundle) alone, and an id is not taken twice. Without
/// `-n`, `--root` is the `default` namespace exactly as runc lays it out: bundle containers are
/// in it, and a root that never saw a namespace gains nothing.
#[test]
fn containers_belong_to_their_namespace() {
    require!();
    let h = Hezi::new();
    let _a = NsCleanup { h: &h, ns: "team-a" };
    let _b = NsCleanup { h: &h, ns: "team-b" };
    let bundle_only = unique_id("nsb");
    let b = Bundle::busybox(&["sleep", "1000"]);
    h.create(&b, &bundle_only);
    assert!(
        !h.root().join(".namespaces").exists(),
        "a root of bundle containers gained a namespace directory"
    );
    h.ok(&["image", "demo"]);
    h.ok(&["-n", "team-a", "image", "demo"]);
    let (a1, d1) = (unique_id("nsa"), unique_id("nsd"));
    h.ok(&["-n", "team-a", "run", "-d", "--image", DEMO, &a1, "--", "sleep", "1000"]);
    h.ok(&["run", "-d", "--image", DEMO, &d1, "--", "sleep", "1000"]);

    // list: each namespace its own; default is --root's (bundle containers included).
    assert_eq!(ids(&h.ok(&["-n", "team-a", "list", "-q"])), [a1.as_str()]);
    let mut default = vec![bundle_only.as_str(), d1.as_str()];
    default.sort();
    assert_eq!(ids(&h.ok(&["list", "-q"])), default);
    assert_eq!(ids(&h.ok(&["-n", "default", "list", "-q"])), default);
    assert_eq!(
        ids(&ok_env(&h, &[("CONTAINERD_NAMESPACE", "team-a")], &["list", "-q"])),
        [a1.as_str()]
    );
    assert_eq!(h.ok(&["-n", "team-b", "list", "-q"]), "");
    let table = h.ok(&["-n", "team-a", "list"]);
    assert!(table.contains(&a1) && table.contains(DEMO), "{table}");

    // The state carries image and namespace.
    let st: Value = serde_json::from_str(&h.ok(&["-n", "team-a", "state", &a1])).unwrap();
    assert_eq!(st["status"], "running");
    assert_eq!(st["annotations"]["org.hezi.namespace"], "team-a", "{st}");
    assert_eq!(st["annotations"]["org.hezi.image"], DEMO, "{st}");
    assert_eq!(h.state(&d1)["annotations"]["org.hezi.namespace"], "default");
    assert_eq!(h.ok(&["-n", "team-a", "exec", &a1, "echo", "in-a"]), "in-a\n");

    // Every command on another namespace's id: not found, as ctr says it (runc's words in
    // default, which podman and containerd's runc shim match on).
    for cmd in [
        &["state"][..],
        &["kill"],
        &["delete"],
        &["exec"],
        &["pause"],
        &["resume"],
        &["ps"],
        &["events", "--stats"],
        &["update", "--pids-limit", "10"],
        &["start"],
    ] {
        let run = |ns: Option<&str>, id: &str| {
            let mut args: Vec<&str> = ns.map(|n| vec!["-n", n]).unwrap_or_default();
            args.extend_from_slice(cmd);
            args.push(id);
            if cmd[0] == "exec" {
                args.push("true");
            }
            fails(&h, &args)
        };
        let e = run(None, &a1);
        assert!(e.contains(&format!("container {a1} does not exist")), "{cmd:?}: {e}");
        for id in [&d1, &bundle_only] {
            let e = run(Some("team-a"), id);
            assert!(
                e.contains(&format!("container {id} not found in namespace team-a")),
                "{cmd:?}: {e}"
            );
        }
        let e = run(Some("team-b"), &a1);
        assert!(
            e.contains(&format!("container {a1} not found in namespace team-b")),
            "{cmd:?}: {e}"
        );
    }
    // delete -f of a missing id succeeds (runc's rule) and touches no other namespace's bundle.
    h.ok(&["-n", "team-b", "delete", "-f", &a1]);
    h.ok(&["delete", "-f", &a1]);
    assert!(
        h.root().join(".bundles").join(&a1).join("rootfs/bin").exists(),
        "a1's bundle went"
    );
    assert_eq!(h.ok(&["-n", "team-a", "exec", &a1, "echo", "still"]), "still\n");

    // Ids are unique across namespaces (cgroups and bundles are named by them).
    let before = store_files(&h);
    for (ns, id) in [(None, &a1), (Some("team-b"), &d1), (Some("team-a"), &bundle_only)] {
        let mut args: Vec<&str> = ns.map(|n| vec!["-n", n]).unwrap_or_default();
        args.extend_from_slice(&["run", "-d", "--image", DEMO, id, "--", "true"]);
        let e = fails(&h, &args);
        assert!(e.contains(&format!("container {id} exists in namespace")), "{e}");
    }
    let e = fails(
        &h,
        &["-n", "team-b", "create", "--bundle", b.path().to_str().unwrap(), &d1],
    );
    assert!(
        e.contains(&format!("container {d1} exists in namespace default")),
        "{e}"
    );
    assert_eq!(store_files(&h), before, "a refused create changed the store");
    assert_eq!(h.ok(&["-n", "team-b", "list", "-q"]), "");

    // Bad namespaces, from the flag or the environment, are named and make nothing.
    let e = fails(&h, &["-n", "a..b", "list"]);
    assert!(e.contains("invalid namespace \"a..b\""), "{e}");
    let o = hezi_env(&h, &[("CONTAINERD_NAMESPACE", "x/y")], &["state", &a1]);
    assert!(
        !o.status.success() && text(&o).contains("invalid namespace \"x/y\""),
        "{}",
        text(&o)
    );
    assert!(!h.root().join(".namespaces/a..b").exists());

    // The namespace's own commands end its container, bundle and all.
    h.ok(&["-n", "team-a", "kill", &a1, "KILL"]);
    hezi_e2e::wait_until(10, || {
        h.cmd(&["-n", "team-a", "state", &a1])
            .stdout
            .windows(7)
            .any(|w| w == b"stopped")
    });
    h.ok(&["-n", "team-a", "delete", &a1]);
    assert_bundle_gone_of(&h, &a1);
    assert_eq!(h.ok(&["-n", "team-a", "list", "-q"]), "");
    h.ok(&["delete", "-f", &d1]);
    h.ok(&["delete", "-f", &bundle_only]);
}

/// No bundle of `id` is left (other containers' mounts may still be there).
fn assert_bundle_gone_of(h: &Hezi, id: &str) {
    let dir = h.root().join(".bundles").join(id);
    assert!(!dir.exists(), "bundle {} left", dir.display());
    assert!(
        hezi_e2e::mounts_under(Path::new(&dir)).is_empty(),
        "mounts left under {}",
        dir.display()
    );
}

/// A big image (the test base layer, then 12 MiB of noise) behind a slow registry.
fn slow_big_image() -> (SlowRegistry, String) {
    let (base, _) = test_layers();
    let mut big = Tar::default();
    big.file("big", &noise(12 << 20));
    let big = big.finish();
    let cfg = test_config(&[sha256(&base), sha256(&big)]);
    let reg = SlowRegistry::start("test/big", "1", &[base, big], &cfg, Duration::from_millis(40));
    let name = format!("127.0.0.1:{}/test/big:1", reg.port);
    (reg, name)
}

/// Spawn `hezi ARGS` (output to files in `io`), wait until the store has a temp file with
/// something in it (the transfer is under way), send `sig`, and return the exit code and what
/// hezi said. `hezi` must end within 20 s of the signal.
fn interrupt(h: &Hezi, io: &TempDir, args: &[&str], sig: libc::c_int, underway: impl Fn() -> bool) -> (i32, String) {
    let (out, err) = (io.path().join("out"), io.path().join("err"));
    let mut child = h
        .command(args)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn hezi");
    let started = hezi_e2e::wait_until(30, || underway() || child.try_wait().ok().flatten().is_some());
    assert!(started, "{args:?} never got under way");
    assert!(child.try_wait().unwrap().is_none(), "{args:?} ended before the signal");
    // SAFETY (test): a signal to the child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?} still running 20 s after signal {sig}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let said = std::fs::read_to_string(&err).unwrap_or_default() + &std::fs::read_to_string(&out).unwrap_or_default();
    (status.code().unwrap_or(-1), said)
}

/// A temp file with data in the store: a blob being written.
fn writing(h: &Hezi) -> bool {
    std::fs::read_dir(store(h).join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.metadata().is_ok_and(|m| m.len() > 0))
}

/// Ctrl-C in the middle of a pull, SIGTERM in the middle of an import (from a pipe fed slowly)
/// and Ctrl-C in the middle of a push: hezi exits 130 or 143 saying so, and the store is file
/// for file as it was (no temp file, half blob, snapshot or record). Each again, left alone,
/// succeeds.
#[test]
fn interrupted_transfers_leave_nothing() {
    require!();
    let (reg, name) = slow_big_image();
    let h = Hezi::new();
    let io = TempDir::new("intr");
    h.ok(&["image", "ls"]); // the store's empty layout
    let before = store_files(&h);
    let (code, said) = interrupt(&h, &io, &["image", "pull", "--plain-http", &name], libc::SIGINT, || {
        writing(&h)
    });
    assert_eq!(code, 130, "{said}");
    assert!(said.contains("image pull interrupted by SIGINT"), "{said}");
    assert_eq!(store_files(&h), before, "an interrupted pull left something");
    reg.slow.store(false, std::sync::atomic::Ordering::Relaxed);
    h.ok(&["image", "pull", "--plain-http", &name]);
    let id = unique_id("big");
    assert_eq!(
        h.ok(&[
            "run",
            "--image",
            &name,
            &id,
            "--",
            "sh",
            "-c",
            "cat /keep/k; stat -c %s /big"
        ]),
        format!("k\n{}\n", 12 << 20)
    );

    // import from a pipe that trickles the archive in.
    let archive = io.path().join("big.tar");
    h.ok(&["image", "export", archive.to_str().unwrap(), &name]);
    let h2 = Hezi::new();
    h2.ok(&["image", "ls"]);
    let before = store_files(&h2);
    let fifo = io.path().join("fifo");
    sh(&format!("mkfifo {}", fifo.display()));
    let feeder = {
        let (fifo, archive) = (fifo.clone(), archive.clone());
        std::thread::spawn(move || {
            let data = std::fs::read(archive).unwrap();
            let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(fifo) else {
                return;
            };
            for piece in data.chunks(64 << 10) {
                if f.write_all(piece).is_err() {
                    return; // hezi stopped reading
                }
                std::thread::sleep(Duration::from_millis(40));
            }
        })
    };
    let (code, said) = interrupt(
        &h2,
        &io,
        &["image", "import", fifo.to_str().unwrap()],
        libc::SIGTERM,
        || writing(&h2),
    );
    assert_eq!(code, 143, "{said}");
    assert!(said.contains("image import interrupted by SIGTERM"), "{said}");
    assert_eq!(store_files(&h2), before, "an interrupted import left something");
    feeder.join().unwrap();
    h2.ok(&["image", "import", archive.to_str().unwrap()]);
    assert!(h2.ok(&["image", "ls", "-q"]).contains("test/big:1"));

    // push to a registry that takes the body slowly: nothing changes here.
    let (push_reg, _) = slow_big_image();
    let before = store_files(&h2);
    let dest = format!("127.0.0.1:{}/test/pushed:1", push_reg.port);
    let pushing = || {
        // The registry's connections: an upload is under way once one has lasted a while.
        std::thread::sleep(Duration::from_millis(800));
        true
    };
    let (code, said) = interrupt(
        &h2,
        &io,
        &["image", "push", "--plain-http", &dest, &name],
        libc::SIGINT,
        pushing,
    );
    assert_eq!(code, 130, "{said}");
    assert!(said.contains("image push interrupted by SIGINT"), "{said}");
    assert_eq!(store_files(&h2), before, "an interrupted push changed the store");
}

/// A logging program in the shape containerd's `binary://` wants: it notes its environment and
/// arguments (`file PATH`), says it is ready by closing fd 5, then copies fd 3 (the container's
/// stdout) and fd 4 (its stderr) to PATH.out and PATH.err. Only CONTAINER_ID and
/// CONTAINER_NAMESPACE are in its environment, so every tool is named by its path.
const LOGGER: &str = r#"#!/bin/sh
{ echo "args=$*"; /usr/bin/tr '\0' '\n' < /proc/$$/environ | /usr/bin/sort; } > "$2.env"
fds=$(/bin/readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2)
echo "$fds" > "$2.stdio"
exec 5>&-
/bin/cat <&3 >> "$2.out" &
/bin/cat <&4 >> "$2.err" &
wait
"#;

fn script(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    sh(&format!("chmod 755 {}", p.display()));
    p.display().to_string()
}

/// `--log-uri binary:///PATH?file=LOG`: the logger is started before the container, with the
/// container's stdout and stderr on its fds 3 and 4, its id and namespace in the environment and
/// the query as arguments; it holds none of hezi's stdio (a detached `run` under a pipe returns
/// at once); a foreground `run` returns with the log complete; bundles get it too. A logger
/// that is missing, not executable, exits before it is ready or never says so fails the
/// command, naming it, and leaves no container, bundle or logger.
#[test]
fn binary_log_uri_starts_the_logger_first() {
    require!();
    let h = Hezi::new();
    let _a = NsCleanup { h: &h, ns: "team-a" };
    h.ok(&["-n", "team-a", "image", "demo"]);
    let tmp = TempDir::new("logger");
    let logger = script(tmp.path(), "logger.sh", LOGGER);
    let log = tmp.path().join("d1");
    let uri = format!("binary://{logger}?file={}", log.display());

    // Detached, in a namespace, with hezi's stdout and stderr a pipe: EOF comes with hezi's exit.
    let id = unique_id("logd");
    let child = h
        .command(&[
            "-n",
            "team-a",
            "run",
            "-d",
            "--image",
            DEMO,
            "--log-uri",
            &uri,
            &id,
            "--",
            "sh",
            "-c",
            "echo to-out; echo to-err >&2; exec sleep 1000",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run hezi");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(o) = rx.recv_timeout(Duration::from_secs(15)) else {
        let _ = h.cmd(&["-n", "team-a", "delete", "-f", &id]);
        panic!("hezi's stdout and stderr stayed open behind it (held by the logger?)");
    };
    let o = o.expect("wait for hezi");
    assert!(o.status.success(), "{}", text(&o));
    let read = |suffix: &str| std::fs::read_to_string(format!("{}.{suffix}", log.display())).unwrap_or_default();
    assert!(hezi_e2e::wait_until(10, || read("out") == "to-out\n" && read("err") == "to-err\n"));
    assert_eq!(
        read("env"),
        format!(
            "args=file {}\nCONTAINER_ID={id}\nCONTAINER_NAMESPACE=team-a\n",
            log.display()
        )
    );
    let stdio = read("stdio");
    assert_eq!(stdio.matches("/dev/null").count(), 3, "logger's stdio: {stdio}");
    h.ok(&["-n", "team-a", "kill", &id, "KILL"]);
    assert!(
        hezi_e2e::wait_until(10, || hezi_e2e::process_with_cmdline(&logger).is_none()),
        "logger outlived its container"
    );
    h.ok(&["-n", "team-a", "delete", "-f", &id]);

    // Foreground, a bundle: run returns with the whole log written.
    let log2 = tmp.path().join("b1");
    let uri2 = format!("binary://{logger}?file={}", log2.display());
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do echo line$i; i=$((i+1)); done; echo bye >&2",
    ]);
    b.write();
    let id2 = unique_id("logb");
    h.ok(&["run", "--bundle", b.path().to_str().unwrap(), "--log-uri", &uri2, &id2]);
    let out = std::fs::read_to_string(format!("{}.out", log2.display())).unwrap();
    assert_eq!(out.lines().count(), 200, "{out}");
    assert!(out.ends_with("line199\n"));
    assert_eq!(
        std::fs::read_to_string(format!("{}.err", log2.display())).unwrap(),
        "bye\n"
    );
    // ... and the logger has ended on its EOF (it runs with no signal blocked, so its shell
    // reaps its children).
    assert!(
        hezi_e2e::process_with_cmdline(&log2.display().to_string()).is_none(),
        "the logger outlived run"
    );
    assert!(std::fs::read_to_string(format!("{}.env", log2.display()))
        .unwrap()
        .contains("CONTAINER_NAMESPACE=default\n"));
    let _ = &mut b;

    // Loggers that fail: named, non-zero, nothing left.
    let dies = script(tmp.path(), "dies.sh", "#!/bin/sh\nexit 3\n");
    let silent = script(tmp.path(), "silent.sh", "#!/bin/sh\nwhile :; do /bin/sleep 1; done\n");
    let plain = tmp.path().join("plain.sh");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let missing = tmp.path().join("missing");
    for (target, why) in [
        (
            missing.display().to_string(),
            "could not be started: No such file or directory",
        ),
        (plain.display().to_string(), "could not be started: Permission denied"),
        (dies.clone(), "exited (exit status: 3) before the container started"),
        (
            silent.clone(),
            "did not say it was ready (by closing or writing its fd 5) within 10 s",
        ),
    ] {
        let id = unique_id("logbad");
        let uri = format!("binary://{target}");
        let e = fails(
            &h,
            &[
                "-n",
                "team-a",
                "run",
                "-d",
                "--image",
                DEMO,
                "--log-uri",
                &uri,
                &id,
                "--",
                "true",
            ],
        );
        assert!(
            e.contains(&format!("--log-uri {uri:?}: the logger {target} {why}")),
            "{e}"
        );
        assert_eq!(h.ok(&["-n", "team-a", "list", "-q"]), "");
        assert_bundle_gone_of(&h, &id);
        assert!(
            hezi_e2e::process_with_cmdline(&silent).is_none(),
            "a logger was left running"
        );
    }
    for (uri, why) in [
        ("binary://relative/log", "needs the logging program's absolute path"),
        ("binary:///x?a=%zz", "bad escape"),
    ] {
        let e = fails(
            &h,
            &["run", "-d", "--image", DEMO, "--log-uri", uri, "x1", "--", "true"],
        );
        assert!(e.contains(why), "{e}");
    }
}

/// `image pull` on a terminal draws ctr's board: the reference resolving then resolved, each
/// blob downloading with its bytes and rate, then done, and the elapsed time and total; off a
/// terminal it writes nothing but its result line.
#[test]
fn pull_progress_as_ctr_draws_it() {
    require!();
    if !tools(&["script"]) {
        return;
    }
    let (reg, name) = slow_big_image();
    let h = Hezi::new();
    let io = TempDir::new("progress");
    let typescript = io.path().join("typescript");
    // util-linux's script gives hezi a pty for stdin, stdout and stderr.
    let cmd = format!(
        "{} --root {} image pull --plain-http {name}",
        hezi_e2e::hezi_bin().display(),
        h.root().display()
    );
    let o = std::process::Command::new("script")
        .args(["-qefc", &cmd, typescript.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script");
    assert!(o.status.success(), "{}", text(&o));
    let drawn = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    for want in [
        format!("{name}: resolving"),
        format!("{name}:"),
        "resolved".to_string(),
        "layer-sha256:".to_string(),
        "config-sha256:".to_string(),
        "downloading |+".to_string(),
        " MiB / 12.0 MiB  ".to_string(),
        "done        |++++++++++++++++++++|  12.0 MiB  ".to_string(),
        "elapsed: ".to_string(),
        "total: 12.".to_string(),
        "\x1b[2K".to_string(),
    ] {
        assert!(drawn.contains(&want), "{want:?} not drawn: {drawn}");
    }
    // A rate on the downloading lines: "... / 12.0 MiB  N.N KiB/s" or MiB/s.
    assert!(
        drawn.lines().any(|l| l.contains("downloading") && l.ends_with("/s")),
        "no rate: {drawn}"
    );
    h.ok(&["image", "rm", &name]);
    reg.slow.store(false, std::sync::atomic::Ordering::Relaxed);
    let o = h.cmd(&["image", "pull", "--plain-http", &name]);
    assert!(o.status.success() && o.stderr.is_empty(), "{}", text(&o));
}
