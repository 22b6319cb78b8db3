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

/// The `Cap*` lines of /proc/self/status as (name, mask).
fn cap_masks(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.starts_with("Cap")
                .then(|| (k.to_string(), u64::from_str_radix(v.trim(), 16).unwrap_or(u64::MAX)))
        })
        .collect()
}

const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
const CAP_SYS_CHROOT: u64 = 1 << 18;

/// A non-root user keeps exactly the capabilities the spec gives it in all five sets: they
/// survive the setuid (PR_SET_KEEPCAPS) and the execve (ambient).
#[test]
fn non_root_user_gets_the_spec_capabilities_in_all_five_sets() {
    require!();
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", "grep ^Cap /proc/self/status; id -u; id -g; id -G"]);
    b.config["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [1001, 1002] });
    let one = json!(["CAP_NET_BIND_SERVICE"]);
    b.config["process"]["capabilities"] = json!({ "bounding": one, "effective": one, "permitted": one,
                                                  "inheritable": one, "ambient": one });
    let out = h.run_ok(&b, &unique_id("caps"));
    let masks = cap_masks(&out);
    let names: Vec<&str> = masks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"], "{out}");
    for (name, mask) in &masks {
        assert_eq!(*mask, CAP_NET_BIND_SERVICE, "{name}: {out}");
    }
    let ids: Vec<&str> = out.lines().skip(5).collect();
    assert_eq!(ids, ["1000", "1000", "1000 1001 1002"], "{out}");
}

const CAP_SYS_TIME: u64 = 1 << 25;

/// config.md: runtimes SHOULD NOT fail for capabilities that cannot be granted, "for example,
/// if the runtime operates in a restricted environment with a limited set of capabilities".
/// hezi runs under `setpriv` without CAP_SYS_TIME (a nested runtime, or a host whose root lacks
/// one, as this VM's lacks CAP_SYS_RESOURCE); a privileged-style spec asking for it in every set
/// runs, with a warning naming it, and the process holds the rest.
#[test]
fn capabilities_the_runtime_lacks_are_left_out_with_a_warning() {
    require!();
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("SKIP: no setpriv (util-linux)");
        return;
    }
    let h = Hezi::new();
    let mut b = Bundle::busybox(&["sh", "-c", "grep ^Cap /proc/self/status"]);
    let asked = json!(["CAP_KILL", "CAP_SYS_TIME", "CAP_NET_BIND_SERVICE"]);
    b.config["process"]["capabilities"] = json!({ "bounding": asked, "effective": asked,
                                                  "permitted": asked, "inheritable": asked, "ambient": asked });
    b.write();
    let id = unique_id("capslack");
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-sys_time", "--inh-caps", "-all", "--"])
        .arg(hezi_bin())
        .arg("--root")
        .arg(h.root())
        .args(["run", "--bundle", b.path().to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .output()
        .expect("spawn setpriv");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("CAP_SYS_TIME cannot be granted"),
        "no warning: {stderr}"
    );
    let want = (1 << 5) | CAP_NET_BIND_SERVICE; // CAP_KILL, CAP_NET_BIND_SERVICE
    for (name, mask) in cap_masks(&stdout) {
        assert_eq!(mask & CAP_SYS_TIME, 0, "{name} holds CAP_SYS_TIME: {stdout}");
        if name != "CapBnd" {
            assert_eq!(mask, want, "{name}: {stdout}");
        }
    }
    assert_nothing_left(&h, &id, &b, None);
}

/// A capability left out of the bounding set is gone for good: listing it in the other sets
/// does not bring it back across the execve, and what needs it fails.
#[test]
fn root_cannot_regain_a_capability_dropped_from_the_bounding_set() {
    require!();
    let h = Hezi::new();
    for (bounded, want_chroot) in [(false, false), (true, true)] {
        let mut b = Bundle::busybox(&[
            "sh",
            "-c",
            "grep ^Cap /proc/self/status; chroot / true 2>/dev/null && echo chroot-ok || echo chroot-denied",
        ]);
        let mut bounding = vec!["CAP_AUDIT_WRITE", "CAP_KILL"];
        if bounded {
            bounding.push("CAP_SYS_CHROOT");
        }
        let all = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_SYS_CHROOT"]);
        b.config["process"]["capabilities"] = json!({ "bounding": bounding, "effective": all,
                                                      "permitted": all, "inheritable": [] });
        let out = h.run_ok(&b, &unique_id("bnd"));
        for (name, mask) in cap_masks(&out) {
            if name == "CapInh" || name == "CapAmb" {
                continue;
            }
            assert_eq!(
                mask & CAP_SYS_CHROOT != 0,
                want_chroot,
                "{name} (bounding has it: {bounded}): {out}"
            );
        }
        let verdict = if want_chroot { "chroot-ok" } else { "chroot-denied" };
        assert!(out.ends_with(&format!("{verdict}\n")), "{out}");
    }
}

/// CVE-2024-21626: a cwd through one of the runtime's own fds would leave the process in a host
/// directory. For each such fd number the container either fails or starts inside its root.
#[test]
fn cve_2024_21626_cwd_through_a_leaked_fd_never_lands_outside() {
    require!();
    let h = Hezi::new();
    for n in 3..=9 {
        let mut b = Bundle::busybox(&["sh", "-c", "pwd -P; ls"]);
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        let id = unique_id("cwdfd");
        let (code, out, err) = h.run(&b, &id);
        assert!(
            !out.contains("unreachable"),
            "fd {n}: the cwd is outside the container: {out}"
        );
        if code == 0 {
            assert!(out.starts_with('/'), "fd {n}: {out}");
        } else {
            assert!(err.contains("cwd"), "fd {n}: the error names the cwd: {err}");
        }
        assert_nothing_left(&h, &id, &b, None);
    }
}

/// Open fds of the process in the container, from `ls -l /proc/self/fd` (ls's own directory fd
/// left out): `(fd, target)`.
fn open_fds(ls: &str) -> Vec<(u32, String)> {
    ls.lines()
        .filter_map(|l| {
            let (name, target) = l.split_once(" -> ")?;
            let fd = name.rsplit(' ').next()?.parse().ok()?;
            (!(target.starts_with("/proc/") && target.ends_with("/fd"))).then(|| (fd, target.to_string()))
        })
        .collect()
}

/// CVE-2024-21626: nothing hezi or its caller had open reaches the container, except what
/// --preserve-fds passes on; the same for `hezi exec`, and its --cwd through an fd.
#[test]
fn cve_2024_21626_only_stdio_and_preserved_fds_reach_the_container() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sh", "-c", "ls -l /proc/self/fd; sleep 1303"]);
    b.write();
    let id = unique_id("fds");
    // fd 3 (a host file) passed on with --preserve-fds 1; fds 4 and 5 (a host directory and
    // file) held by hezi's caller must not be.
    let script = format!(
        "exec 3</etc/hostname 4</ 5</etc/passwd; exec {} --root {} run -d --preserve-fds 1 -b {} {id} >{}/out 2>&1",
        hezi_bin().display(),
        h.root().display(),
        b.path().display(),
        b.path().display()
    );
    let status = Command::new("sh").args(["-c", &script]).status().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(b.path().join("out")).unwrap_or_default()
    );
    let out = wait_for(&b.path().join("out"), 10, |l| l.contains(" 3 -> "));
    let fds: Vec<u32> = open_fds(&out).iter().map(|(fd, _)| *fd).collect();
    assert_eq!(fds, [0, 1, 2, 3], "{out}");
    assert!(out.contains(" 3 -> /etc/hostname"), "{out}");

    let exec = h.ok(&["exec", &id, "ls", "-l", "/proc/self/fd"]);
    let fds: Vec<u32> = open_fds(&exec).iter().map(|(fd, _)| *fd).collect();
    assert_eq!(fds, [0, 1, 2], "exec: {exec}");
    for n in 3..=9 {
        let fd = format!("/proc/self/fd/{n}");
        let out = h.cmd(&["exec", "--cwd", &fd, &id, "pwd", "-P"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains("unreachable"),
            "exec --cwd {fd}: outside the container: {text}"
        );
        assert!(out.status.success() || String::from_utf8_lossy(&out.stderr).contains("cwd"));
    }
    h.ok(&["delete", "-f", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 1303"));
}

/// Replace the spec's /dev tmpfs with a bind of `dev` (a directory the test fills): the way an
/// image gets to choose what /dev/null and /dev/console are.
fn bind_dev(b: &mut Bundle, dev: &Path) {
    for d in ["pts", "shm", "mqueue"] {
        std::fs::create_dir_all(dev.join(d)).unwrap();
    }
    symlink("pts/ptmx", dev.join("ptmx")).unwrap();
    let null = std::ffi::CString::new(dev.join("null").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; makes the 1:3 character device there.
    let r = unsafe { libc::mknod(null.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    assert_eq!(r, 0, "mknod {}", dev.join("null").display());
    for m in b.config["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            *m = json!({ "destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"] });
        }
    }
}

fn core_pattern() -> String {
    std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap()
}

/// CVE-2025-31133: masking binds /dev/null over each masked path. An image whose /dev/null is a
/// symlink to a /proc file (or any other file) would have that bound there instead, writable;
/// hezi checks by fd that it binds the 1:3 character device and refuses otherwise.
#[test]
fn cve_2025_31133_a_fake_dev_null_is_refused() {
    require!();
    let h = Hezi::new();
    let before = core_pattern();
    for fake in ["symlink", "file"] {
        let mut b = Bundle::busybox(&["sh", "-c", "echo '|/tmp/pwn' > /proc/kcore; cat /proc/kcore"]);
        let dev = b.path().join("evildev");
        bind_dev(&mut b, &dev);
        std::fs::remove_file(dev.join("null")).unwrap();
        match fake {
            "symlink" => symlink("/proc/sys/kernel/core_pattern", dev.join("null")).unwrap(),
            _ => std::fs::write(dev.join("null"), "not a device").unwrap(),
        }
        let id = unique_id("fakenull");
        let (code, out, err) = h.run(&b, &id);
        assert_ne!(code, 0, "{fake} /dev/null accepted: {out}");
        assert!(
            err.contains("/dev/null") && err.contains("not the null device"),
            "{fake}: {err}"
        );
        assert_eq!(core_pattern(), before);
        assert_nothing_left(&h, &id, &b, None);
    }
}

/// CVE-2025-31133, the other end: a masked path that the image made a symlink (here to a file
/// holding a secret) stays masked, and the mount never follows the link out of the rootfs.
#[test]
fn masked_path_swapped_for_a_symlink_stays_masked() {
    require!();
    let h = Hezi::new();
    let outside = TempDir::new("secret");
    std::fs::write(outside.path().join("key"), "host-secret").unwrap();
    let mut b = Bundle::busybox(&["sh", "-c", "cat /etc/key /etc/abs 2>&1; echo; cat /etc/real-key"]);
    std::fs::write(b.rootfs().join("etc/real-key"), "image-secret").unwrap();
    symlink("real-key", b.rootfs().join("etc/key")).unwrap();
    symlink(outside.path().join("key"), b.rootfs().join("etc/abs")).unwrap();
    let masked = b.linux()["maskedPaths"].as_array_mut().unwrap();
    masked.push(json!("/etc/key"));
    masked.push(json!("/etc/abs"));
    let id = unique_id("masklink");
    let (code, out, err) = h.run(&b, &id);
    assert_eq!(code, 0, "{err}");
    // Both names read as /dev/null; the file the relative link named keeps its own name.
    assert_eq!(out, "\nimage-secret", "{err}");
    assert_eq!(
        std::fs::read_to_string(outside.path().join("key")).unwrap(),
        "host-secret"
    );
    assert_nothing_left(&h, &id, &b, None);
}

/// CVE-2025-52565: the pty is bound on /dev/console before the masks and read-only paths exist.
/// An image whose /dev/console is a symlink to a /proc file would get the bind there; hezi refuses
/// anything but a regular file or character device (a plain file, as some images ship, is fine).
#[test]
fn cve_2025_52565_dev_console_swapped_for_a_symlink_is_refused() {
    require!();
    let h = Hezi::new();
    let before = core_pattern();
    let sockdir = TempDir::new("console");
    let sock = sockdir.path().join("sock");
    // Never accepted: the connection waits in the backlog and the master is queued on it.
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    for fake in ["symlink", "directory", "file"] {
        let mut b = Bundle::busybox(&["sleep", "1304"]);
        b.config["process"]["terminal"] = json!(true);
        let dev = b.path().join("evildev");
        bind_dev(&mut b, &dev);
        match fake {
            "symlink" => symlink("/proc/sys/kernel/core_pattern", dev.join("console")).unwrap(),
            "directory" => std::fs::create_dir(dev.join("console")).unwrap(),
            _ => std::fs::write(dev.join("console"), "").unwrap(),
        }
        b.write();
        let id = unique_id("console");
        let out = h.cmd(&[
            "create",
            "--console-socket",
            sock.to_str().unwrap(),
            "-b",
            b.path().to_str().unwrap(),
            &id,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        if fake == "file" {
            assert!(out.status.success(), "a plain /dev/console file is fine: {err}");
            h.ok(&["delete", "-f", &id]);
        } else {
            assert!(!out.status.success(), "{fake} /dev/console accepted");
            assert!(err.contains("/dev/console"), "{fake}: {err}");
        }
        assert_eq!(core_pattern(), before);
        assert_nothing_left(&h, &id, &b, Some("sleep 1304"));
    }
}

/// CVE-2025-52881: sysctls are written under /proc. A spec that mounts a host file over the
/// sysctl's file, or a directory with a symlink in its place, would redirect the write to the
/// host; hezi writes only to procfs, resolving without symlinks or mount crossings.
#[test]
fn cve_2025_52881_sysctl_writes_cannot_be_redirected() {
    require!();
    let h = Hezi::new();
    let host = TempDir::new("redirect");
    let victim = host.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let dir = host.path().join("kernel");
    std::fs::create_dir(&dir).unwrap();
    symlink(&victim, dir.join("domainname")).unwrap();
    let tmpfs = json!({ "destination": "/proc/sys/kernel", "type": "tmpfs", "source": "tmpfs" });
    for (how, mount) in [
        (
            "file",
            json!({ "destination": "/proc/sys/kernel/domainname", "type": "bind",
                         "source": victim, "options": ["bind"] }),
        ),
        (
            "symlink",
            json!({ "destination": "/proc/sys/kernel", "type": "bind",
                            "source": dir, "options": ["bind"] }),
        ),
        ("tmpfs", tmpfs),
    ] {
        let mut b = Bundle::busybox(&["true"]);
        b.config["mounts"].as_array_mut().unwrap().push(mount);
        b.linux()["sysctl"] = json!({ "kernel.domainname": "pwned" });
        let id = unique_id("sysctl");
        let (code, _, err) = h.run(&b, &id);
        assert_ne!(code, 0, "{how}: sysctl written through a redirect");
        assert!(err.contains("/proc/sys/kernel/domainname"), "{how}: {err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched", "{how}");
        assert_nothing_left(&h, &id, &b, None);
    }
    // A directory of a procfs over /proc is procfs too, but not its root: refused before any
    // write, with the check LSM attributes get (procfs::checked_root).
    let mut b = Bundle::busybox(&["true"]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "destination": "/proc", "type": "bind", "source": "/proc/sys", "options": ["rbind"] }));
    b.linux()["sysctl"] = json!({ "kernel.domainname": "pwned" });
    let id = unique_id("sysctl");
    let (code, _, err) = h.run(&b, &id);
    assert_ne!(code, 0, "sysctl written below a procfs subdirectory");
    assert!(err.contains("not the root of a procfs"), "{err}");
    assert_nothing_left(&h, &id, &b, None);
    // The same sysctl on a plain /proc works.
    let mut b = Bundle::busybox(&["cat", "/proc/sys/kernel/domainname"]);
    b.linux()["sysctl"] = json!({ "kernel.domainname": "fine" });
    assert_eq!(h.run_ok(&b, &unique_id("sysctl")), "fine\n");
}

/// A background thread swaps a rootfs directory with a symlink to a host directory, over and
/// over, while hezi mounts a tmpfs below it: resolution stays inside the rootfs and mounts go
/// through the resolved fd, so the host directory never receives anything.
#[test]
fn symlink_exchange_race_on_a_mount_destination_never_reaches_the_host() {
    require!();
    let h = Hezi::new();
    let outside = TempDir::new("raceout");
    let mut b = Bundle::busybox(&["true"]);
    let flip = b.rootfs().join("flip");
    let link = b.rootfs().join("fliplink");
    std::fs::create_dir(&flip).unwrap();
    symlink(outside.path(), &link).unwrap();
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "destination": "/flip/x", "type": "tmpfs", "source": "tmpfs" }));
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = stop.clone();
        let (a, c) = (
            std::ffi::CString::new(flip.to_str().unwrap()).unwrap(),
            std::ffi::CString::new(link.to_str().unwrap()).unwrap(),
        );
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: two valid NUL-terminated paths; RENAME_EXCHANGE swaps them atomically.
                let r = unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        c.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                swaps += (r == 0) as u64;
            }
            swaps
        })
    };
    let mut ran = 0;
    for _ in 0..60 {
        let id = unique_id("race");
        // Some runs fail (the name is a symlink to a directory missing in the rootfs, which is
        // then made inside it); none may touch the host.
        if h.run(&b, &id).0 == 0 {
            ran += 1;
        }
        let escaped: Vec<_> = std::fs::read_dir(outside.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            escaped.is_empty(),
            "the mount destination escaped to the host: {escaped:?}"
        );
        assert!(mounts_under(outside.path()).is_empty());
        assert_nothing_left(&h, &id, &b, None);
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = flipper.join().unwrap();
    eprintln!("{swaps} swaps, {ran} of 60 containers ran");
    assert!(swaps > 1000, "the race ran ({swaps} swaps, {ran} containers ran)");
}

