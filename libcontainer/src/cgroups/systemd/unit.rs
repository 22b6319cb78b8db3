//! What the systemd driver asks systemd for: the scope unit and slice a cgroupsPath of the form
//! `slice:prefix:name` names (runc's reading), the cgroup directory systemd gives that scope, and
//! the unit properties that carry the spec's resources.

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use super::super::convert::{blkio_weight_to_io_weight, shares_to_weight, swap_to_v2, V2Value};
use super::super::{CgroupError, Result};
use super::wire::Writer;

/// The slice of a container whose cgroupsPath leaves it empty, as runc (rootless, in the
/// user's own manager: user.slice).
const DEFAULT_SLICE: &str = "system.slice";
const DEFAULT_USER_SLICE: &str = "user.slice";

/// A container's transient scope unit and the slice it lives in (saved in the container state).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SystemdUnit {
    pub slice: String,
    pub unit: String,
    /// The unit is the calling user's manager's (`systemd --user`), not PID 1's: rootless.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user: bool,
}

impl SystemdUnit {
    /// Read `cgroups_path` as runc's systemd driver does: `slice:prefix:name` gives the scope
    /// `prefix-name.scope` (`name.scope` with no prefix) in `slice` (system.slice when empty).
    /// No cgroupsPath gives `system.slice:hezi:<id>` (`user`: the user's manager's unit, in
    /// user.slice).
    pub fn parse(cgroups_path: Option<&str>, id: &str, user: bool) -> Result<SystemdUnit> {
        let default_slice = if user { DEFAULT_USER_SLICE } else { DEFAULT_SLICE };
        let given = cgroups_path.filter(|p| !p.is_empty());
        let text = given.map_or_else(|| format!("{default_slice}:hezi:{id}"), str::to_string);
        let parts: Vec<&str> = text.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(CgroupError::Invalid(format!(
                "cgroupsPath {text:?}: with --systemd-cgroup it must have the form slice:prefix:name"
            )));
        };
        let slice = if slice.is_empty() { default_slice } else { slice };
        check_slice(slice)?;
        if name.is_empty() {
            return Err(CgroupError::Invalid(format!(
                "cgroupsPath {text:?}: the name part is empty"
            )));
        }
        if name.ends_with(".slice") {
            return Err(CgroupError::Invalid(format!(
                "cgroupsPath {text:?}: hezi runs a container in a scope unit, not in a slice of its own"
            )));
        }
        let unit = if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        check_unit_name(&unit, &text)?;
        Ok(SystemdUnit {
            slice: slice.to_string(),
            unit,
            user,
        })
    }

    /// The scope's cgroup below its manager's root cgroup (the hierarchy's root for PID 1),
    /// where systemd puts it: the slice expanded into its parents (`a-b.slice` is
    /// `/a.slice/a-b.slice`), then the unit.
    pub fn cgroup_path(&self) -> PathBuf {
        let mut p = PathBuf::from("/");
        p.push(expand_slice(&self.slice));
        p.push(&self.unit);
        p
    }
}

/// `a-b-c.slice` → `a.slice/a-b.slice/a-b-c.slice`; the root slice `-.slice` → empty.
fn expand_slice(slice: &str) -> String {
    if slice == "-.slice" {
        return String::new();
    }
    let stem = slice.trim_end_matches(".slice");
    let mut out = Vec::new();
    let mut acc = String::new();
    for part in stem.split('-') {
        if !acc.is_empty() {
            acc.push('-');
        }
        acc.push_str(part);
        out.push(format!("{acc}.slice"));
    }
    out.join("/")
}

/// A slice name systemd accepts: `*.slice`, no `/`, and no empty part between dashes.
fn check_slice(slice: &str) -> Result<()> {
    let bad = |why: &str| Err(CgroupError::Invalid(format!("slice {slice:?} {why}")));
    if slice == "-.slice" {
        return Ok(());
    }
    let Some(stem) = slice.strip_suffix(".slice") else {
        return bad("does not end in .slice");
    };
    if slice.contains('/') {
        return bad("contains a /");
    }
    if stem.split('-').any(str::is_empty) {
        return bad("has an empty part between dashes");
    }
    check_unit_name(slice, slice)
}

