//! Stopping a long transfer (pull, push, import) cleanly when the user asks (Ctrl-C, SIGTERM):
//! the caller records the request with [`request`] (from a signal-watching thread); every read
//! of a blob, registry answer or archive then fails with [`Interrupted`], so the operation
//! unwinds through its ordinary error path, which removes temp files and collects what it
//! stored but no image uses. A flag, not an abort, because that cleanup needs the store lock
//! and the threads that hold temp files to finish.

use std::io::{self, Read};
use std::sync::atomic::{AtomicI32, Ordering};

/// The signal that asked to stop; 0 while none has.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Ask every transfer in this process to stop, because of signal `sig`.
pub fn request(sig: i32) {
    SIGNAL.store(sig, Ordering::SeqCst);
}

/// The signal that asked to stop, if one has.
pub fn requested() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// The error a read returns once a stop was asked for (not `ErrorKind::Interrupted`, which
/// `io::copy` and `read_exact` would retry).
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Fail with [`Interrupted`] once a stop was asked for.
pub fn check() -> io::Result<()> {
    match requested() {
        Some(_) => Err(io::Error::other(Interrupted)),
        None => Ok(()),
    }
}

/// A reader that stops (with [`Interrupted`]) once a stop was asked for.
pub struct Reader<R>(pub R);

impl<R: Read> Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        check()?;
        self.0.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_stops_reads() {
        let mut r = Reader(&b"data"[..]);
        let mut buf = [0u8; 2];
        assert_eq!(r.read(&mut buf).unwrap(), 2);
        request(2);
        let e = r.read(&mut buf).unwrap_err();
        assert!(e.get_ref().is_some_and(|i| i.is::<Interrupted>()), "{e}");
        assert_eq!(requested(), Some(2));
        SIGNAL.store(0, Ordering::SeqCst);
    }
}