fn host_has_apparmor() -> bool {
    std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y"))
}

fn host_has_selinux() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// AppArmor and SELinux settings on a host without the module: a clear error naming the
/// setting, from `create` and `exec`, with nothing left behind. Where the host has AppArmor,
/// the profile is applied ("unconfined" works anywhere).
#[test]
fn lsm_settings_apply_or_fail_clearly() {
    require!();
    let h = Hezi::new();
    let mut cases = Vec::new();
    if !host_has_apparmor() {
        cases.push(("process", "apparmorProfile", "hezi-profile", "AppArmor is not enabled"));
    }
    if !host_has_selinux() {
        let label = "system_u:system_r:container_t:s0:c1,c2";
        cases.push(("process", "selinuxLabel", label, "selinux is disabled or not supported"));
        cases.push(("linux", "mountLabel", label, "linux.mountLabel"));
    }
    for (section, key, value, want) in cases {
        let mut b = Bundle::busybox(&["sleep", "1305"]);
        b.config[section][key] = json!(value);
        let id = unique_id("lsm");
        let (code, _, err) = h.run(&b, &id);
        assert_ne!(code, 0, "{key} accepted");
        assert!(err.contains(want), "{key}: {err}");
        assert_nothing_left(&h, &id, &b, Some("sleep 1305"));
    }
    // "unconfined" asks for nothing, with or without AppArmor.
    let mut b = Bundle::busybox(&["sh", "-c", "cat /proc/self/attr/current 2>/dev/null; echo; echo ran"]);
    b.config["process"]["apparmorProfile"] = json!("unconfined");
    let out = h.run_ok(&b, &unique_id("lsm"));
    assert!(out.ends_with("ran\n"), "{out}");
    if host_has_apparmor() {
        assert!(out.starts_with("unconfined"), "{out}");
    }
    // exec with a process that asks for a profile the host cannot give.
    if !host_has_apparmor() {
        let b = Bundle::busybox(&["sleep", "1306"]);
        let id = unique_id("lsmexec");
        h.create(&b, &id);
        let p = b.path().join("process.json");
        let process = json!({ "args": ["true"], "cwd": "/", "user": { "uid": 0, "gid": 0 },
                              "apparmorProfile": "hezi-profile" });
        std::fs::write(&p, process.to_string()).unwrap();
        let out = h.cmd(&["exec", "-p", p.to_str().unwrap(), &id]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("AppArmor is not enabled"));
        h.ok(&["delete", "-f", &id]);
    }
}
