//! `--cap-add` / `--cap-drop` and `--privileged`'s capability set. Names are checked against
//! the kernel's capability list when the flags are parsed (`CAP_` optional, any case, `ALL` for
//! every one); the sets are changed as containerd's CRI does: `ALL` first (add: every
//! capability hezi holds; drop: none), then the named additions, then the named drops.

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Linux's capabilities, by number (include/uapi/linux/capability.h).
const NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The sets the process gets capabilities in (containerd's defaults have no inheritable or
/// ambient ones; a drop clears those too, should a later option have set them).
const ADD_TO: &[&str] = &["bounding", "effective", "permitted"];
const DROP_FROM: &[&str] = &["bounding", "effective", "permitted", "inheritable", "ambient"];

/// `--cap-add` and `--cap-drop`, checked.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    add_all: bool,
    drop_all: bool,
    add: Vec<String>,
    drop: Vec<String>,
}

/// `name` as the spec spells it (`CAP_NET_RAW`), or None for `ALL`.
fn canonical(flag: &str, name: &str) -> Result<Option<String>> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(None);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if NAMES.contains(&full.as_str()) {
        Ok(Some(full))
    } else {
        Err(Error::Invalid(format!(
            "--{flag} {name:?}: unknown capability (a name such as CAP_NET_ADMIN or NET_ADMIN, or ALL)"
        )))
    }
}

impl Changes {
    pub fn new(add: &[String], drop: &[String]) -> Result<Changes> {
        let mut c = Changes::default();
        for (flag, names, all, list) in [
            ("cap-add", add, &mut c.add_all, &mut c.add),
            ("cap-drop", drop, &mut c.drop_all, &mut c.drop),
        ] {
            for n in names {
                match canonical(flag, n)? {
                    None => *all = true,
                    Some(cap) if !list.contains(&cap) => list.push(cap),
                    Some(_) => {}
                }
            }
        }
        Ok(c)
    }

    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }

    /// Change the spec's process capabilities.
    pub fn apply(&self, spec: &mut Value) -> Result<()> {
        if self.add_all {
            set_all(spec, &current()?);
        }
        if self.drop_all {
            set_all(spec, &[]);
        }
        let caps = &mut spec["process"]["capabilities"];
        for set in ADD_TO {
            let mut list = names_of(&caps[set]);
            for c in &self.add {
                if !list.contains(c) {
                    list.push(c.clone());
                }
            }
            caps[set] = json!(list);
        }
        for set in DROP_FROM {
            if caps.get(set).is_some() {
                let list: Vec<String> = names_of(&caps[set])
                    .into_iter()
                    .filter(|c| !self.drop.contains(c))
                    .collect();
                caps[set] = json!(list);
            }
        }
        Ok(())
    }
}

fn names_of(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Bounding, effective and permitted set to `caps`; inheritable narrowed to them (as
/// containerd's WithCapabilities does).
pub fn set_all(spec: &mut Value, caps: &[String]) {
    let c = &mut spec["process"]["capabilities"];
    for set in ADD_TO {
        c[set] = json!(caps);
    }
    for set in ["inheritable", "ambient"] {
        if c.get(set).is_some() {
            let kept: Vec<String> = names_of(&c[set]).into_iter().filter(|x| caps.contains(x)).collect();
            c[set] = json!(kept);
        }
    }
}

/// Every capability hezi itself holds (its effective set), by name: what `--privileged` and
/// `--cap-add ALL` give, as ctr does (the caller cannot hand out more than it has).
pub fn current() -> Result<Vec<String>> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| Error::io("read /proc/self/status for hezi's capabilities", e))?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .ok_or_else(|| Error::Invalid("/proc/self/status has no CapEff line".into()))?;
    let mask = u64::from_str_radix(hex.trim(), 16)
        .map_err(|e| Error::Invalid(format!("/proc/self/status CapEff {:?}: {e}", hex.trim())))?;
    Ok(from_mask(mask))
}

/// The names of the capabilities set in `mask` (bits this table does not name are left out:
/// a capability newer than hezi has no name to give the spec).
fn from_mask(mask: u64) -> Vec<String> {
    NAMES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn spec() -> Value {
        let mut spec = crate::spec::default_spec("c");
        spec["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL", "CAP_SYS_ADMIN"]);
        spec
    }

    #[test]
    fn names_in_every_spelling() {
        let c = Changes::new(&s(&["net_admin", "CAP_SYS_TIME", "Sys_Admin"]), &s(&["chown"])).unwrap();
        assert_eq!(c.add, ["CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_SYS_ADMIN"]);
        assert_eq!(c.drop, ["CAP_CHOWN"]);
        let e = Changes::new(&s(&["CAP_FLY"]), &[]).unwrap_err().to_string();
        assert!(e.contains("--cap-add \"CAP_FLY\": unknown capability"), "{e}");
        let e = Changes::new(&[], &s(&["bogus"])).unwrap_err().to_string();
        assert!(e.contains("--cap-drop \"bogus\""), "{e}");
        assert!(Changes::new(&[], &[]).unwrap().is_empty());
    }

    #[test]
    fn add_then_drop() {
        let mut sp = spec();
        Changes::new(&s(&["NET_ADMIN"]), &s(&["CHOWN", "KILL"]))
            .unwrap()
            .apply(&mut sp)
            .unwrap();
        let eff = names_of(&sp["process"]["capabilities"]["effective"]);
        assert!(eff.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!eff.contains(&"CAP_CHOWN".to_string()) && !eff.contains(&"CAP_KILL".to_string()));
        assert_eq!(eff.len(), crate::spec::DEFAULT_CAPS.len() - 1);
        assert_eq!(sp["process"]["capabilities"]["inheritable"], json!(["CAP_SYS_ADMIN"]));
    }

    #[test]
    fn drop_all_then_add_one() {
        let mut sp = spec();
        Changes::new(&s(&["NET_RAW"]), &s(&["ALL"]))
            .unwrap()
            .apply(&mut sp)
            .unwrap();
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(sp["process"]["capabilities"][set], json!(["CAP_NET_RAW"]), "{set}");
        }
        assert_eq!(sp["process"]["capabilities"]["inheritable"], json!([]));
    }

    #[test]
    fn add_all_then_drop_one() {
        let mut sp = spec();
        Changes::new(&s(&["all"]), &s(&["CAP_CHOWN"]))
            .unwrap()
            .apply(&mut sp)
            .unwrap();
        let eff = names_of(&sp["process"]["capabilities"]["effective"]);
        let held = current().unwrap();
        assert!(!eff.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(eff.len(), held.iter().filter(|c| *c != "CAP_CHOWN").count());
    }

    #[test]
    fn masks() {
        assert_eq!(from_mask(0), Vec::<String>::new());
        assert_eq!(from_mask(0b1000_0001), ["CAP_CHOWN", "CAP_SETUID"]);
        assert_eq!(from_mask(u64::MAX).len(), NAMES.len());
        assert_eq!(NAMES[21], "CAP_SYS_ADMIN");
        assert_eq!(NAMES[40], "CAP_CHECKPOINT_RESTORE");
    }
}
