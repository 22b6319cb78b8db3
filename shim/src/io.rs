//! A process's stdio as containerd hands it over: fifo paths (ctr, CRI), a `file://` log URI
//! or a `binary://` logger, or a terminal. The process gets pipes (or the pty slave); threads
//! copy between those and containerd's ends, so stdout and stderr stay apart, stdin can be
//! closed on its own (CloseIO), and the shim knows when all output has been delivered.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::helper;

/// The stdio a Create or Exec request names.
#[derive(Clone, Debug, Default)]
pub struct IoConfig {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Where output goes.
enum Sink {
    Fifo(String),
    File(String),
    Binary(String),
    None,
}

fn sink(path: &str) -> Sink {
    if path.is_empty() {
        Sink::None
    } else if let Some(p) = path.strip_prefix("file://") {
        Sink::File(p.to_string())
    } else if path.starts_with("binary://") {
        Sink::Binary(path.to_string())
    } else {
        Sink::Fifo(path.to_string())
    }
}

/// How many output copies still run; the exit is reported once this drops to zero.
#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    cv: Condvar,
}

impl Pending {
    fn add(&self) {
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    }
    fn done(&self) {
        let mut c = self.count.lock().unwrap_or_else(|p| p.into_inner());
        *c = c.saturating_sub(1);
        self.cv.notify_all();
    }
}

/// The shim's ends of one process's stdio.
pub struct ProcessIo {
    cfg: IoConfig,
    /// Where stdin data goes (the pipe to the process, or the pty master); `None` once closed.
    stdin: Arc<Mutex<Option<File>>>,
    pending: Arc<Pending>,
    /// The pty master, for resizing.
    console: Mutex<Option<OwnedFd>>,
}

impl ProcessIo {
    /// Set up pipes and copies; returns the ends the process gets (for the helper to dup2).
    pub fn open(cfg: &IoConfig, namespace: &str, id: &str) -> Result<(ProcessIo, helper::Stdio), String> {
        let io = ProcessIo {
            cfg: cfg.clone(),
            stdin: Arc::new(Mutex::new(None)),
            pending: Arc::new(Pending::default()),
            console: Mutex::new(None),
        };
        let mut stdio = helper::Stdio::default();
        if cfg.terminal {
            // Everything goes through the pty master, which arrives after create.
            return Ok((io, stdio));
        }
        if !cfg.stdin.is_empty() {
            let (r, w) = pipe()?;
            stdio.stdin = Some(r);
            *io.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(File::from(w));
            io.copy_stdin();
        }
        if let (Sink::Binary(uri), _) | (_, Sink::Binary(uri)) = (sink(&cfg.stdout), sink(&cfg.stderr)) {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            start_logger(&uri, namespace, id, out_r, err_r)?;
            stdio.stdout = Some(out_w);
            stdio.stderr = Some(err_w);
            return Ok((io, stdio));
        }
        for (path, slot) in [(&cfg.stdout, &mut stdio.stdout), (&cfg.stderr, &mut stdio.stderr)] {
            let dest = match sink(path) {
                Sink::None | Sink::Binary(_) => continue,
                Sink::Fifo(p) => open_fifo_writer(&p)?,
                Sink::File(p) => OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .map_err(|e| format!("open log file {p}: {e}"))?,
            };
            let (r, w) = pipe()?;
            *slot = Some(w);
            io.copy_out(File::from(r), dest);
        }
        Ok((io, stdio))
    }

    /// The terminal's master arrived: copy it to stdout and stdin to it.
    pub fn attach_console(&self, master: OwnedFd) -> Result<(), String> {
        let dup = |f: &OwnedFd| f.try_clone().map_err(|e| format!("dup the pty master: {e}"));
        if !self.cfg.stdout.is_empty() {
            let dest = match sink(&self.cfg.stdout) {
                Sink::File(p) => OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .map_err(|e| format!("open log file {p}: {e}"))?,
                _ => open_fifo_writer(&self.cfg.stdout)?,
            };
            self.copy_out(File::from(dup(&master)?), dest);
        }
        if !self.cfg.stdin.is_empty() {
            *self.stdin.lock().unwrap_or_else(|p| p.into_inner()) = Some(File::from(dup(&master)?));
            self.copy_stdin();
        }
        *self.console.lock().unwrap_or_else(|p| p.into_inner()) = Some(master);
        Ok(())
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<(), String> {
        let console = self.console.lock().unwrap_or_else(|p| p.into_inner());
        let Some(master) = console.as_ref() else {
            return Err("the process has no terminal".into());
        };
        libcontainer::tty::resize(master.as_fd(), height as u16, width as u16).map_err(|e| e.to_string())
    }

    /// CloseIO: the process reads EOF on stdin (on a terminal: the EOF character).
    pub fn close_stdin(&self) {
        let taken = self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let (Some(mut f), true) = (taken, self.cfg.terminal) {
            // Closing our dup of the master would not end the input; ^D does.
            let _ = f.write_all(&[4]);
        }
    }

    /// The process exited: release the stdin copy, which may still wait in open() for a
    /// client that never attaches (ctr always names a stdin fifo). Opening the fifo's writing
    /// end ourselves completes that open; the copy then reads EOF and ends.
    pub fn release_stdin(&self) {
        self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take();
        if self.cfg.stdin.is_empty() {
            return;
        }
        let _ = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&self.cfg.stdin);
    }

