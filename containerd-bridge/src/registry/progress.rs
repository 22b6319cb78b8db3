//! `image pull`'s progress as ctr draws it, when stderr is a terminal: the reference
//! (resolving, then resolved), a line per blob with its state (waiting, downloading, done,
//! exists, failed), a bar, its bytes and its rate, and a last line with the time taken, the
//! bytes fetched and the overall rate; redrawn in place every 100 ms. Off a terminal nothing
//! is drawn (scripts read pull's one result line on stdout). The frame is a pure function of
//! the board and the time, so it is unit-tested as text.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const WAITING: u8 = 0;
pub const RUNNING: u8 = 1;
pub const DONE: u8 = 2;
pub const EXISTS: u8 = 3;
pub const FAILED: u8 = 4;

/// Not yet (for the times below).
const NEVER: u64 = u64::MAX;
/// The bar's width in characters.
const BAR: usize = 20;

/// One blob being fetched.
pub struct Layer {
    /// `layer-sha256:0123456789ab`, `config-sha256:...` (ctr's names, shortened).
    pub label: String,
    pub total: u64,
    pub done: AtomicU64,
    pub state: AtomicU8,
    /// Milliseconds since the board began: when the download started, and when it ended.
    started: AtomicU64,
    ended: AtomicU64,
}

impl Layer {
    pub fn new(label: String, total: u64, state: u8) -> Layer {
        Layer {
            label,
            total,
            done: AtomicU64::new(0),
            state: AtomicU8::new(state),
            started: AtomicU64::new(NEVER),
            ended: AtomicU64::new(NEVER),
        }
    }
}

/// Everything a frame shows, shared between the pull and the thread that draws.
pub struct Board {
    name: String,
    begun: Instant,
    layers: OnceLock<Vec<Layer>>,
}

