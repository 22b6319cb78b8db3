//! cgroup v2 device rules: v2 has no devices.allow/deny files, so linux.resources.devices are
//! enforced by an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's
//! cgroup. The kernel runs it on every open and mknod of a device node with the device's type,
//! major, minor and the access asked for; a return of 0 denies with EPERM.
//!
//! Semantics are runc's (libcontainer/cgroups/devices): the rules are first run through an
//! emulation of the v1 devices controller, starting from deny-all (runc's allow-list default),
//! in order — the spec's rules, then the default allow list every container gets (see
//! [`device_rules::DEFAULT_ALLOW`]). A type `a` rule resets to allow-all or deny-all; any other rule
//! adds an exception to the current default or removes access from one. What is left is one
//! default plus exceptions that all say the opposite, so the program is: compare the request
//! with each exception, return its verdict on the first match, else return the default. As in
//! runc, removing access that a wildcard exception grants (a deny `c 1:3` after an allow
//! `c *:*`) is an error: v1 silently ignores it, and the container would have the access.
//!
//! The program is emitted here instruction by instruction (no compiler): see [`program`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::bpf;
use super::insn::{Insn, ALU_AND_K, ALU_MOV_K, ALU_MOV_X, ALU_RSH_K, JMP_EXIT, JMP_JNE_K, JMP_JNE_X, LDX_MEM_W};
use crate::cgroups::{device_rules, CgroupError, Result};

/// `bpf_cgroup_dev_ctx.access_type` bits (uapi/linux/bpf.h): the low 16 bits are the device
/// type, the high 16 the access.
pub(crate) const DEV_BLOCK: i32 = 1;
pub(crate) const DEV_CHAR: i32 = 2;
pub(crate) const ACC_MKNOD: u8 = 1;
pub(crate) const ACC_READ: u8 = 2;
pub(crate) const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// The devices a rule matches; `None` is the wildcard `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    /// [`DEV_BLOCK`] or [`DEV_CHAR`].
    pub typ: i32,
    pub major: Option<u32>,
    pub minor: Option<u32>,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        let t = if self.typ == DEV_BLOCK { 'b' } else { 'c' };
        write!(f, "{t} {}:{}", n(self.major), n(self.minor))
    }
}

fn access_str(a: u8) -> String {
    [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')]
        .iter()
        .filter(|(b, _)| a & b != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// One rule in the order given: `typ` None is type `a` (all devices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub allow: bool,
    pub typ: Option<i32>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

fn number(what: &str, v: Option<i64>) -> Result<Option<u32>> {
    match v {
        None => Ok(None),
        // The spec (and runc) write -1 for "any".
        Some(n) if n < 0 => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| CgroupError::Invalid(format!("device rule {what} {n} is out of range"))),
    }
}

fn access_bits(s: &str) -> Result<u8> {
    let mut a = 0;
    for c in s.chars() {
        a |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            // runc takes "a" (all) as rwm too.
            'a' => ACC_ALL,
            _ => {
                return Err(CgroupError::Invalid(format!(
                    "device rule access {s:?}: only r, w, m (or a for all) are allowed"
                )))
            }
        };
    }
    Ok(if a == 0 { ACC_ALL } else { a })
}

impl Rule {
    pub fn from_spec(d: &LinuxDeviceCgroup) -> Result<Rule> {
        let typ = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(DEV_BLOCK),
            LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
            LinuxDeviceType::P => {
                return Err(CgroupError::Invalid(
                    "device rule of type p (FIFO): device rules know only a, b and c".into(),
                ))
            }
        };
        Ok(Rule {
            allow: d.allow(),
            typ,
            major: number("major", d.major())?,
            minor: number("minor", d.minor())?,
            access: access_bits(d.access().as_deref().unwrap_or(""))?,
        })
    }

    /// A v1 rule line as in [`device_rules::DEFAULT_ALLOW`]: `c 1:3 rwm`.
    pub fn parse(allow: bool, line: &str) -> Result<Rule> {
        let bad = || CgroupError::Invalid(format!("device rule {line:?} is not `type major:minor access`"));
        let f: Vec<&str> = line.split_whitespace().collect();
        let [t, mm, acc] = f[..] else { return Err(bad()) };
        let (ma, mi) = mm.split_once(':').ok_or_else(bad)?;
        let n = |s: &str| -> Result<Option<u32>> {
            if s == "*" {
                Ok(None)
            } else {
                s.parse().map(Some).map_err(|_| bad())
            }
        };
        Ok(Rule {
            allow,
            typ: match t {
                "a" => None,
                "b" => Some(DEV_BLOCK),
                "c" => Some(DEV_CHAR),
                _ => return Err(bad()),
            },
            major: n(ma)?,
            minor: n(mi)?,
            access: access_bits(acc)?,
        })
    }
}

/// The state of an emulated v1 devices cgroup: a default and exceptions to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Emulator {
    pub default_allow: bool,
    /// Exceptions (their verdict is `!default_allow`) and the access they cover.
    pub exceptions: BTreeMap<Key, u8>,
}

impl Default for Emulator {
    /// Deny-all, as runc's emulator starts: the rules then say what the container may use.
    fn default() -> Self {
        Emulator {
            default_allow: false,
            exceptions: BTreeMap::new(),
        }
    }
}

