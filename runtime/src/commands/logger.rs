//! `--log-uri binary:///PATH?KEY=VALUE&...`: a logging program started as containerd's shims
//! start it. Its fd 3 reads the container's stdout, fd 4 its stderr, and fd 5 is a pipe it
//! closes (or writes a byte to) once it is ready; hezi waits for that before it creates the
//! container. Its environment is CONTAINER_ID and CONTAINER_NAMESPACE alone, its arguments
//! the query's keys and values in order (`?file=/x&v` gives `file /x v ""`, as containerd
//! gives them), its stdin, stdout and stderr /dev/null (never hezi's own: a detached `run`
//! must not keep its caller's pipes open), and it runs in a process group of its own (a
//! Ctrl-C on `run`'s terminal is for the container, which then ends the logger by EOF).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::pipe2;

use crate::Failure;

/// How long a logger may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A `binary://` log URI, parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct Binary {
    /// The URI as given, for messages.
    pub uri: String,
    pub path: PathBuf,
    pub args: Vec<String>,
}

/// Parse what follows `binary://` in `uri` (the whole URI, for messages).
pub fn parse(uri: &str, rest: &str) -> Result<Binary, String> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = path.strip_prefix("localhost").unwrap_or(path);
    if !path.starts_with('/') || path.len() < 2 {
        return Err(format!(
            "--log-uri {uri:?}: needs the logging program's absolute path (binary:///PATH)"
        ));
    }
    let mut args = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        args.push(unescape(uri, k)?);
        args.push(unescape(uri, v)?);
    }
    Ok(Binary {
        uri: uri.to_string(),
        path: PathBuf::from(unescape(uri, path)?),
        args,
    })
}

/// A URI's percent-escapes (and `+` for a space in the query, as Go's url.ParseQuery has it)
/// decoded.
fn unescape(uri: &str, s: &str) -> Result<String, String> {
    let bad = || format!("--log-uri {uri:?}: bad escape in {s:?}");
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .ok_or_else(bad)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// A started, ready logger, and the write ends of its pipes (the container's stdout, stderr).
pub struct Started {
    pub child: Child,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

fn pipe(shown: &str, what: &str) -> Result<(OwnedFd, OwnedFd), Failure> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| Failure::Error(format!("{shown}: pipe for its {what}: {e}")))
}

/// A close-on-exec copy of `fd` at 10 or above, so that putting the copies on 3, 4 and 5 in the
/// child never overwrites one it has yet to move.
fn high(shown: &str, fd: std::os::fd::BorrowedFd<'_>) -> Result<OwnedFd, Failure> {
    let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(10)).map_err(|e| Failure::Error(format!("{shown}: dup: {e}")))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

impl Binary {
    /// Start the logger for container `id` of namespace `ns` and wait until it is ready. On
    /// error no logger is left running.
    pub fn start(&self, id: &str, ns: &str) -> Result<Started, Failure> {
        let shown = format!("--log-uri {:?}: the logger {}", self.uri, self.path.display());
        let (out_r, out_w) = pipe(&shown, "stdout")?;
        let (err_r, err_w) = pipe(&shown, "stderr")?;
        let (ready_r, ready_w) = pipe(&shown, "readiness")?;
        // The six pipe ends fill any free descriptor below 6, so the pipe std makes to learn of
        // a failed exec cannot be one that the moves below land on.
        let moved = [
            high(&shown, out_r.as_fd())?,
            high(&shown, err_r.as_fd())?,
            high(&shown, ready_w.as_fd())?,
        ];
        let raw: [RawFd; 3] = [moved[0].as_raw_fd(), moved[1].as_raw_fd(), moved[2].as_raw_fd()];
        let mut cmd = Command::new(&self.path);
        cmd.args(&self.args)
            .env_clear()
            .env("CONTAINER_ID", id)
            .env("CONTAINER_NAMESPACE", ns)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // SAFETY: between fork and exec the closure only calls dup2, sigemptyset and
        // sigprocmask, which are async-signal-safe, on descriptors that stay open in the parent
        // until spawn returns and on a sigset on its own stack. dup2 leaves the new descriptor
        // without close-on-exec, so exactly 3, 4 and 5 reach the logger.
        unsafe {
            cmd.pre_exec(move || {
                for (from, to) in raw.iter().zip(3..) {
                    if libc::dup2(*from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // `run` blocks the signals it forwards (SIGCHLD among them) before it creates
                // the container, and std keeps a mask across exec: a shell logger with SIGCHLD
                // blocked never sees its children end.
                let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
                libc::sigemptyset(empty.as_mut_ptr());
                if libc::sigprocmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut()) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| Failure::Error(format!("{shown} could not be started: {e}")))?;
        drop((moved, out_r, err_r, ready_w));
        if let Err(e) = wait_ready(&mut child, ready_r) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Failure::Error(format!("{shown} {e}")));
        }
        Ok(Started {
            child,
            stdout: out_w,
            stderr: err_w,
        })
    }
}

/// Wait until the logger closes fd 5 or writes to it; a logger that exits first failed.
fn wait_ready(child: &mut Child, ready: OwnedFd) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "did not say it was ready (by closing or writing its fd 5) within {} s",
                READY_TIMEOUT.as_secs()
            ));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(ready.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => break,
            Err(e) => return Err(format!("could not be waited for: {e}")),
        }
    }
    let mut byte = [0u8; 1];
    let _ = File::from(ready).read(&mut byte);
    // EOF is also what a logger that died says: it must still be running.
    std::thread::sleep(Duration::from_millis(20));
    match child.try_wait() {
        Ok(None) => Ok(()),
        Ok(Some(status)) => Err(format!("exited ({status}) before the container started")),
        Err(e) => Err(format!("could not be waited for: {e}")),
    }
}

/// After `run`'s container has exited: give the logger (which reads to EOF) a moment to write
/// the last of it, so the log is complete when `run` returns.
pub fn finish(mut child: Child) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            _ => return,
        }
    }
    tracing::warn!("the logger {} is still running after its container ended", child.id());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let p = |rest: &str| parse(&format!("binary://{rest}"), rest);
        assert_eq!(
            p("/usr/bin/log?file=/var/log/x&v").unwrap(),
            Binary {
                uri: "binary:///usr/bin/log?file=/var/log/x&v".into(),
                path: "/usr/bin/log".into(),
                args: vec!["file".into(), "/var/log/x".into(), "v".into(), String::new()],
            }
        );
        assert_eq!(p("localhost/l%20x?a=b+c%26").unwrap().args, ["a", "b c&"]);
        assert_eq!(p("localhost/l%20x").unwrap().path, PathBuf::from("/l x"));
        for bad in ["", "relative/log", "/", "/x?a=%zz"] {
            assert!(p(bad).is_err(), "{bad:?} accepted");
        }
    }
}
