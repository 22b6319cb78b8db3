//! `run` (and `exec`) in the foreground with a terminal: hezi holds the pty master and relays it
//! to its own stdio, with the caller's terminal in raw mode (restored afterwards), the pty's
//! `\n` -> `\r\n` translation off, and window size changes passed on, as runc does.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::thread::JoinHandle;

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, OutputFlags, SetArg, Termios};

pub struct Relay {
    master: OwnedFd,
    saved: Option<Termios>,
    output: Option<JoinHandle<()>>,
}

fn copy(mut from: File, mut to: impl Write) {
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            // EIO: every slave fd is closed, the container is gone.
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).and_then(|_| to.flush()).is_err() {
                    return;
                }
            }
        }
    }
}

/// Stop the container's pty turning `\n` into `\r\n`: the caller's own terminal (which keeps
/// its output processing, below) does that once, and output redirected to a file or pipe gets the
/// container's bytes as written. runc does the same to the master it receives (ClearONLCR).
/// Termios set through the master applies to the pty pair.
fn clear_onlcr(master: &OwnedFd) -> std::io::Result<()> {
    let mut t = tcgetattr(master.as_fd())?;
    t.output_flags.remove(OutputFlags::ONLCR);
    tcsetattr(master.as_fd(), SetArg::TCSANOW, &t)?;
    Ok(())
}

/// The caller's terminal in raw mode, as runc (containerd/console) sets it: input unprocessed
/// and unechoed, but output processing kept, so the container's `\n` still starts a new line.
fn raw_keeping_output(t: &Termios) -> Termios {
    let mut raw = t.clone();
    cfmakeraw(&mut raw);
    raw.output_flags.insert(OutputFlags::OPOST);
    raw
}

impl Relay {
    pub fn start(master: OwnedFd) -> std::io::Result<Relay> {
        clear_onlcr(&master)?;
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw_keeping_output(t))?;
        }
        let relay = Relay {
            master,
            saved,
            output: None,
        };
        relay.resize();
        let to_master = File::from(relay.master.try_clone()?);
        let from_stdin = File::from(stdin.as_fd().try_clone_to_owned()?);
        // Never joined: a read on our stdin may block for as long as the caller keeps it open.
        std::thread::spawn(move || copy(from_stdin, to_master));
        let from_master = File::from(relay.master.try_clone()?);
        let output = std::thread::spawn(move || copy(from_master, std::io::stdout()));
        Ok(Relay {
            output: Some(output),
            ..relay
        })
    }

    /// Give the container's terminal the size of ours.
    pub fn resize(&self) {
        // SAFETY: TIOCGWINSZ writes a winsize into the valid pointer.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: ioctl on our stdin with a valid out-pointer.
        if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 {
            let _ = libcontainer::tty::resize(self.master.as_fd(), ws.ws_row, ws.ws_col);
        }
    }

    /// Drain the container's last output and give the caller its terminal back.
    pub fn finish(mut self) {
        if let Some(h) = self.output.take() {
            let _ = h.join();
        }
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}
