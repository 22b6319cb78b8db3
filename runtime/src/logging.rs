//! runc-shaped logging: `--log FILE` (default stderr), `--log-format text|json`, `--debug`.
//!
//! JSON lines look like logrus's, `{"level":"error","msg":"...","time":"..."}`, because
//! containerd's runc shim reads the last error from that file. A tiny `tracing` subscriber feeds
//! it, so libcontainer logs through `tracing` without the weight of tracing-subscriber.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Metadata, Subscriber};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub struct Logger {
    sink: Mutex<Option<File>>,
    format: Format,
    max: Level,
}

impl Logger {
    pub fn new(path: Option<&str>, format: Format, debug: bool) -> std::io::Result<Logger> {
        let sink = match path {
            Some(p) if !p.is_empty() => Some(OpenOptions::new().create(true).append(true).open(p)?),
            _ => None,
        };
        Ok(Logger {
            sink: Mutex::new(sink),
            format,
            max: if debug { Level::DEBUG } else { Level::INFO },
        })
    }

    pub fn has_file(&self) -> bool {
        self.sink.lock().map(|s| s.is_some()).unwrap_or(false)
    }

    pub fn write(&self, level: Level, msg: &str) {
        let level = level.as_str().to_ascii_lowercase();
        let time = libcontainer::time::rfc3339_now();
        let line = match self.format {
            Format::Json => {
                let v = serde_json::json!({ "level": level, "msg": msg, "time": time });
                format!("{v}\n")
            }
            Format::Text => format!("time=\"{time}\" level={level} msg={msg:?}\n"),
        };
        let mut sink = match self.sink.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let _ = match sink.as_mut() {
            Some(f) => f.write_all(line.as_bytes()),
            None => std::io::stderr().write_all(line.as_bytes()),
        };
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for &'static Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }
    fn max_level_hint(&self) -> Option<tracing_core::LevelFilter> {
        Some(tracing_core::LevelFilter::from_level(self.max))
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut msg = Message(String::new());
        event.record(&mut msg);
        self.write(*event.metadata().level(), &msg.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Install `logger` as the process's tracing subscriber.
pub fn install(logger: &'static Logger) {
    if let Ok(Some(file)) = logger.sink.lock().as_deref() {
        // A container's init keeps this fd only until it waits for `start`.
        libcontainer::set_runtime_log_fd(std::os::fd::AsRawFd::as_raw_fd(file));
    }
    let _ = tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(logger));
}
