//! An unprivileged user for the rootless tests, and commands run as that user.
//!
//! The user is `hezi-rootless`, with a range in /etc/subuid and /etc/subgid (useradd gives
//! Debian users one). scripts/install-deps.sh makes it for CI; elsewhere the first test that
//! needs it runs the same useradd. It is kept afterwards: a fixed user cannot be removed under
//! tests that run in parallel in other test binaries, and its leftovers are nothing but the
//! account and its home.
//!
//! Commands run through `setpriv` (util-linux) with the user's uid and gid, no supplementary
//! groups, and the environment a login would give (HOME, USER, PATH, and XDG_RUNTIME_DIR set
//! to a private directory the user owns, as pam_systemd would).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{hezi_bin, next_number, TempDir};

pub const USER: &str = "hezi-rootless";

/// The test user's ids.
#[derive(Clone, Debug)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// The test user (made if missing), or None after saying why (a panic under CI).
pub fn user() -> Option<User> {
    if !crate::prerequisites()
        || !crate::containerd::prerequisites_with(&[("setpriv", "util-linux"), ("useradd", "passwd")])
    {
        return None;
    }
    static USER_OF_RUN: OnceLock<Result<User, String>> = OnceLock::new();
    match USER_OF_RUN.get_or_init(lookup_or_make) {
        Ok(u) => Some(u.clone()),
        Err(e) => panic!("test user {USER}: {e}"),
    }
}

fn lookup_or_make() -> Result<User, String> {
    if let Some(u) = lookup() {
        return Ok(u);
    }
    // -m: podman needs a home for its storage and configuration. A concurrent useradd from
    // another test binary may win: then ours fails and the lookup finds theirs.
    let out = Command::new("useradd")
        .args(["-m", "-s", "/bin/sh", USER])
        .output()
        .map_err(|e| format!("run useradd: {e}"))?;
    lookup().ok_or_else(|| format!("useradd failed: {}", String::from_utf8_lossy(&out.stderr)))
}

fn lookup() -> Option<User> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 6 || f[0] != USER {
            return None;
        }
        Some(User {
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: PathBuf::from(f[5]),
        })
    })
}

impl User {
    /// A directory the user owns (mode 0700), removed on drop.
    pub fn dir(&self, prefix: &str) -> TempDir {
        let d = TempDir::new(prefix);
        std::os::unix::fs::chown(d.path(), Some(self.uid), Some(self.gid)).expect("chown test dir to the test user");
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod test dir");
        d
    }

    /// `program args...` as the user, with `runtime_dir` as XDG_RUNTIME_DIR.
    pub fn command(&self, runtime_dir: &Path, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &self.uid.to_string(),
            "--regid",
            &self.gid.to_string(),
            "--clear-groups",
            "--",
        ])
        .arg(program)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", &self.home)
        .env("USER", USER)
        .env("LOGNAME", USER)
        .env("XDG_RUNTIME_DIR", runtime_dir)
        .current_dir("/");
        c
    }

    /// [`User::command`], after moving itself into the cgroup v2 directory `cgroup` (as root,
    /// before dropping to the user): a process may only move processes within a subtree whose
    /// common ancestor's cgroup.procs it may write, as a delegated user's session does.
    pub fn command_in_cgroup(&self, cgroup: &Path, runtime_dir: &Path, program: &Path, args: &[&str]) -> Command {
        let inner = self.command(runtime_dir, program, args);
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg("echo $$ > \"$1\" && shift && exec \"$@\"")
            .arg("sh")
            .arg(cgroup.join("cgroup.procs"))
            .arg(inner.get_program())
            .args(inner.get_args())
            .env_clear()
            .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .current_dir("/");
        c
    }
}

/// The hezi binary where the user may run it: itself when every directory above it is open to
/// others, else a copy in `<temp>/hezi-rootless-bin` (a checkout under /root is not). The copy
/// is renamed into place, so test binaries running at once never see half of one.
pub fn user_hezi_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = hezi_bin();
        let open = bin
            .ancestors()
            .skip(1)
            .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
        if open {
            return bin;
        }
        let dir = std::env::temp_dir().join("hezi-rootless-bin");
        std::fs::create_dir_all(&dir).expect("mkdir for the hezi copy");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod the hezi copy's dir");
        let tmp = dir.join(format!("hezi.{}", std::process::id()));
        std::fs::copy(&bin, &tmp).expect("copy hezi");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).expect("chmod the hezi copy");
        let dest = dir.join("hezi");
        std::fs::rename(&tmp, &dest).expect("rename the hezi copy");
        dest
    })
    .clone()
}

/// `hezi` as the test user, with the default `--root` ($XDG_RUNTIME_DIR/hezi).
pub struct UserHezi {
    pub user: User,
    /// XDG_RUNTIME_DIR.
    pub runtime_dir: TempDir,
    /// Where each command's output goes (files, as in [`crate::Hezi::cmd`]).
    io: TempDir,
    /// Run every command from this cgroup v2 directory (see [`User::command_in_cgroup`]).
    pub cgroup: Option<PathBuf>,
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl UserHezi {
    pub fn new(user: &User) -> UserHezi {
        UserHezi {
            user: user.clone(),
            runtime_dir: user.dir("xdg"),
            io: TempDir::new("rootless-io"),
            cgroup: None,
        }
    }

    /// The state root hezi should pick by itself.
    pub fn root(&self) -> PathBuf {
        self.runtime_dir.path().join("hezi")
    }

    /// `program args` as the user; output collected from files.
    pub fn run_program(&self, program: &Path, args: &[&str]) -> Out {
        let mut c = match &self.cgroup {
            Some(cg) => self.user.command_in_cgroup(cg, self.runtime_dir.path(), program, args),
            None => self.user.command(self.runtime_dir.path(), program, args),
        };
        let n = next_number();
        let (o, e) = (
            self.io.path().join(format!("{n}.out")),
            self.io.path().join(format!("{n}.err")),
        );
        let status = c
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&o).expect("create stdout file"))
            .stderr(std::fs::File::create(&e).expect("create stderr file"))
            .status()
            .expect("spawn setpriv");
        Out {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&o).unwrap_or_default(),
            stderr: std::fs::read_to_string(&e).unwrap_or_default(),
        }
    }

    /// `hezi args` as the user.
    pub fn cmd(&self, args: &[&str]) -> Out {
        self.run_program(&user_hezi_bin(), args)
    }

    /// `hezi args` that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert_eq!(out.code, 0, "hezi {args:?} as {USER}: {out:?}");
        out.stdout
    }
}

impl Drop for UserHezi {
    fn drop(&mut self) {
        let root = self.root();
        if let Ok(out) = Command::new(hezi_bin())
            .arg("--root")
            .arg(&root)
            .args(["list", "-q"])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = Command::new(hezi_bin())
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "--force", id])
                    .output();
            }
        }
    }
}
