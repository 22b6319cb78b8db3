//! `events [--stats] [--interval DUR] ID`: runc's JSON lines, `{"type":"stats","id":…,"data":…}`
//! every interval and `{"type":"oom","id":…}` when the OOM killer strikes, until the container
//! stops; with `--stats`, one stats event and exit.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::cli::{self, flag, opt};
use crate::{Failure, Global};
use libcontainer::container::Event;

pub fn events(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse(args, &[flag(&["stats"]), opt(&["interval"])], false)?;
    let id = a.id("events")?;
    let interval = match a.value("interval") {
        None => Duration::from_secs(5),
        Some(v) => parse_duration(v).map_err(|e| Failure::Usage(format!("--interval: {e}")))?,
    };
    if interval.is_zero() {
        return Err(Failure::Usage("--interval: duration must be greater than 0".into()));
    }
    let rt = super::runtime(g)?;
    if a.is_set("stats") {
        let stats = rt.stats(id)?;
        return print_line(&Line {
            typ: "stats",
            id,
            data: Some(&stats),
        })
        .map_err(|e| Failure::Error(format!("write event: {e}")));
    }
    rt.events(id, interval, |ev| {
        let line = match ev {
            Event::Stats(s) => Line {
                typ: "stats",
                id,
                data: Some(s),
            },
            Event::Oom => Line {
                typ: "oom",
                id,
                data: None,
            },
        };
        print_line(&line).map_err(|e| libcontainer::Error::io("write event to stdout", e))
    })?;
    Ok(())
}

/// runc's `types.Event`, fields in its order.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "type")]
    typ: &'static str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a libcontainer::cgroups::Stats>,
}

/// One JSON object per line, flushed at once: a reader follows the stream as it comes.
fn print_line(line: &Line<'_>) -> std::io::Result<()> {
    let text = serde_json::to_string(line).map_err(std::io::Error::other)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// A Go duration as runc's `--interval` takes it: `5s`, `100ms`, `1m30s`, `1.5h`, `250us`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(bad());
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[u..];
        total += value * unit;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "5", "s", "-1s", "5x", "1.2.3s", "5 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
