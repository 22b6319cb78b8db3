//! Dropping to the container's user and capability sets, in the order that keeps the spec's
//! capabilities across the uid change:
//!
//! 1. drop the bounding set (needs CAP_SETPCAP, so while still root);
//! 2. PR_SET_KEEPCAPS, then setgroups/setgid/setuid (permitted survives, effective is cleared),
//!    then the caller's `after_user` step;
//! 3. set effective, inheritable, then permitted (effective must stay within permitted);
//! 4. raise the ambient set (each must be permitted and inheritable).
//!
//! no_new_privs is set by the caller afterwards, right before the seccomp filter and exec.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{Capabilities, LinuxCapabilities, Process};

use crate::error::{Error, Result, SysContext};

fn to_caps(set: &Option<Capabilities>) -> Result<HashSet<Capability>> {
    let mut out = HashSet::new();
    for c in set.iter().flatten() {
        let name = format!("CAP_{c}");
        let cap = Capability::from_str(&name).map_err(|_| Error::InvalidSpec(format!("unknown capability {name}")))?;
        out.insert(cap);
    }
    Ok(out)
}

fn caps_err(what: &str) -> impl FnOnce(caps::errors::CapsError) -> Error + '_ {
    move |e| Error::Other(format!("{what}: {e}"))
}

/// Take on the process's user and capabilities. `after_user` runs once the uids changed and
/// before the capabilities are set: runc's moment for its second try at the cwd.
pub fn apply(process: &Process, after_user: impl FnOnce() -> Result<()>) -> Result<()> {
    let user = process.user();
    let spec_caps = process.capabilities().as_ref();
    if let Some(c) = spec_caps {
        let keep = to_caps(c.bounding())?;
        let supported = caps::runtime::thread_all_supported();
        for cap in supported.difference(&keep) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(caps_err(&format!("drop {cap} from the bounding set")))?;
        }
    }
    nix::sys::prctl::set_keepcaps(true).ctx(|| "set PR_SET_KEEPCAPS".into())?;
    let gids: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    set_groups(&gids)?;
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).ctx(|| format!("setgid {gid}"))?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).ctx(|| format!("setuid {uid}"))?;
    after_user()?;
    nix::sys::prctl::set_keepcaps(false).ctx(|| "clear PR_SET_KEEPCAPS".into())?;
    let Some(c) = spec_caps else {
        return Ok(());
    };
    let effective = to_caps(c.effective())?;
    let permitted = to_caps(c.permitted())?;
    if !effective.is_subset(&permitted) {
        return Err(Error::InvalidSpec(
            "effective capabilities must be a subset of permitted".into(),
        ));
    }
    // What this process holds is all it can grant (PR_SET_KEEPCAPS kept the permitted set
    // across the uid change): a runtime in a restricted environment (a bounding set without
    // CAP_SYS_RESOURCE, a nested container) leaves the rest out with a warning, as config.md
    // asks ("runtimes SHOULD NOT fail"), instead of failing in capset.
    let held = grantable(c)?;
    let (effective, permitted) = (&effective & &held, &permitted & &held);
    let inheritable = &to_caps(c.inheritable())? & &held;
    caps::set(None, CapSet::Effective, &effective).map_err(caps_err("set effective capabilities"))?;
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(caps_err("set inheritable capabilities"))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(caps_err("set permitted capabilities"))?;
    caps::clear(None, CapSet::Ambient).map_err(caps_err("clear ambient capabilities"))?;
    for cap in to_caps(c.ambient())? {
        // The kernel only allows ambient capabilities that are also permitted and inheritable.
        // runc's default spec lists ambient ones without inheritable; like runc, skip those.
        if !(permitted.contains(&cap) && inheritable.contains(&cap)) {
            tracing::debug!("ambient {cap} skipped: not in both permitted and inheritable");
            continue;
        }
        caps::raise(None, CapSet::Ambient, cap).map_err(caps_err(&format!("raise ambient {cap}")))?;
    }
    Ok(())
}

/// The capabilities this process holds (its permitted set), with a warning naming those the
/// spec asks for in any set that are not among them.
fn grantable(c: &LinuxCapabilities) -> Result<HashSet<Capability>> {
    let held = caps::read(None, CapSet::Permitted).map_err(caps_err("read the permitted capabilities"))?;
    let mut missing = Vec::new();
    for set in [c.bounding(), c.effective(), c.permitted(), c.inheritable(), c.ambient()] {
        for cap in to_caps(set)? {
            if !held.contains(&cap) && !missing.contains(&cap) {
                missing.push(cap);
            }
        }
    }
    if !missing.is_empty() {
        let mut names: Vec<String> = missing.iter().map(|c| c.to_string()).collect();
        names.sort();
        tracing::warn!(
            "process.capabilities: {} cannot be granted (the runtime does not hold them here); left out",
            names.join(", ")
        );
    }
    Ok(held)
}

pub fn no_new_privs(process: &Process) -> Result<()> {
    if process.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs().ctx(|| "set no_new_privs".into())?;
    }
    Ok(())
}

/// setgroups(2), unless the user namespace denies it: an unprivileged caller that mapped only its
/// own gid had to deny it (idmap.rs). The process then keeps no supplementary groups, as there
/// are none mapped to keep; asking for some is an error, as with runc.
fn set_groups(gids: &[Gid]) -> Result<()> {
    if setgroups_denied() {
        if gids.is_empty() {
            return Ok(());
        }
        return Err(Error::InvalidSpec(format!(
            "additionalGids {gids:?} need setgroups, which this user namespace denies (a single \
             gid mapped by an unprivileged user; map ranges through newgidmap instead)"
        )));
    }
    setgroups(gids).ctx(|| format!("setgroups {gids:?}"))
}

/// Whether /proc/self/setgroups says "deny" (absent before Linux 3.19: allowed).
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}
