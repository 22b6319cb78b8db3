//! A small command-line parser with runc's conventions (urfave/cli): global flags before the
//! command, `-flag` and `--flag` alike, `--flag value` and `--flag=value`, booleans that also take
//! `=true|false`. Hand-written rather than clap: runc's grammar is small, and the create path
//! should not pay for a general parser at start-up.

use std::collections::HashMap;

/// One flag a command accepts: its names (`["b", "bundle"]`) and whether it takes a value.
pub struct Flag {
    pub names: &'static [&'static str],
    pub takes_value: bool,
}

pub const fn flag(names: &'static [&'static str]) -> Flag {
    Flag {
        names,
        takes_value: false,
    }
}

pub const fn opt(names: &'static [&'static str]) -> Flag {
    Flag {
        names,
        takes_value: true,
    }
}

/// Parsed flags (keyed by each flag's first name) and positional arguments.
#[derive(Default, Debug)]
pub struct Args {
    values: HashMap<&'static str, Vec<String>>,
    pub positional: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum UsageError {
    /// `-h`/`--help` where the command defines no such flag: print its usage and exit 0.
    Help,
    Invalid(String),
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UsageError::Help => f.write_str("help requested"),
            UsageError::Invalid(m) => f.write_str(m),
        }
    }
}

impl Args {
    /// The flag's value (the last one, if given more than once).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.last()).map(String::as_str)
    }

    /// Every value of a repeatable flag (`-e A -e B`), in order.
    pub fn values(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.value(name).is_some_and(|v| v != "false")
    }

    /// The single positional argument a command needs (the container id).
    pub fn id(&self, command: &str) -> Result<&str, UsageError> {
        match self.positional.first() {
            Some(id) => Ok(id),
            None => Err(UsageError::Invalid(format!(
                "{command}: requires exactly 1 argument: the container id"
            ))),
        }
    }
}

/// Parse `args` against `flags`. With `stop_at_positional`, parsing ends at the first positional
/// argument and everything after it is positional (for the global flags before the command, and
/// for commands that pass the rest through, such as `kill ID SIGNAL`).
pub fn parse(args: &[String], flags: &[Flag], stop_at_positional: bool) -> Result<Args, UsageError> {
    let mut out = Args::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            out.positional.extend(args[i..].iter().cloned());
            break;
        }
        let Some(stripped) = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .filter(|s| !s.is_empty())
        else {
            out.positional.push(arg.clone());
            if stop_at_positional {
                out.positional.extend(args[i..].iter().cloned());
                break;
            }
            continue;
        };
        let (name, inline) = match stripped.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (stripped, None),
        };
        let Some(f) = flags.iter().find(|f| f.names.contains(&name)) else {
            if matches!(name, "h" | "help") {
                return Err(UsageError::Help);
            }
            return Err(UsageError::Invalid(format!("flag provided but not defined: -{name}")));
        };
        let value = if f.takes_value {
            match inline {
                Some(v) => v,
                None if i < args.len() => {
                    i += 1;
                    args[i - 1].clone()
                }
                None => return Err(UsageError::Invalid(format!("flag needs an argument: -{name}"))),
            }
        } else {
            match inline.as_deref() {
                None | Some("true") | Some("1") => "true".to_string(),
                Some("false") | Some("0") => "false".to_string(),
                Some(v) => return Err(UsageError::Invalid(format!("invalid boolean value {v:?} for -{name}"))),
            }
        };
        out.values.entry(f.names[0]).or_default().push(value);
    }
    Ok(out)
}

/// [`parse`] for `command` (no stop at positionals): an error names the command, as in
/// `run: flag provided but not defined: -nope`.
pub fn parse_for(command: &str, args: &[String], flags: &[Flag]) -> Result<Args, UsageError> {
    parse(args, flags, false).map_err(|e| match e {
        UsageError::Invalid(m) => UsageError::Invalid(format!("{command}: {m}")),
        help => help,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[opt(&["b", "bundle"]), flag(&["d", "detach"]), opt(&["pid-file"])];

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn runc_forms() {
        let a = parse(&v(&["-b", "/x", "--detach", "--pid-file=/p", "id1"]), FLAGS, false).unwrap();
        assert_eq!(a.value("b"), Some("/x"));
        assert!(a.is_set("d"));
        assert_eq!(a.value("pid-file"), Some("/p"));
        assert_eq!(a.positional, ["id1"]);
        let a = parse(&v(&["--bundle=/y", "-detach=false", "id"]), FLAGS, false).unwrap();
        assert_eq!(a.value("b"), Some("/y"));
        assert!(!a.is_set("d"));
    }

    #[test]
    fn stops_at_positional() {
        let a = parse(&v(&["-d", "kill", "-a", "x"]), FLAGS, true).unwrap();
        assert!(a.is_set("d"));
        assert_eq!(a.positional, ["kill", "-a", "x"]);
    }

    #[test]
    fn errors() {
        assert!(parse(&v(&["--nope"]), FLAGS, false)
            .unwrap_err()
            .to_string()
            .contains("not defined: -nope"));
        assert_eq!(
            parse(&v(&["-b", "/x", "--help"]), FLAGS, false).unwrap_err(),
            UsageError::Help
        );
        assert_eq!(parse(&v(&["-h", "id"]), FLAGS, false).unwrap_err(), UsageError::Help);
        assert!(parse(&v(&["--bundle"]), FLAGS, false).is_err());
        assert!(parse(&v(&["--detach=maybe"]), FLAGS, false).is_err());
        assert_eq!(
            parse_for("run", &v(&["--nope"]), FLAGS).unwrap_err().to_string(),
            "run: flag provided but not defined: -nope"
        );
        assert_eq!(parse_for("run", &v(&["-h"]), FLAGS).unwrap_err(), UsageError::Help);
    }

    #[test]
    fn repeated_flags_keep_every_value() {
        let a = parse(&v(&["-b", "/1", "--bundle", "/2", "x"]), FLAGS, false).unwrap();
        assert_eq!(a.values("b"), ["/1", "/2"]);
        assert_eq!(a.value("b"), Some("/2"));
    }
}