impl Emulator {
    pub fn apply(&mut self, r: &Rule) -> Result<()> {
        let Some(typ) = r.typ else {
            // Type a resets, whatever its numbers and access (as the v1 kernel does).
            *self = Emulator {
                default_allow: r.allow,
                exceptions: BTreeMap::new(),
            };
            return Ok(());
        };
        let key = Key {
            typ,
            major: r.major,
            minor: r.minor,
        };
        if r.allow != self.default_allow {
            *self.exceptions.entry(key).or_insert(0) |= r.access;
            return Ok(());
        }
        // A rule agreeing with the default takes access away from the exception it names.
        // Taking it from a narrower rule than a wildcard exception that grants it would not
        // work in v1 (the wildcard still matches), so it is refused as runc does.
        for wider in [
            Key { major: None, ..key },
            Key { minor: None, ..key },
            Key {
                major: None,
                minor: None,
                ..key
            },
        ] {
            if wider == key {
                continue;
            }
            let overlap = self.exceptions.get(&wider).copied().unwrap_or(0) & r.access;
            if overlap != 0 {
                return Err(CgroupError::Invalid(format!(
                    "device rule {} {key} {}: cannot take {} from the wider rule {} {wider} {} that grants it \
                     (cgroup v1 would ignore this rule)",
                    if r.allow { "allow" } else { "deny" },
                    access_str(r.access),
                    access_str(overlap),
                    if r.allow { "deny" } else { "allow" },
                    access_str(self.exceptions[&wider]),
                )));
            }
        }
        if let Some(a) = self.exceptions.get_mut(&key) {
            *a &= !r.access;
            if *a == 0 {
                self.exceptions.remove(&key);
            }
        }
        Ok(())
    }

    /// The spec's rules followed by the default allow list.
    pub fn from_spec(devs: &[LinuxDeviceCgroup]) -> Result<Emulator> {
        let mut e = Emulator::default();
        for d in devs {
            e.apply(&Rule::from_spec(d)?)?;
        }
        for line in device_rules::DEFAULT_ALLOW {
            e.apply(&Rule::parse(true, line)?)?;
        }
        Ok(e)
    }
}

/// The program for an emulated rule set. Registers: r1 the context on entry (then scratch), r2
/// the device type, r3 the access asked for, r4 the major, r5 the minor.
///
/// ```text
/// r2 = type; r3 = access; r4 = major; r5 = minor
/// per exception:  if r2 != TYPE goto next
///                 [if (r3 & ACCESS) != r3 goto next]   unless it grants rwm
///                 [if r4 != MAJOR goto next]           unless *
///                 [if r5 != MINOR goto next]           unless *
///                 r0 = verdict; exit
/// next:           …
/// r0 = default; exit
/// ```
/// Every exception has the same verdict, so their order does not matter; the comparisons are
/// 64-bit against sign-extended immediates, which is exact for majors (12 bits) and minors (20
/// bits) — a number beyond 2^31 matches no device either way.
pub(crate) fn program(e: &Emulator) -> Vec<Insn> {
    let mut p = vec![
        Insn::new(LDX_MEM_W, 2, 1, 0, 0),
        Insn::new(ALU_AND_K, 2, 0, 0, 0xffff),
        Insn::new(LDX_MEM_W, 3, 1, 0, 0),
        Insn::new(ALU_RSH_K, 3, 0, 0, 16),
        Insn::new(LDX_MEM_W, 4, 1, 4, 0),
        Insn::new(LDX_MEM_W, 5, 1, 8, 0),
    ];
    let verdict = i32::from(!e.default_allow);
    for (key, &access) in &e.exceptions {
        // Jumps are filled in once the block's length is known: `off` = instructions to skip.
        let mut block = vec![Insn::new(JMP_JNE_K, 2, 0, 0, key.typ)];
        if access != ACC_ALL {
            block.extend([
                Insn::new(ALU_MOV_X, 1, 3, 0, 0),
                Insn::new(ALU_AND_K, 1, 0, 0, i32::from(access)),
                Insn::new(JMP_JNE_X, 1, 3, 0, 0),
            ]);
        }
        if let Some(m) = key.major {
            block.push(Insn::new(JMP_JNE_K, 4, 0, 0, m as i32));
        }
        if let Some(m) = key.minor {
            block.push(Insn::new(JMP_JNE_K, 5, 0, 0, m as i32));
        }
        block.extend([Insn::new(ALU_MOV_K, 0, 0, 0, verdict), Insn::new(JMP_EXIT, 0, 0, 0, 0)]);
        let len = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if matches!(insn.code, JMP_JNE_K | JMP_JNE_X) {
                // A block is a handful of instructions: always fits.
                insn.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.extend([
        Insn::new(ALU_MOV_K, 0, 0, 0, i32::from(e.default_allow)),
        Insn::new(JMP_EXIT, 0, 0, 0, 0),
    ]);
    p
}

/// Text of a program, one instruction a line: `6: if r2 != 2 goto +4`.
pub(crate) fn dump(p: &[Insn]) -> String {
    p.iter().enumerate().map(|(i, insn)| format!("{i}: {insn}\n")).collect()
}

/// Enforce `devs` on the cgroup v2 directory `dir`: emulate, emit, load, attach, and detach
/// the device programs attached before (an `update`, or a re-applied spec).
pub(crate) fn apply(dir: &Path, devs: &[LinuxDeviceCgroup]) -> Result<()> {
    let e = Emulator::from_spec(devs)?;
    let insns = program(&e);
    tracing::debug!("device program for {}:\n{}", dir.display(), dump(&insns));
    bpf::replace_device_program(dir, &insns)
}

#[cfg(test)]
#[path = "device_filter_tests.rs"]
mod tests;
