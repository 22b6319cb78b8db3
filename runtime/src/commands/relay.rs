//! `run` in the foreground with a terminal: hezi holds the pty master and relays it to its own
//! stdio, with the caller's terminal in raw mode (restored afterwards) and window size changes
//! passed on, as runc does.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::thread::JoinHandle;

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

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

impl Relay {
    pub fn start(master: OwnedFd) -> std::io::Result<Relay> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)?;
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
