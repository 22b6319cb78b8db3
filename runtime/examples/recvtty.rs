//! A console socket listener, as runc's contrib recvtty: accept one connection on SOCKET, take
//! the pty master sent over it (the console-socket protocol) and copy what the container writes
//! on its terminal to stdout until the terminal closes. The test VM uses it for containers with
//! a terminal (scripts/vm/checkpoint.sh); `hezi run -d --console-socket` needs someone there.
//!
//! ```text
//! recvtty SOCKET
//! ```

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: recvtty SOCKET");
        return ExitCode::from(2);
    };
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("recvtty: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &str) -> Result<(), String> {
    let listener = UnixListener::bind(path).map_err(|e| format!("listen on {path}: {e}"))?;
    let (conn, _) = listener.accept().map_err(|e| format!("accept on {path}: {e}"))?;
    let master = libcontainer::tty::recv_fd(std::os::fd::AsFd::as_fd(&conn)).map_err(|e| e.to_string())?;
    drop(listener);
    let _ = std::fs::remove_file(path);
    let mut master = std::fs::File::from(master);
    let mut out = std::io::stdout();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                out.write_all(&buf[..n]).map_err(|e| format!("write: {e}"))?;
                out.flush().map_err(|e| format!("write: {e}"))?;
            }
            // EIO: every slave is closed (the container's terminal is gone).
            Err(e) if e.raw_os_error() == Some(libc::EIO) => return Ok(()),
            Err(e) => return Err(format!("read the terminal: {e}")),
        }
    }
}
