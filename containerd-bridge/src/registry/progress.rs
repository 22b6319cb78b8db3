//! Per-layer progress lines on a terminal (stderr a tty), redrawn in place; nothing otherwise.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

pub const WAITING: u8 = 0;
pub const RUNNING: u8 = 1;
pub const DONE: u8 = 2;
pub const EXISTS: u8 = 3;
pub const FAILED: u8 = 4;

pub struct Layer {
    pub label: String,
    pub total: u64,
    pub done: AtomicU64,
    pub state: AtomicU8,
}

pub fn enabled() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(2) == 1 }
}

fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
}

fn draw(layers: &[Layer], first: bool) {
    let mut err = std::io::stderr().lock();
    if !first {
        let _ = write!(err, "\x1b[{}A", layers.len());
    }
    for l in layers {
        let (done, state) = (l.done.load(Ordering::Relaxed), l.state.load(Ordering::Relaxed));
        let what = match state {
            WAITING => "waiting".to_string(),
            RUNNING => format!("downloading {} / {}", mib(done), mib(l.total)),
            DONE => format!("done {}", mib(l.total)),
            EXISTS => "already present".to_string(),
            _ => "failed".to_string(),
        };
        let _ = writeln!(err, "\x1b[2K{}  {what}", l.label);
    }
    let _ = err.flush();
}

/// Redraw `layers` every 100 ms until `stop` is set (then once more), when stderr is a tty.
pub fn render(layers: &[Layer], stop: &AtomicBool) {
    if !enabled() || layers.is_empty() {
        return;
    }
    draw(layers, true);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        draw(layers, false);
    }
    draw(layers, false);
}
