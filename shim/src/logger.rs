//! The shim's log: logrus-shaped lines (`time=... level=... msg=...`) on the `log` fifo that
//! containerd opens in the bundle directory and copies into its own log.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

struct FifoLogger {
    fifo: Mutex<File>,
}

impl log::Log for FifoLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = record.level().as_str().to_ascii_lowercase();
        let msg = record.args().to_string().replace('\\', "\\\\").replace('"', "\\\"");
        let line = format!(
            "time=\"{}\" level={level} msg=\"{msg}\"\n",
            libcontainer::time::rfc3339_now()
        );
        let mut fifo = self.fifo.lock().unwrap_or_else(|p| p.into_inner());
        // containerd gone (restarting): the line is lost, as it would be with containerd's shims.
        let _ = fifo.write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Log to `./log` when containerd is reading it; otherwise log nowhere.
pub fn init(debug: bool) {
    // Non-blocking open: with no reader a fifo's open would block, and fails with ENXIO instead.
    let Ok(fifo) = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log")
    else {
        return;
    };
    // Blocking from here on: a slow reader must not cost log lines.
    // SAFETY: fcntl on a descriptor this function owns, changing only its status flags.
    unsafe {
        let flags = libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&fifo), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(
                std::os::fd::AsRawFd::as_raw_fd(&fifo),
                libc::F_SETFL,
                flags & !libc::O_NONBLOCK,
            );
        }
    }
    // Lives as long as the process, which never sets a second logger.
    let logger: &'static FifoLogger = Box::leak(Box::new(FifoLogger { fifo: Mutex::new(fifo) }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(if debug {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Info
        });
    }
}
