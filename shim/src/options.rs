//! The shim's runtime options: what CRI passes for `runtime_type = "io.containerd.hezi.v2"`
//! (a `runtimeoptions.v1.Options` whose ConfigBody is the runtime's `options` table as TOML, or
//! whose ConfigPath names a TOML file). They arrive on `start`'s stdin (legacy, or as an
//! extension of BootstrapParams) and in each CreateTaskRequest.
//!
//! ```toml
//! [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.hezi.options]
//!   SystemdCgroup = true           # containers in systemd scopes (as `hezi --systemd-cgroup`)
//!   Root = "/run/containerd/hezi"  # libcontainer's state root (a directory per namespace below)
//!   LogLevel = "debug"             # the shim's log: trace, debug, info, warn, error
//! ```
//!
//! An option hezi does not know is a warning in the shim's log, never an error: containerd's
//! configs are shared between runtimes and carry keys meant for others.

use std::path::PathBuf;

use crate::proto::bootstrap::{RuntimeOptions, RUNTIME_OPTIONS_TYPE};
use crate::proto::{Any, Message};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Options {
    pub systemd_cgroup: Option<bool>,
    pub root: Option<PathBuf>,
    pub log_level: Option<log::LevelFilter>,
}

/// Options read, and what was wrong with them (for the log).
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub options: Options,
    pub warnings: Vec<String>,
}

/// Read the options in `any` (containerd's typeurl name, with or without a type.googleapis.com/
/// prefix).
pub fn from_any(any: &Any) -> Parsed {
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    if name != RUNTIME_OPTIONS_TYPE {
        return warn(format!(
            "runtime options of type {:?} are not hezi's ({RUNTIME_OPTIONS_TYPE}); ignored",
            any.type_url
        ));
    }
    let ro = match RuntimeOptions::decode(&any.value) {
        Ok(ro) => ro,
        Err(e) => return warn(format!("runtime options: {e}; ignored")),
    };
    let (body, source) = if ro.config_path.is_empty() {
        (
            String::from_utf8_lossy(&ro.config_body).into_owned(),
            "ConfigBody".to_string(),
        )
    } else {
        match std::fs::read_to_string(&ro.config_path) {
            Ok(text) => (text, ro.config_path.clone()),
            Err(e) => return warn(format!("runtime options: read {}: {e}; ignored", ro.config_path)),
        }
    };
    from_toml(&body, &source)
}

fn warn(w: String) -> Parsed {
    Parsed {
        options: Options::default(),
        warnings: vec![w],
    }
}

/// A TOML value, as far as hezi's options need: scalars, anything else kept as its text.
#[derive(Debug, PartialEq)]
enum Value {
    Bool(bool),
    Str(String),
    Other(String),
}

/// The flat key/value TOML that containerd writes for an options table (go-toml: `Key = true`,
/// `Key = 'literal'` or `"basic"` strings, numbers; a nested table becomes a `[section]`).
pub fn from_toml(text: &str, source: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut section = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            section = name.trim_end_matches(']').trim().to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            p.warnings
                .push(format!("{source} line {}: not `key = value`: {line:?}", n + 1));
            continue;
        };
        let key = unquote_key(key.trim());
        let full = if section.is_empty() {
            key.clone()
        } else {
            format!("{section}.{key}")
        };
        let value = parse_value(value.trim());
        if let Err(w) = p.options.set(&full, value) {
            p.warnings.push(format!("{source}: {w}"));
        }
    }
    p
}

fn unquote_key(k: &str) -> String {
    k.trim_matches(|c| c == '"' || c == '\'').to_string()
}

fn parse_value(v: &str) -> Value {
    // A comment after the value (outside a string: good enough for scalars).
    let v = match v.find(" #") {
        Some(i) if !v.starts_with('"') && !v.starts_with('\'') => v[..i].trim_end(),
        _ => v,
    };
    match v {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Some(s) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Value::Str(s.to_string());
    }
    if let Some(s) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return Value::Str(unescape(s));
    }
    Value::Other(v.to_string())
}

/// TOML's basic-string escapes (the ones a path or a level can hold).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