/// systemd's unit name rules: at most 255 bytes of `[A-Za-z0-9:_.\\@-]`.
fn check_unit_name(unit: &str, given: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c);
    if unit.len() > 255 || !unit.chars().all(ok) {
        return Err(CgroupError::Invalid(format!(
            "cgroupsPath {given:?}: {unit:?} is not a valid systemd unit name"
        )));
    }
    Ok(())
}

/// A unit property value, as systemd's D-Bus API types it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Str(String),
    U64(u64),
    /// `au`
    Pids(Vec<u32>),
    /// `ay`: a CPU or NUMA node bitmask, byte i bit j is number 8i+j.
    Mask(Vec<u8>),
}

pub type Property = (&'static str, Value);

/// Marshal `props` as `a(sv)`.
pub fn write_properties(w: &mut Writer, props: &[Property]) {
    w.array(8, |w| {
        for (name, value) in props {
            w.strukt(|w| {
                w.str(name);
                match value {
                    Value::Bool(b) => w.variant("b", |w| w.bool(*b)),
                    Value::Str(s) => w.variant("s", |w| w.str(s)),
                    Value::U64(n) => w.variant("t", |w| w.u64(*n)),
                    Value::Pids(p) => w.variant("au", |w| w.array(4, |w| p.iter().for_each(|&p| w.u32(p)))),
                    Value::Mask(m) => w.variant("ay", |w| w.array(1, |w| m.iter().for_each(|&b| w.byte(b)))),
                }
            })
        }
    });
}

/// The properties of a new scope holding `pid`. Delegate: the container's cgroup (and anything
/// below it) is hezi's to write; systemd keeps its hands off.
pub fn scope_properties(unit: &SystemdUnit, pid: u32) -> Vec<Property> {
    vec![
        ("Description", Value::Str(format!("hezi container scope {}", unit.unit))),
        ("Slice", Value::Str(unit.slice.clone())),
        ("Delegate", Value::Bool(true)),
        ("DefaultDependencies", Value::Bool(false)),
        ("PIDs", Value::Pids(vec![pid])),
        // Accounting keeps systemd from turning these controllers off in the slice later.
        ("MemoryAccounting", Value::Bool(true)),
        ("CPUAccounting", Value::Bool(true)),
        ("IOAccounting", Value::Bool(true)),
        ("TasksAccounting", Value::Bool(true)),
    ]
}

/// The spec's resources as systemd properties (the unified names, which systemd 244 and later
/// also maps onto cgroup v1), so that systemd's own view of the unit matches what hezi writes
/// into cgroupfs and a `systemctl daemon-reload` does not undo it. Values follow runc's
/// conversions; "unlimited" is systemd's infinity, u64::MAX.
pub fn resource_properties(r: &LinuxResources) -> Result<Vec<Property>> {
    let mut props = Vec::new();
    let limit = |v: V2Value| match v {
        V2Value::Max => Value::U64(u64::MAX),
        V2Value::Num(n) => Value::U64(n),
    };
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit().filter(|&l| l != 0) {
            props.push(("MemoryMax", limit(V2Value::from_limit(l))));
        }
        if let Some(l) = m.reservation().filter(|&l| l != 0) {
            props.push(("MemoryLow", limit(V2Value::from_limit(l))));
        }
        if let Some(s) = swap_to_v2(m.swap(), m.limit())? {
            props.push(("MemorySwapMax", limit(s)));
        }
    }
    if let Some(p) = r.pids() {
        let l = p.limit();
        if l != 0 {
            props.push(("TasksMax", limit(V2Value::from_limit(l))));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            props.push(("CPUWeight", Value::U64(shares_to_weight(s))));
        }
        let quota = c.quota().unwrap_or(0);
        let period = c.period().unwrap_or(0);
        if quota != 0 || period != 0 {
            let period = if period == 0 { 100_000 } else { period };
            props.push(("CPUQuotaPeriodUSec", Value::U64(period)));
            if quota != 0 {
                props.push(("CPUQuotaPerSecUSec", cpu_quota_per_sec(quota, period)));
            }
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            props.push(("AllowedCPUs", Value::Mask(list_to_mask(cpus)?)));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            props.push(("AllowedMemoryNodes", Value::Mask(list_to_mask(mems)?)));
        }
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()).filter(|&w| w != 0) {
        props.push(("IOWeight", Value::U64(blkio_weight_to_io_weight(w))));
    }
    Ok(props)
}

