//! The environment a container's process (init or exec'd) starts with, built from the spec's
//! `process.env` as runc builds it: runc clears its environment and `Setenv`s each entry in
//! order, so a name given twice keeps the position of its first entry and the value of its last;
//! an entry without `=` or with an empty name is refused; values are kept byte for byte
//! (newlines included); and `HOME`, when unset or empty, comes from the container's /etc/passwd
//! entry for the process's uid, or is `/`.

use oci_spec::runtime::Process;

use crate::error::{Error, Result};

/// The container's passwd file, read (after the root switch) only when HOME must be found.
const PASSWD: &str = "/etc/passwd";

/// HOME when the process's uid has no passwd entry (runc's default user's home).
const DEFAULT_HOME: &str = "/";

/// The environment for `process`, in the container's mount namespace.
pub fn for_process(process: &Process) -> Result<Vec<String>> {
    let spec_env = process.env().as_deref().unwrap_or(&[]);
    let uid = process.user().uid();
    build(spec_env, || {
        let passwd = std::fs::read_to_string(PASSWD).unwrap_or_default();
        home_of(&passwd, uid).unwrap_or(DEFAULT_HOME).to_string()
    })
}

/// Merge `entries` as runc does and fill in HOME from `home()` when it is missing or empty.
pub fn build(entries: &[String], home: impl FnOnce() -> String) -> Result<Vec<String>> {
    let mut env = merge(entries)?;
    let current = env.iter_mut().find(|e| name_of(e) == "HOME");
    match current {
        Some(e) if e.len() > "HOME=".len() => {}
        Some(e) => *e = format!("HOME={}", home()),
        None => env.push(format!("HOME={}", home())),
    }
    Ok(env)
}

/// `entries` with each name once: at the position of its first entry, with its last value.
pub fn merge(entries: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(entries.len() + 1);
    for entry in entries {
        let Some((name, _)) = entry.split_once('=') else {
            return Err(Error::InvalidSpec(format!("invalid environment variable: {entry:?}")));
        };
        if name.is_empty() {
            return Err(Error::InvalidSpec(format!(
                "environment variable name can't be empty: {entry:?}"
            )));
        }
        // A spec has tens of entries: a linear scan beats building a map.
        match out.iter_mut().find(|e| name_of(e) == name) {
            Some(old) => old.clone_from(entry),
            None => out.push(entry.clone()),
        }
    }
    Ok(out)
}

/// The name of a merged (so well-formed) entry.
fn name_of(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(n, _)| n)
}

/// The home directory of `uid` in passwd(5) text (`name:pw:uid:gid:gecos:home:shell`).
pub fn home_of(passwd: &str, uid: u32) -> Option<&str> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn home() -> String {
        "/home/u".into()
    }

    #[test]
    fn duplicates_keep_first_position_and_last_value() {
        let env = build(&v(&["A=1", "PATH=/bin", "B=x", "A=2", "C=3"]), home).unwrap();
        assert_eq!(env, ["A=2", "PATH=/bin", "B=x", "C=3", "HOME=/home/u"]);
    }

    #[test]
    fn home_is_filled_when_missing_or_empty_and_kept_otherwise() {
        assert_eq!(build(&v(&["HOME=", "X=1"]), home).unwrap(), ["HOME=/home/u", "X=1"]);
        assert_eq!(
            build(&v(&["HOME=/h"]), || panic!("not looked up")).unwrap(),
            ["HOME=/h"]
        );
        assert_eq!(build(&v(&["HOME=/h", "HOME="]), home).unwrap(), ["HOME=/home/u"]);
        assert_eq!(build(&[], home).unwrap(), ["HOME=/home/u"]);
    }

    #[test]
    fn values_are_kept_as_written() {
        let env = build(&v(&["NL=l1\nl2", "EQ=a=b", "SP= x"]), home).unwrap();
        assert_eq!(env[..3], ["NL=l1\nl2", "EQ=a=b", "SP= x"]);
    }

    #[test]
    fn malformed_entries_are_refused_as_runc_refuses_them() {
        let e = merge(&v(&["PATH=/bin", "NOEQ"])).unwrap_err().to_string();
        assert!(e.contains("invalid environment variable") && e.contains("NOEQ"), "{e}");
        let e = merge(&v(&["=v"])).unwrap_err().to_string();
        assert!(e.contains("name can't be empty"), "{e}");
    }

    #[test]
    fn home_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nbad line\nu:x:1000:1000::/home/u:/bin/sh\n";
        assert_eq!(home_of(passwd, 0), Some("/root"));
        assert_eq!(home_of(passwd, 1000), Some("/home/u"));
        assert_eq!(home_of(passwd, 1234), None);
        assert_eq!(home_of("", 0), None);
    }
}