impl Options {
    fn set(&mut self, key: &str, value: Value) -> Result<(), String> {
        match (key, value) {
            ("SystemdCgroup", Value::Bool(b)) => self.systemd_cgroup = Some(b),
            ("Root", Value::Str(s)) if !s.is_empty() => {
                let path = PathBuf::from(&s);
                if !path.is_absolute() {
                    return Err(format!("Root {s:?} is not an absolute path; ignored"));
                }
                self.root = Some(path);
            }
            ("LogLevel", Value::Str(s)) => {
                self.log_level = Some(level(&s).ok_or_else(|| format!("LogLevel {s:?} is not a level; ignored"))?)
            }
            (k @ ("SystemdCgroup" | "Root" | "LogLevel"), v) => {
                return Err(format!("option {k} has a value of the wrong type ({v:?}); ignored"))
            }
            (k, _) => return Err(format!("unknown runtime option {k}; ignored")),
        }
        Ok(())
    }

    /// `self`, with what `other` sets on top.
    pub fn merged(&self, other: &Options) -> Options {
        Options {
            systemd_cgroup: other.systemd_cgroup.or(self.systemd_cgroup),
            root: other.root.clone().or_else(|| self.root.clone()),
            log_level: other.log_level.or(self.log_level),
        }
    }
}

/// A level by logrus's names (containerd's), or the Rust ones.
pub fn level(name: &str) -> Option<log::LevelFilter> {
    use log::LevelFilter as L;
    Some(match name.to_ascii_lowercase().as_str() {
        "trace" => L::Trace,
        "debug" => L::Debug,
        "info" => L::Info,
        "warn" | "warning" => L::Warn,
        "error" | "fatal" | "panic" => L::Error,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(ro: &RuntimeOptions) -> Any {
        Any::pack(RUNTIME_OPTIONS_TYPE, ro)
    }

    #[test]
    fn reads_the_toml_containerd_writes() {
        // go-toml's rendering of an options table: literal strings, then a nested table.
        let body =
            "LogLevel = 'debug'\nRoot = \"/run/h\\\\x\"\nSystemdCgroup = true\nBinaryName = 'runc'\n\n[Extra]\nA = 1\n";
        let p = from_any(&any(&RuntimeOptions {
            config_body: body.as_bytes().to_vec(),
            ..Default::default()
        }));
        assert_eq!(
            p.options,
            Options {
                systemd_cgroup: Some(true),
                root: Some(PathBuf::from("/run/h\\x")),
                log_level: Some(log::LevelFilter::Debug),
            }
        );
        assert_eq!(
            p.warnings,
            [
                "ConfigBody: unknown runtime option BinaryName; ignored",
                "ConfigBody: unknown runtime option Extra.A; ignored"
            ]
        );
    }

    #[test]
    fn bad_values_and_foreign_types_are_warnings() {
        let p = from_toml("SystemdCgroup = 'yes'\nRoot = 'rel'\nLogLevel = 'loud'\n# note\n", "f");
        assert_eq!(p.options, Options::default());
        assert_eq!(p.warnings.len(), 3, "{:?}", p.warnings);
        let p = from_any(&Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: vec![],
        });
        assert_eq!(p.options, Options::default());
        assert!(p.warnings[0].contains("not hezi's"), "{:?}", p.warnings);
    }

    #[test]
    fn config_path_is_read() {
        let path = std::env::temp_dir().join(format!("hezi-opts-{}.toml", std::process::id()));
        std::fs::write(&path, "SystemdCgroup = false # off\n").expect("write");
        let p = from_any(&Any {
            type_url: format!("type.googleapis.com/{RUNTIME_OPTIONS_TYPE}"),
            value: RuntimeOptions {
                config_path: path.display().to_string(),
                ..Default::default()
            }
            .encode(),
        });
        let _ = std::fs::remove_file(&path);
        assert_eq!(p.options.systemd_cgroup, Some(false));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn later_options_win() {
        let shim = Options {
            systemd_cgroup: Some(true),
            root: Some("/a".into()),
            log_level: None,
        };
        let task = Options {
            systemd_cgroup: Some(false),
            ..Default::default()
        };
        let m = shim.merged(&task);
        assert_eq!((m.systemd_cgroup, m.root), (Some(false), Some(PathBuf::from("/a"))));
    }
}
