//! linux.memoryPolicy: the NUMA policy the container's init sets with set_mempolicy(2) before it
//! execs, which the program and its children inherit (fork and execve keep a task's policy).
//!
//! The spec's names map to the kernel's numbers through [`MODES`] and [`FLAGS`]; `features`
//! reports those same tables, so what is reported is what is parsed.

use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

use crate::error::{Error, Result};

/// Every mode hezi sets, by its spec name, with the kernel's number (linux/mempolicy.h).
pub const MODES: &[(&str, i32)] = &[
    ("MPOL_DEFAULT", 0),
    ("MPOL_PREFERRED", 1),
    ("MPOL_BIND", 2),
    ("MPOL_INTERLEAVE", 3),
    ("MPOL_LOCAL", 4),
    ("MPOL_PREFERRED_MANY", 5),
    ("MPOL_WEIGHTED_INTERLEAVE", 6),
];

/// Every mode flag, by its spec name, with the kernel's bit.
pub const FLAGS: &[(&str, i32)] = &[
    ("MPOL_F_NUMA_BALANCING", 1 << 13),
    ("MPOL_F_RELATIVE_NODES", 1 << 14),
    ("MPOL_F_STATIC_NODES", 1 << 15),
];

/// The highest node number accepted: the kernel's MAX_NUMNODES is at most 1 << 10.
const MAX_NODE: usize = 1023;

/// The kernel's number for a mode. oci-spec's parser lets only the spec's names through, and
/// the match is exhaustive, so a mode oci-spec adds fails the build until it is handled here; a
/// unit test checks that [`MODES`] (what `features` reports) says the same.
pub fn mode_number(mode: MemoryPolicyModeType) -> i32 {
    match mode {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    }
}

/// The kernel's bit for a flag; [`FLAGS`] says the same (unit-tested).
pub fn flag_number(flag: MemoryPolicyFlagType) -> i32 {
    match flag {
        MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
        MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
        MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
    }
}

/// What set_mempolicy(2) gets: the mode with its flags, and the node mask.
#[derive(Debug, PartialEq, Eq)]
pub struct Policy {
    pub mode: i32,
    pub mask: Vec<libc::c_ulong>,
    /// Bits in `mask` that matter (0 for no mask).
    pub bits: usize,
}

/// Check a policy as `create` does, before anything is made: the nodes a mode needs, flags that
/// exclude each other, a node list that parses.
pub fn check(p: &LinuxMemoryPolicy) -> Result<Policy> {
    let bad = |why: String| Error::InvalidSpec(format!("linux.memoryPolicy: {why}"));
    let nodes = match p.nodes().as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(text) => parse_nodes(text).map_err(bad)?,
        None => Vec::new(),
    };
    let mode = p.mode();
    match mode {
        MemoryPolicyModeType::MpolDefault | MemoryPolicyModeType::MpolLocal if !nodes.is_empty() => {
            return Err(bad(format!("{mode} takes no nodes, got {:?}", p.nodes())));
        }
        MemoryPolicyModeType::MpolBind
        | MemoryPolicyModeType::MpolInterleave
        | MemoryPolicyModeType::MpolPreferredMany
        | MemoryPolicyModeType::MpolWeightedInterleave
            if nodes.is_empty() =>
        {
            return Err(bad(format!("{mode} needs at least one node in \"nodes\"")));
        }
        _ => {}
    }
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= flag_number(*f);
    }
    let static_relative = flag_number(MemoryPolicyFlagType::MpolFStaticNodes)
        | flag_number(MemoryPolicyFlagType::MpolFRelativeNodes);
    if flags & static_relative == static_relative {
        return Err(bad(
            "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other".into(),
        ));
    }
    if flags != 0 && matches!(mode, MemoryPolicyModeType::MpolDefault | MemoryPolicyModeType::MpolLocal) {
        // The kernel refuses flags with these modes (EINVAL); say so before anything is made.
        return Err(bad(format!("{mode} takes no flags")));
    }
    let bits = nodes.last().map_or(0, |n| n + 1);
    let word = libc::c_ulong::BITS as usize;
    let mut mask = vec![0; bits.div_ceil(word)];
    for n in nodes {
        mask[n / word] |= 1 << (n % word);
    }
    Ok(Policy {
        mode: mode_number(mode) | flags,
        mask,
        bits,
    })
}

