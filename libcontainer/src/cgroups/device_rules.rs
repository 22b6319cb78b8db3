//! cgroup v1 device rules (devices.allow / devices.deny lines) from the spec.
//!
//! A device list starts from deny-all, as runc's (whose emulator defaults to an allow list, on
//! v1 and v2 alike): `a *:* rwm` goes to devices.deny first. Then the spec's rules are written
//! in order, each an allow or a deny, so later rules open holes (or, after an allow-all `a`
//! rule, close them). After them come the devices the runtime spec requires in every container
//! (null, zero, full, random, urandom, tty, ptmx, the pts consoles) plus mknod of any node and
//! /dev/net/tun: runc's default allow list. Without it a deny-all spec would break /dev/null.
//! The v2 eBPF program (`v2_devices`) follows the same order.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::{CgroupError, Result};

/// runc's `AllowedDevices`, appended after the spec's rules.
pub(crate) const DEFAULT_ALLOW: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:8 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:5 rwm",
    "c 1:9 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

/// One rule as the kernel reads it, e.g. `c 1:3 rwm`; `true` for devices.allow.
pub(crate) fn rule(d: &LinuxDeviceCgroup) -> Result<(bool, String)> {
    let typ = match d.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => "a",
        LinuxDeviceType::B => "b",
        LinuxDeviceType::C | LinuxDeviceType::U => "c",
        LinuxDeviceType::P => {
            return Err(CgroupError::Invalid(
                "device rule of type p (FIFO): the devices cgroup only knows a, b and c".into(),
            ))
        }
    };
    let num = |n: Option<i64>| match n {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".to_string(),
    };
    let asked = d.access().as_deref().unwrap_or("");
    if !asked.chars().all(|c| matches!(c, 'r' | 'w' | 'm' | 'a')) {
        return Err(CgroupError::Invalid(format!(
            "device rule access {asked:?}: only r, w, m (or a for all) are allowed"
        )));
    }
    // The kernel takes only r, w and m; runc reads "a" (and no access at all) as all three.
    let access = if asked.is_empty() || asked.contains('a') {
        "rwm".to_string()
    } else {
        asked.to_string()
    };
    Ok((
        d.allow(),
        format!("{typ} {}:{} {access}", num(d.major()), num(d.minor())),
    ))
}

/// The lines to write, in order: deny-all, the spec's rules, then the default allow list.
pub(crate) fn rules(devs: &[LinuxDeviceCgroup]) -> Result<Vec<(bool, String)>> {
    let mut out = vec![(false, "a *:* rwm".to_string())];
    for d in devs {
        out.push(rule(d)?);
    }
    out.extend(DEFAULT_ALLOW.iter().map(|r| (true, r.to_string())));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(json: &str) -> LinuxDeviceCgroup {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rule_lines() {
        assert_eq!(
            rule(&dev(r#"{"allow":false,"access":"rwm"}"#)).unwrap(),
            (false, "a *:* rwm".into())
        );
        assert_eq!(
            rule(&dev(r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}"#)).unwrap(),
            (true, "c 1:3 rw".into())
        );
        assert_eq!(
            rule(&dev(r#"{"allow":true,"type":"b","major":8}"#)).unwrap(),
            (true, "b 8:* rwm".into())
        );
        assert!(rule(&dev(r#"{"allow":true,"type":"p"}"#)).is_err());
        assert!(rule(&dev(r#"{"allow":true,"access":"rx"}"#)).is_err());
        // runc's "a" is all three; any order of r, w and m is kept as given.
        assert_eq!(
            rule(&dev(r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"a"}"#)).unwrap(),
            (true, "c 1:3 rwm".to_string())
        );
        assert_eq!(
            rule(&dev(r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"mwr"}"#)).unwrap(),
            (true, "c 1:3 mwr".to_string())
        );
    }

    #[test]
    fn deny_all_then_spec_rules_then_defaults() {
        let r = rules(&[dev(r#"{"allow":true,"type":"b","major":7,"access":"r"}"#)]).unwrap();
        assert_eq!(r[0], (false, "a *:* rwm".into()));
        assert_eq!(r[1], (true, "b 7:* r".into()));
        assert_eq!(r.len(), 2 + DEFAULT_ALLOW.len());
        assert!(r[1..].iter().all(|(allow, _)| *allow));
    }
}