    /// Wait until every output copy has drained (or `timeout`: a process the exited one left
    /// behind may still hold the pipe open).
    pub fn wait_output(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut c = self.pending.count.lock().unwrap_or_else(|p| p.into_inner());
        while *c > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::warn!("output copy still running after {timeout:?}; reporting the exit anyway");
                return;
            }
            c = match self.pending.cv.wait_timeout(c, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    fn copy_out(&self, mut from: File, mut to: File) {
        self.pending.add();
        let pending = Arc::clone(&self.pending);
        let spawned = thread::Builder::new().name("stdout-copy".into()).spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match from.read(&mut buf) {
                    // EIO: a pty whose last slave fd closed.
                    Ok(0) => break,
                    Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => {
                        log::warn!("read process output: {e}");
                        break;
                    }
                    Ok(n) => {
                        if let Err(e) = to.write_all(&buf[..n]) {
                            // Keep draining so the process never blocks on a full pipe.
                            log::debug!("write process output: {e}");
                        }
                    }
                }
            }
            pending.done();
        });
        if let Err(e) = spawned {
            log::error!("start an output copy thread: {e}");
            self.pending.done();
        }
    }

    fn copy_stdin(&self) {
        let path = self.cfg.stdin.clone();
        let dest = Arc::clone(&self.stdin);
        let spawned = thread::Builder::new().name("stdin-copy".into()).spawn(move || {
            // A blocking open waits for containerd's client to open its writing end.
            let mut src = match File::open(&path) {
                Ok(f) => f,
                Err(e) => {
                    log::warn!("open stdin {path}: {e}");
                    return;
                }
            };
            let mut buf = [0u8; 8192];
            loop {
                let n = match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                let mut d = dest.lock().unwrap_or_else(|p| p.into_inner());
                let written = d.as_mut().map(|f| f.write_all(&buf[..n]).is_ok());
                if written != Some(true) {
                    return;
                }
            }
            // The client closed its end: so does the process's stdin (not on a terminal, where
            // the master is shared with the output).
            let mut d = dest.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(f) = d.as_ref() {
                let is_tty = nix::unistd::isatty(f.as_fd()).unwrap_or(false);
                if !is_tty {
                    d.take();
                }
            }
        });
        if let Err(e) = spawned {
            log::error!("start the stdin copy thread: {e}");
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

/// Open an output fifo for writing without waiting for a reader. Read-write, as containerd's
/// runc shim keeps a reader too: the copy never fails with EPIPE while the client reattaches.
fn open_fifo_writer(path: &str) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("open fifo {path}: {e}"))
}

/// containerd's `binary://PATH?k=v` logger: it gets stdout on fd 3, stderr on fd 4, and closes
/// fd 5 when it is ready to read.
fn start_logger(uri: &str, namespace: &str, id: &str, out: OwnedFd, err: OwnedFd) -> Result<(), String> {
    let rest = uri.trim_start_matches("binary://");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut args = Vec::new();
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        args.push(k.to_string());
        if !v.is_empty() {
            args.push(v.to_string());
        }
    }
    let (ready_r, ready_w) = pipe()?;
    let fds = [out.as_raw_fd(), err.as_raw_fd(), ready_w.as_raw_fd()];
    let mut cmd = Command::new(path);
    cmd.args(&args)
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: between fork and exec the closure only calls fcntl, dup2 and close, which are
    // async-signal-safe, on fds that stay open in the parent until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            // Copies above the targets first (fcntl picks free numbers, so no source is
            // overwritten), then onto 3, 4 and 5, and the copies closed: a stray copy of the
            // ready pipe would keep the shim waiting for a logger that closed fd 5.
            let mut tmp = [0; 3];
            for (t, fd) in tmp.iter_mut().zip(fds) {
                *t = libc::fcntl(fd, libc::F_DUPFD, 10);
                if *t < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, t) in tmp.iter().enumerate() {
                if libc::dup2(*t, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(*t);
            }
            Ok(())
        });
    }
    {
        // spawn waits on the child itself if exec fails: keep the reaper away meanwhile.
        let _guard = crate::reaper::SpawnGuard::lock();
        cmd.spawn().map_err(|e| format!("start logger {path}: {e}"))?;
    }
    drop(ready_w);
    drop((out, err));
    let mut ready = File::from(ready_r);
    let mut b = [0u8; 1];
    let _ = ready.read(&mut b);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks() {
        assert!(matches!(sink(""), Sink::None));
        assert!(matches!(sink("/run/x/stdout"), Sink::Fifo(p) if p == "/run/x/stdout"));
        assert!(matches!(sink("file:///var/log/c.log"), Sink::File(p) if p == "/var/log/c.log"));
        assert!(matches!(sink("binary:///bin/logger?a=b"), Sink::Binary(_)));
    }
}
