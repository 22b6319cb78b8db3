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
        let line = format!("time=\"{}\" level={level} msg=\"{msg}\"\n", now_rfc3339());
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

/// UTC wall-clock time as RFC 3339 with nanoseconds, without a date library.
fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
    }
}