/// "0-3,5" → [0, 1, 2, 3, 5], sorted, without repeats.
pub fn parse_nodes(text: &str) -> std::result::Result<Vec<usize>, String> {
    let num = |s: &str| -> std::result::Result<usize, String> {
        let n: usize = s.trim().parse().map_err(|_| format!("nodes {text:?}: {s:?} is not a node number"))?;
        if n > MAX_NODE {
            return Err(format!("nodes {text:?}: node {n} is above {MAX_NODE}"));
        }
        Ok(n)
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("nodes {text:?}: range {part:?} runs backwards"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Set the calling process's policy (the init, before it execs the program).
pub fn apply(p: &Policy) -> Result<()> {
    let mask = if p.mask.is_empty() { std::ptr::null() } else { p.mask.as_ptr() };
    // The kernel reads maxnode - 1 bits (get_nodes' historical off-by-one), so one more.
    let maxnode = if p.bits == 0 { 0 } else { p.bits as libc::c_ulong + 1 };
    // SAFETY: `mask` is null or points at `p.mask`, whose words hold at least `p.bits` bits;
    // the kernel copies it and keeps no pointer.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, p.mode, mask, maxnode) };
    if r != 0 {
        return Err(Error::sys(
            format!("set_mempolicy mode {:#x} nodes {:?}", p.mode, p.mask),
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> LinuxMemoryPolicy {
        serde_json::from_str(json).expect("policy JSON")
    }

    #[test]
    fn the_tables_features_reports_match_the_parser() {
        for (name, number) in MODES {
            let mode: MemoryPolicyModeType = name.parse().expect(name);
            assert_eq!(mode_number(mode), *number, "{name}");
        }
        for (name, number) in FLAGS {
            let flag: MemoryPolicyFlagType = name.parse().expect(name);
            assert_eq!(flag_number(flag), *number, "{name}");
        }
        // And nothing the parser knows is missing from the tables: every variant's Display
        // name (the spec's) has a row.
        use MemoryPolicyModeType as M;
        for m in [M::MpolDefault, M::MpolPreferred, M::MpolBind, M::MpolInterleave, M::MpolLocal,
                  M::MpolPreferredMany, M::MpolWeightedInterleave] {
            assert!(MODES.iter().any(|(n, v)| *n == m.to_string() && *v == mode_number(m)), "{m}");
        }
        use MemoryPolicyFlagType as F;
        for f in [F::MpolFNumaBalancing, F::MpolFRelativeNodes, F::MpolFStaticNodes] {
            assert!(FLAGS.iter().any(|(n, v)| *n == f.to_string() && *v == flag_number(f)), "{f}");
        }
    }

    #[test]
    fn nodes_parse_as_ranges() {
        assert_eq!(parse_nodes("0-3,5").unwrap(), vec![0, 1, 2, 3, 5]);
        assert_eq!(parse_nodes("2,1,2").unwrap(), vec![1, 2]);
        assert!(parse_nodes("3-1").is_err());
        assert!(parse_nodes("a").is_err());
        assert!(parse_nodes("1,").is_err());
        assert!(parse_nodes("4096").is_err());
    }

    #[test]
    fn masks_and_modes() {
        let p = check(&policy(r#"{"mode":"MPOL_BIND","nodes":"0,65","flags":["MPOL_F_STATIC_NODES"]}"#)).unwrap();
        assert_eq!(p.mode, 2 | 1 << 15);
        assert_eq!(p.bits, 66);
        assert_eq!(p.mask, vec![1, 2]);
        let p = check(&policy(r#"{"mode":"MPOL_LOCAL"}"#)).unwrap();
        assert_eq!((p.mode, p.bits), (4, 0));
    }

    #[test]
    fn invalid_policies_are_refused() {
        for bad in [
            r#"{"mode":"MPOL_BIND"}"#,
            r#"{"mode":"MPOL_INTERLEAVE","nodes":""}"#,
            r#"{"mode":"MPOL_DEFAULT","nodes":"0"}"#,
            r#"{"mode":"MPOL_LOCAL","flags":["MPOL_F_STATIC_NODES"]}"#,
            r#"{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES","MPOL_F_RELATIVE_NODES"]}"#,
            r#"{"mode":"MPOL_BIND","nodes":"x"}"#,
        ] {
            let err = check(&policy(bad)).expect_err(bad).to_string();
            assert!(err.contains("linux.memoryPolicy"), "{bad}: {err}");
        }
        // Names outside the spec's never reach check: oci-spec's parser refuses them.
        assert!(serde_json::from_str::<LinuxMemoryPolicy>(r#"{"mode":"MPOL_FOO"}"#).is_err());
        assert!(serde_json::from_str::<LinuxMemoryPolicy>(r#"{"mode":"MPOL_BIND","flags":["MPOL_F_X"]}"#).is_err());
    }
}