impl Board {
    pub fn new(name: &str) -> Board {
        Board {
            name: name.to_string(),
            begun: Instant::now(),
            layers: OnceLock::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.begun.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    /// The reference is resolved: these are the blobs to fetch. Returns them as stored.
    pub fn resolved(&self, layers: Vec<Layer>) -> &[Layer] {
        self.layers.get_or_init(|| layers)
    }

    /// Blob `l` changes to `state` now.
    pub fn set(&self, l: &Layer, state: u8) {
        let now = self.now_ms();
        match state {
            RUNNING => l.started.store(now, Ordering::Relaxed),
            DONE | FAILED => l.ended.store(now, Ordering::Relaxed),
            _ => {}
        }
        l.state.store(state, Ordering::Relaxed);
    }
}

/// A byte count as people read it (`1.5 MiB`), as ctr prints sizes.
pub fn human_size(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// `bytes` over `ms` milliseconds, per second; nothing before a tenth of a second has passed.
fn rate(bytes: u64, ms: u64) -> String {
    if ms < 100 {
        return String::new();
    }
    format!("{}/s", human_size(bytes.saturating_mul(1000) / ms))
}

fn bar(done: u64, total: u64) -> String {
    // An empty blob is complete.
    let filled = done
        .min(total)
        .saturating_mul(BAR as u64)
        .checked_div(total)
        .map_or(BAR, |n| usize::try_from(n).unwrap_or(BAR));
    format!("|{}{}|", "+".repeat(filled), "-".repeat(BAR - filled))
}

/// The lines of one frame at `now` (milliseconds since the board began), unpadded.
pub fn frame(board: &Board, now: u64) -> Vec<String> {
    let layers: &[Layer] = board.layers.get().map_or(&[], Vec::as_slice);
    let width = layers
        .iter()
        .map(|l| l.label.len())
        .chain([board.name.len()])
        .max()
        .unwrap_or(0)
        + 1;
    let head = |label: &str| format!("{:<width$} ", format!("{label}:"));
    let mut out = vec![format!(
        "{}{}",
        head(&board.name),
        if board.layers.get().is_some() {
            "resolved"
        } else {
            "resolving"
        }
    )];
    let mut fetched = 0;
    for l in layers {
        let (done, state) = (l.done.load(Ordering::Relaxed), l.state.load(Ordering::Relaxed));
        let (started, ended) = (l.started.load(Ordering::Relaxed), l.ended.load(Ordering::Relaxed));
        fetched += done;
        let line = match state {
            WAITING => format!("{:<12}", "waiting"),
            RUNNING => format!(
                "{:<12}{}  {} / {}  {}",
                "downloading",
                bar(done, l.total),
                human_size(done),
                human_size(l.total),
                rate(done, now.saturating_sub(started))
            ),
            DONE => format!(
                "{:<12}{}  {}  {}",
                "done",
                bar(1, 1),
                human_size(l.total),
                rate(l.total, ended.saturating_sub(started))
            ),
            EXISTS => format!("{:<12}{}  {}", "exists", bar(1, 1), human_size(l.total)),
            _ => format!(
                "{:<12}{}  {} / {}",
                "failed",
                bar(done, l.total),
                human_size(done),
                human_size(l.total)
            ),
        };
        out.push(format!("{}{}", head(&l.label), line.trim_end()));
    }
    let secs = format!("elapsed: {:.1} s", now as f64 / 1000.0);
    let total = format!("total: {} ({})", human_size(fetched), rate(fetched, now));
    out.push(format!("{secs:<width$} {}", total.replace(" ()", "")));
    out
}

/// Draw a frame over the `previous` one's lines; returns how many it drew.
fn draw_to(err: &mut impl Write, lines: &[String], previous: usize) -> usize {
    if previous > 0 {
        let _ = write!(err, "\x1b[{previous}A");
    }
    for l in lines {
        let _ = writeln!(err, "\x1b[2K{l}");
    }
    let _ = err.flush();
    lines.len()
}

pub fn enabled() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(2) == 1 }
}

/// Draw `board`'s first frame (the reference resolving) before any work starts, so it is seen
/// however fast the registry answers; returns the lines drawn for [`render`] (none off a tty).
pub fn first(board: &Board) -> usize {
    if !enabled() {
        return 0;
    }
    draw_to(&mut std::io::stderr().lock(), &frame(board, board.now_ms()), 0)
}

/// Redraw `board` every 100 ms until `stop` is set (then once more), when stderr is a tty,
/// over the `drawn` lines of the frame before.
pub fn render(board: &Board, stop: &AtomicBool, mut drawn: usize) {
    if !enabled() {
        return;
    }
    loop {
        let last = stop.load(Ordering::Relaxed);
        let lines = frame(board, board.now_ms());
        drawn = draw_to(&mut std::io::stderr().lock(), &lines, drawn);
        if last {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(label: &str, total: u64, done: u64, state: u8, started: u64, ended: u64) -> Layer {
        let l = Layer::new(label.into(), total, state);
        l.done.store(done, Ordering::Relaxed);
        l.started.store(started, Ordering::Relaxed);
        l.ended.store(ended, Ordering::Relaxed);
        l
    }

    #[test]
    fn resolving_then_a_line_per_blob_with_bytes_rate_and_state() {
        let board = Board::new("reg.test/app:1");
        assert_eq!(
            frame(&board, 50),
            ["reg.test/app:1: resolving", "elapsed: 0.1 s  total: 0 B"]
        );
        board.resolved(vec![
            layer("layer-sha256:aaaa", 2 << 20, 1 << 20, RUNNING, 1000, NEVER),
            layer("layer-sha256:bbbb", 3 << 20, 3 << 20, DONE, 500, 2000),
            layer("config-sha256:cc", 1536, 0, EXISTS, NEVER, NEVER),
            layer("layer-sha256:dddd", 10, 0, WAITING, NEVER, NEVER),
            layer("layer-sha256:eeee", 100, 40, FAILED, 0, 100),
        ]);
        let text = frame(&board, 3000);
        assert_eq!(
            text,
            [
                "reg.test/app:1:    resolved",
                "layer-sha256:aaaa: downloading |++++++++++----------|  1.0 MiB / 2.0 MiB  512.0 KiB/s",
                "layer-sha256:bbbb: done        |++++++++++++++++++++|  3.0 MiB  2.0 MiB/s",
                "config-sha256:cc:  exists      |++++++++++++++++++++|  1.5 KiB",
                "layer-sha256:dddd: waiting",
                "layer-sha256:eeee: failed      |++++++++------------|  40 B / 100 B",
                "elapsed: 3.0 s     total: 4.0 MiB (1.3 MiB/s)",
            ]
        );
    }

    #[test]
    fn frames_redraw_in_place() {
        let lines = vec!["a".to_string(), "b".to_string()];
        let mut first = Vec::new();
        assert_eq!(draw_to(&mut first, &lines, 0), 2);
        assert_eq!(String::from_utf8(first).unwrap(), "\x1b[2Ka\n\x1b[2Kb\n");
        let mut next = Vec::new();
        draw_to(&mut next, &lines, 3);
        assert!(
            String::from_utf8(next).unwrap().starts_with("\x1b[3A\x1b[2Ka\n"),
            "cursor back up over the 3 lines drawn before"
        );
    }
}
