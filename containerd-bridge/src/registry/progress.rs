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
    draw_to(&mut err, layers, first);
}

/// One frame: a line per layer, after moving the cursor back over the previous frame.
fn draw_to(err: &mut impl Write, layers: &[Layer], first: bool) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(label: &str, total: u64, done: u64, state: u8) -> Layer {
        Layer {
            label: label.into(),
            total,
            done: AtomicU64::new(done),
            state: AtomicU8::new(state),
        }
    }

    #[test]
    fn a_frame_has_a_line_per_layer_and_redraws_in_place() {
        let layers = [
            layer("sha256:aaaa", 2 << 20, 1 << 20, RUNNING),
            layer("sha256:bbbb", 3 << 20, 0, DONE),
            layer("sha256:cccc", 1, 0, EXISTS),
            layer("sha256:dddd", 1, 0, WAITING),
            layer("sha256:eeee", 1, 0, FAILED),
        ];
        let mut first = Vec::new();
        draw_to(&mut first, &layers, true);
        let text = String::from_utf8(first).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "\x1b[2Ksha256:aaaa  downloading 1.0 MiB / 2.0 MiB",
                "\x1b[2Ksha256:bbbb  done 3.0 MiB",
                "\x1b[2Ksha256:cccc  already present",
                "\x1b[2Ksha256:dddd  waiting",
                "\x1b[2Ksha256:eeee  failed",
            ]
        );
        let mut next = Vec::new();
        draw_to(&mut next, &layers, false);
        assert!(
            String::from_utf8(next).unwrap().starts_with("\x1b[5A"),
            "cursor back up 5 lines"
        );
    }
}