/// systemd keeps a CPU quota as a whole percentage of one CPU: a quota that is not a multiple
/// of 1% would be rounded down there, below what cpu.max says. Round up to the next 10 ms per
/// second instead, as runc does. A negative quota is no quota.
fn cpu_quota_per_sec(quota: i64, period: u64) -> Value {
    let Ok(q) = u64::try_from(quota) else {
        return Value::U64(u64::MAX);
    };
    let per_sec = q.saturating_mul(1_000_000) / period;
    Value::U64(per_sec.div_ceil(10_000).saturating_mul(10_000))
}

/// A cpuset list (`0-2,5`) as systemd's bitmask bytes.
fn list_to_mask(list: &str) -> Result<Vec<u8>> {
    let bad = || CgroupError::Invalid(format!("cpuset list {list:?} is not of the form 0-2,5"));
    let mut mask: Vec<u8> = Vec::new();
    for part in list.trim().split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>(), b.trim().parse::<usize>()),
            None => (part.trim().parse::<usize>(), part.trim().parse::<usize>()),
        };
        let (lo, hi) = (lo.map_err(|_| bad())?, hi.map_err(|_| bad())?);
        // 8192 is far above any real CPU count and keeps a typo from allocating gigabytes.
        if lo > hi || hi >= 8192 {
            return Err(bad());
        }
        for n in lo..=hi {
            if mask.len() <= n / 8 {
                mask.resize(n / 8 + 1, 0);
            }
            mask[n / 8] |= 1 << (n % 8);
        }
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    };

    fn unit(p: Option<&str>) -> Result<SystemdUnit> {
        SystemdUnit::parse(p, "c1", false)
    }

    #[test]
    fn a_rootless_unit_is_the_users_managers_in_user_slice() {
        let u = SystemdUnit::parse(None, "c1", true).unwrap();
        assert_eq!(
            (u.slice.as_str(), u.unit.as_str(), u.user),
            ("user.slice", "hezi-c1.scope", true)
        );
        assert_eq!(u.cgroup_path(), PathBuf::from("/user.slice/hezi-c1.scope"));
        let u = SystemdUnit::parse(Some(":p:n"), "c1", true).unwrap();
        assert_eq!(u.slice, "user.slice");
        // Saved state from before the field reads as PID 1's unit.
        let old: SystemdUnit = serde_json::from_str(r#"{"slice": "system.slice", "unit": "a.scope"}"#).unwrap();
        assert!(!old.user);
    }

    #[test]
    fn slice_prefix_name_as_runc_reads_it() {
        let u = unit(Some("machine.slice:hezi:c1")).unwrap();
        assert_eq!((u.slice.as_str(), u.unit.as_str()), ("machine.slice", "hezi-c1.scope"));
        assert_eq!(u.cgroup_path(), PathBuf::from("/machine.slice/hezi-c1.scope"));
        let u = unit(Some(":cri-containerd:abc")).unwrap();
        assert_eq!(u.cgroup_path(), PathBuf::from("/system.slice/cri-containerd-abc.scope"));
        let u = unit(Some("kubepods-besteffort-pod1.slice::abc")).unwrap();
        assert_eq!(
            u.cgroup_path(),
            PathBuf::from("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/abc.scope")
        );
        assert_eq!(
            unit(Some("-.slice:p:n")).unwrap().cgroup_path(),
            PathBuf::from("/p-n.scope")
        );
    }

    #[test]
    fn no_cgroups_path_is_system_slice_hezi_id() {
        for p in [None, Some("")] {
            assert_eq!(
                unit(p).unwrap().cgroup_path(),
                PathBuf::from("/system.slice/hezi-c1.scope")
            );
        }
    }

    #[test]
    fn refuses_what_systemd_would() {
        for (bad, why) in [
            ("/hezi/c1", "slice:prefix:name"),
            ("a:b", "slice:prefix:name"),
            ("a.slice:b:c:d", "slice:prefix:name"),
            ("system:hezi:c1", "does not end in .slice"),
            ("a--b.slice:p:n", "empty part"),
            ("-a.slice:p:n", "empty part"),
            ("a/b.slice:p:n", "contains a /"),
            ("system.slice:p:", "name part is empty"),
            ("system.slice:p:n/../x", "not a valid systemd unit name"),
            ("system.slice:p:child.slice", "not in a slice of its own"),
        ] {
            let e = unit(Some(bad)).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    fn props(r: LinuxResources) -> Vec<Property> {
        resource_properties(&r).unwrap()
    }

    #[test]
    fn resources_become_unified_properties() {
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(256 << 20)
                    .reservation(128 << 20)
                    .swap(512 << 20)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(20).build().unwrap())
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(1024u64)
                    .quota(50_000)
                    .period(100_000u64)
                    .cpus("0-1,3")
                    .mems("0")
                    .build()
                    .unwrap(),
            )
            .block_io(LinuxBlockIoBuilder::default().weight(500u16).build().unwrap())
            .build()
            .unwrap();
        let p = props(r);
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Value::U64(256 << 20)));
        assert_eq!(get("MemoryLow"), Some(Value::U64(128 << 20)));
        assert_eq!(get("MemorySwapMax"), Some(Value::U64(256 << 20)));
        assert_eq!(get("TasksMax"), Some(Value::U64(20)));
        assert_eq!(get("CPUWeight"), Some(Value::U64(39)));
        assert_eq!(get("CPUQuotaPeriodUSec"), Some(Value::U64(100_000)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::U64(500_000)));
        assert_eq!(get("AllowedCPUs"), Some(Value::Mask(vec![0b1011])));
        assert_eq!(get("AllowedMemoryNodes"), Some(Value::Mask(vec![1])));
        assert_eq!(get("IOWeight"), Some(Value::U64(4950)));
    }

    #[test]
    fn unlimited_values_are_infinity_and_zero_is_unset() {
        let r = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(-1).reservation(0).build().unwrap())
            .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
            .cpu(LinuxCpuBuilder::default().quota(-1).shares(0u64).build().unwrap())
            .build()
            .unwrap();
        let p = props(r);
        let names: Vec<&str> = p.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "MemoryMax",
                "MemorySwapMax",
                "TasksMax",
                "CPUQuotaPeriodUSec",
                "CPUQuotaPerSecUSec"
            ]
        );
        for (n, v) in &p {
            if *n != "CPUQuotaPeriodUSec" {
                assert_eq!(*v, Value::U64(u64::MAX), "{n}");
            }
        }
    }

    #[test]
    fn fractional_cpu_quota_rounds_up_to_a_whole_percent() {
        assert_eq!(cpu_quota_per_sec(12_345, 100_000), Value::U64(130_000));
        assert_eq!(cpu_quota_per_sec(10_000, 100_000), Value::U64(100_000));
        assert_eq!(cpu_quota_per_sec(200_000, 100_000), Value::U64(2_000_000));
    }

    #[test]
    fn cpu_lists_to_masks() {
        assert_eq!(list_to_mask("0").unwrap(), [1]);
        assert_eq!(list_to_mask("8-9").unwrap(), [0, 3]);
        assert_eq!(list_to_mask("1,3 , 5-6").unwrap(), [0b0110_1010]);
        for bad in ["", "a", "3-1", "0-99999", "1-"] {
            assert!(list_to_mask(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn properties_marshal_as_an_array_of_name_variant_structs() {
        let mut w = Writer::default();
        write_properties(
            &mut w,
            &[("PIDs", Value::Pids(vec![7])), ("AllowedCPUs", Value::Mask(vec![3]))],
        );
        let b = &w.buf;
        // PIDs: name at 8, variant "au", array of one u32.
        assert_eq!(&b[8..17], b"\x04\0\0\0PIDs\0");
        assert_eq!(&b[17..21], &[2, b'a', b'u', 0]);
        assert_eq!(&b[21..24], &[0, 0, 0]);
        assert_eq!(&b[24..28], &4u32.to_le_bytes());
        assert_eq!(&b[28..32], &7u32.to_le_bytes());
        // Second struct at 32: AllowedCPUs, "ay", length 1, byte 3.
        assert_eq!(&b[32..36], &11u32.to_le_bytes());
        assert_eq!(&b[48..52], &[2, b'a', b'y', 0]);
        assert_eq!(&b[52..57], &[1, 0, 0, 0, 3]);
        assert_eq!(&b[..4], &(b.len() as u32 - 8).to_le_bytes());
    }
}
