//! ctr's `--null-io` and `--log-uri file:///PATH` or `binary:///PATH?K=V` for `run` and
//! `create`: where the container's stdio goes. The init inherits hezi's fds 0-2 when `create`
//! clones it, so hezi points its own there for the create and takes them back right after; a
//! log file gets stdout and stderr appended, a logging program (super::logger) gets them through
//! pipes, and stdin is /dev/null (as containerd's log IO has it).

use std::fs::OpenOptions;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::fcntl::{fcntl, FcntlArg};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout};

use super::logger::{self, Binary};
use crate::cli::{self, flag, opt, Flag};
use crate::Failure;

pub const IO_FLAGS: &[Flag] = &[flag(&["null-io"]), opt(&["log-uri"])];

/// Where the container's stdio goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// hezi's own stdio (a terminal, with `-t`).
    Inherit,
    /// /dev/null for all three.
    Null,
    /// stdout and stderr appended to this file, stdin from /dev/null.
    Log(PathBuf),
    /// stdout and stderr to this logging program, stdin from /dev/null.
    Binary(Binary),
}

/// The target `--null-io` / `--log-uri` ask for.
pub fn target(a: &cli::Args) -> Result<Target, Failure> {
    let t = match (a.is_set("null-io"), a.value("log-uri")) {
        (true, Some(_)) => return Err(Failure::Usage("--null-io and --log-uri cannot be used together".into())),
        (true, None) => Target::Null,
        (false, Some(uri)) => log_target(uri)?,
        (false, None) => Target::Inherit,
    };
    if t != Target::Inherit && a.is_set("tty") {
        return Err(Failure::Usage(
            "--tty cannot be used with --null-io or --log-uri (the terminal is the container's stdio)".into(),
        ));
    }
    Ok(t)
}

/// The target of a log URI: `file:///PATH`, or `binary:///PATH?K=V` (a logging program).
fn log_target(uri: &str) -> Result<Target, Failure> {
    let bad = |why: &str| Failure::Usage(format!("--log-uri {uri:?}: {why}"));
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(bad("not a URI (file:///PATH or binary:///PATH)"));
    };
    match scheme {
        "file" => {}
        "binary" => return logger::parse(uri, rest).map(Target::Binary).map_err(Failure::Usage),
        other => {
            return Err(bad(&format!(
                "scheme {other}:// is not supported; use file:///PATH or binary:///PATH"
            )))
        }
    }
    // file://localhost/PATH names this host too; any other host is not a local file.
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if !path.starts_with('/') {
        return Err(bad("needs an absolute path (file:///PATH)"));
    }
    Ok(Target::Log(PathBuf::from(path)))
}

/// The opened files, ready to be put in place.
pub struct Opened {
    stdin: OwnedFd,
    out: OwnedFd,
    err: OwnedFd,
    /// The logging program reading `out` and `err`, for `binary://`.
    pub logger: Option<std::process::Child>,
}

impl Target {
    /// Open what the container's stdio will be: None to keep hezi's own. A log file is created
    /// (and its directory) if missing, and appended to; a logging program is started for
    /// container `id` of namespace `ns` and is ready when this returns.
    pub fn open(&self, id: &str, ns: &str) -> Result<Option<Opened>, Failure> {
        let null = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|e| Failure::Error(format!("open /dev/null: {e}")))
        };
        match self {
            Target::Inherit => Ok(None),
            Target::Null => Ok(Some(Opened {
                stdin: null()?.into(),
                out: null()?.into(),
                err: null()?.into(),
                logger: None,
            })),
            Target::Log(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| Failure::Error(format!("--log-uri: create {}: {e}", dir.display())))?;
                }
                let out = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o644)
                    .open(path)
                    .map_err(|e| Failure::Error(format!("--log-uri: open {}: {e}", path.display())))?;
                let err = out
                    .try_clone()
                    .map_err(|e| Failure::Error(format!("--log-uri: dup: {e}")))?;
                Ok(Some(Opened {
                    stdin: null()?.into(),
                    out: out.into(),
                    err: err.into(),
                    logger: None,
                }))
            }
            Target::Binary(b) => {
                let stdin = null()?.into();
                let started = b.start(id, ns)?;
                Ok(Some(Opened {
                    stdin,
                    out: started.stdout,
                    err: started.stderr,
                    logger: Some(started.child),
                }))
            }
        }
    }
}

/// hezi's own stdio, put back on drop.
pub struct Redirected {
    saved: [OwnedFd; 3],
}

/// A close-on-exec copy of `fd` (above stdio), so the container never inherits it.
fn save(fd: std::os::fd::BorrowedFd<'_>) -> Result<OwnedFd, Failure> {
    let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(3)).map_err(|e| Failure::Error(format!("save hezi's stdio: {e}")))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

impl Opened {
    /// Point fds 0-2 at the opened files until the returned guard drops.
    pub fn redirect(&self) -> Result<Redirected, Failure> {
        let saved = [
            save(std::io::stdin().as_fd())?,
            save(std::io::stdout().as_fd())?,
            save(std::io::stderr().as_fd())?,
        ];
        let guard = Redirected { saved };
        let err = |e: nix::Error| Failure::Error(format!("point the container's stdio: {e}"));
        dup2_stdin(self.stdin.as_fd()).map_err(err)?;
        dup2_stdout(self.out.as_fd()).map_err(err)?;
        dup2_stderr(self.err.as_fd()).map_err(err)?;
        Ok(guard)
    }
}

impl Drop for Redirected {
    fn drop(&mut self) {
        // Best effort: with a stdio that cannot be put back there is nowhere left to say so.
        let _ = dup2_stdin(self.saved[0].as_fd());
        let _ = dup2_stdout(self.saved[1].as_fd());
        let _ = dup2_stderr(self.saved[2].as_fd());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> cli::Args {
        let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        cli::parse(&v, &[flag(&["null-io"]), opt(&["log-uri"]), flag(&["tty", "t"])], false).unwrap()
    }

    fn message(r: Result<Target, Failure>) -> String {
        match r {
            Err(Failure::Usage(m)) => m,
            Err(_) => "another failure".into(),
            Ok(t) => format!("accepted as {t:?}"),
        }
    }

    #[test]
    fn targets() {
        assert_eq!(target(&args(&[])).ok(), Some(Target::Inherit));
        assert_eq!(target(&args(&["--null-io"])).ok(), Some(Target::Null));
        assert_eq!(
            target(&args(&["--log-uri", "file:///var/log/c1.log"])).ok(),
            Some(Target::Log("/var/log/c1.log".into()))
        );
        assert_eq!(
            target(&args(&["--log-uri", "file://localhost/x"])).ok(),
            Some(Target::Log("/x".into()))
        );
        assert_eq!(
            target(&args(&["--log-uri", "binary:///bin/log?k=v"])).ok(),
            Some(Target::Binary(Binary {
                uri: "binary:///bin/log?k=v".into(),
                path: "/bin/log".into(),
                args: vec!["k".into(), "v".into()]
            }))
        );
        for (a, why) in [
            (&["--log-uri", "binary://usr/bin/logger"][..], "absolute path"),
            (&["--log-uri", "/plain/path"], "not a URI"),
            (&["--log-uri", "file://host/x"], "absolute path"),
            (&["--log-uri", "fifo:///x"], "scheme fifo://"),
            (&["--null-io", "--log-uri", "file:///x"], "cannot be used together"),
            (&["-t", "--null-io"], "--tty cannot be used"),
        ] {
            let m = message(target(&args(a)));
            assert!(m.contains(why), "{a:?}: {m}");
        }
    }
}
