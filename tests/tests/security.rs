//! Container escapes that hit runc, each replayed against hezi with a hostile rootfs or spec:
//! CVE-2019-5736 (/proc/PID/exe of the runtime), CVE-2024-21626 (leaked fds, host cwd),
//! CVE-2025-31133/52565/52881 (masked paths, /dev/console, /proc writes redirected), symlink
//! races on mount destinations; and the process's capability sets after the uid change.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hezi_e2e::{assert_nothing_left, hezi_bin, mounts_under, require, unique_id, Bundle, Hezi, TempDir};
use serde_json::json;

/// A private copy of the hezi binary with its own state root, for tests whose attack, if it
/// worked, would overwrite the binary: the shared target/*/hezi must never be the victim.
struct OwnHezi {
    dir: TempDir,
    root: TempDir,
}

impl OwnHezi {
    fn new() -> OwnHezi {
        let dir = TempDir::new("ownhezi");
        std::fs::copy(hezi_bin(), dir.path().join("hezi")).expect("copy hezi");
        OwnHezi {
            dir,
            root: TempDir::new("ownroot"),
        }
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("hezi")
    }

    /// Run the copy with our root; output through files (a container inherits them).
    fn cmd(&self, args: &[&str]) -> Output {
        let n = unique_id("io");
        let (o, e) = (
            self.dir.path().join(format!("{n}.out")),
            self.dir.path().join(format!("{n}.err")),
        );
        let status = Command::new(self.bin())
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .expect("spawn the hezi copy (ETXTBSY/ENOEXEC: a container is writing or wrote it)");
        Output {
            status,
            stdout: std::fs::read(&o).unwrap_or_default(),
            stderr: std::fs::read(&e).unwrap_or_default(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "hezi {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The copy is still byte for byte the binary it was copied from.
    fn assert_intact(&self) {
        let now = std::fs::read(self.bin()).expect("read hezi copy");
        let orig = std::fs::read(hezi_bin()).expect("read hezi");
        assert!(now == orig, "the hezi binary was overwritten from inside a container");
    }
}

impl Drop for OwnHezi {
    /// Cleans up with the real binary: the copy may be the one an attack destroyed.
    fn drop(&mut self) {
        if let Ok(out) = Command::new(hezi_bin())
            .arg("--root")
            .arg(self.root.path())
            .args(["list", "-q"])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = Command::new(hezi_bin())
                    .arg("--root")
                    .arg(self.root.path())
                    .args(["delete", "-f", id])
                    .output();
            }
        }
    }
}

/// Wait up to `secs` for `path` to hold a line for which `done` is true; returns the text.
fn wait_for(path: &Path, secs: u64, done: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().any(&done) || Instant::now() > end {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Holds the fd it gets on `$1` (an exe link) and keeps trying to write the file through
/// /proc/self/fd, so that the write lands as soon as no process executes it any more: what the
/// CVE-2019-5736 exploit does. Reports to /tmp/report: `denied`, `opened`, then `WROTE`/`gave-up`.
const OVERWRITE: &str = r#"
f=$1
if ! <"$f"; then echo denied >> /tmp/report; exit 0; fi 2>/dev/null
exec 3<"$f" || { echo vanished >> /tmp/report; exit 0; }
case "$(readlink /proc/self/fd/3)" in *hezi*) ;; *) exit 0;; esac
echo "opened $f $(readlink /proc/self/fd/3)" >> /tmp/report
i=0
while [ $i -lt 200 ]; do
  if (echo pwned > /proc/self/fd/3) 2>/dev/null; then echo WROTE >> /tmp/report; exit 0; fi
  sleep 0.05; i=$((i+1))
done
echo gave-up >> /tmp/report
"#;

/// CVE-2019-5736 through the init: between `create` and `start` the init is still the hezi
/// binary, pid 1 of the container, and `hezi exec` may run processes beside it. One of them opens
/// /proc/1/exe and, once nothing runs hezi any more, writes through it. The init is non-dumpable,
/// so the open is refused.
#[test]
fn cve_2019_5736_init_exe_cannot_be_opened_from_the_container() {
    require!();
    let h = OwnHezi::new();
    let mut b = Bundle::busybox(&["sleep", "1301"]);
    b.config["root"]["readonly"] = json!(false);
    std::fs::write(b.rootfs().join("bin/overwrite"), OVERWRITE).unwrap();
    b.write();
    let id = unique_id("cve5736");
    h.ok(&["create", "-b", b.path().to_str().unwrap(), &id]);
    h.ok(&["exec", "-d", &id, "sh", "/bin/overwrite", "/proc/1/exe"]);
    let report = b.rootfs().join("tmp/report");
    let first = wait_for(&report, 10, |l| l == "denied" || l.starts_with("opened"));
    // Let the init exec the program: from now on no process executes the binary.
    h.ok(&["start", &id]);
    let text = if first.contains("opened") {
        wait_for(&report, 15, |l| l == "WROTE" || l == "gave-up")
    } else {
        first
    };
    h.assert_intact();
    assert_eq!(text.trim(), "denied", "the container reached the hezi binary: {text}");
    h.ok(&["delete", "-f", &id]);
}

/// The same through `hezi exec`: its child is the hezi binary from the moment it joins the
/// container until its execve. A process in the container scans /proc for it while many execs
/// run; each exec child is non-dumpable, so none is ever opened.
#[test]
fn cve_2019_5736_exec_child_exe_cannot_be_opened_from_the_container() {
    require!();
    let h = OwnHezi::new();
    // Scan every pid but its own and pid 1; check each new one in a background subshell that
    // keeps the fd (OVERWRITE), remembering pids already tried.
    let scan = r#"
seen=" 1 $$ "
while :; do
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    case "$seen" in *" $p "*) continue;; esac
    seen="$seen$p "
    if <"$d/exe"; then sh /bin/overwrite "$d/exe" & seen="$seen$! "; fi 2>/dev/null
  done
done
"#;
    let mut b = Bundle::busybox(&["sh", "-c", scan]);
    b.config["root"]["readonly"] = json!(false);
    std::fs::write(b.rootfs().join("bin/overwrite"), OVERWRITE).unwrap();
    b.write();
    let id = unique_id("cve5736x");
    h.ok(&["run", "-d", "-b", b.path().to_str().unwrap(), &id]);
    // A long PATH makes each exec child search a while before its execve: a wide window.
    let path: String = (0..12_000).map(|i| format!("/n{i}:")).collect::<String>() + "/bin";
    let env = format!("PATH={path}");
    for _ in 0..40 {
        h.ok(&["exec", "-e", &env, &id, "true"]);
    }
    let report = b.rootfs().join("tmp/report");
    let mut text = std::fs::read_to_string(&report).unwrap_or_default();
    if text.contains("opened") {
        text = wait_for(&report, 15, |l| l == "WROTE" || l == "gave-up");
    }
    h.ok(&["delete", "-f", &id]);
    h.assert_intact();
    assert!(
        !text.contains("opened"),
        "the container reached the hezi binary: {text}"
    );
}
