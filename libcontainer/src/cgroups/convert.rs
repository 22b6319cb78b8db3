//! The OCI spec's resources are cgroup v1 values; cgroup v2 files want other units. These are
//! the conversions runc and crun use, so a spec gives the same cgroup under every runtime.

use std::fmt;

use super::{CgroupError, Result};

/// A v2 limit: a number or `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V2Value {
    Max,
    Num(u64),
}

impl fmt::Display for V2Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V2Value::Max => f.write_str("max"),
            V2Value::Num(n) => write!(f, "{n}"),
        }
    }
}

impl V2Value {
    /// A spec limit where a negative value means unlimited.
    pub fn from_limit(v: i64) -> V2Value {
        u64::try_from(v).map_or(V2Value::Max, V2Value::Num)
    }
}

/// cpu.shares (2..262144) → cpu.weight (1..10000): `1 + ((shares - 2) * 9999) / 262142`.
/// 0 means unset and gives 0. Out-of-range shares are clamped to the v1 range first.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// blkio.weight (10..1000) → io.weight (1..10000): `1 + (weight - 10) * 9999 / 990`.
/// 0 means unset and gives 0.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// memory.swap.max from the spec's `swap` (memory + swap, v1 memsw semantics) and `limit`.
/// `None`: leave memory.swap.max alone. As in runc, a swap of 0 means unset, and an unlimited
/// memory limit with no swap given makes swap unlimited too.
pub fn swap_to_v2(swap: Option<i64>, limit: Option<i64>) -> Result<Option<V2Value>> {
    let swap = swap.unwrap_or(0);
    let limit = limit.unwrap_or(0);
    if limit == -1 && swap == 0 {
        return Ok(Some(V2Value::Max));
    }
    match swap {
        0 => return Ok(None),
        -1 => return Ok(Some(V2Value::Max)),
        s if s < 0 => return Err(CgroupError::Invalid(format!("memory.swap {s} is negative"))),
        _ => {}
    }
    if limit == 0 || limit == -1 {
        return Err(CgroupError::Invalid(format!(
            "memory.swap {swap} needs a memory limit: on cgroup v2 swap is set as swap = memory.swap - memory.limit"
        )));
    }
    if limit < 0 {
        return Err(CgroupError::Invalid(format!("memory.limit {limit} is negative")));
    }
    if swap < limit {
        return Err(CgroupError::Invalid(format!(
            "memory.swap {swap} (memory + swap) is below memory.limit {limit}"
        )));
    }
    // Both are positive and swap >= limit, so the difference fits.
    Ok(Some(V2Value::Num((swap - limit) as u64)))
}

/// cpu.max from quota and period, as runc writes it: `"<quota|max> [period]"`; None when neither
/// is set. A quota of 0 or below is unlimited.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    if quota.is_none() && !matches!(period, Some(p) if p != 0) {
        return None;
    }
    let mut s = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_string(),
    };
    if let Some(p) = period.filter(|p| *p != 0) {
        s.push(' ');
        s.push_str(&p.to_string());
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_matches_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(u64::MAX), 10_000);
    }

    #[test]
    fn blkio_weight_conversion() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 1 + 490 * 9999 / 990);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_semantics() {
        let m = 64 << 20;
        assert_eq!(swap_to_v2(Some(2 * m), Some(m)).unwrap(), Some(V2Value::Num(m as u64)));
        assert_eq!(swap_to_v2(Some(m), Some(m)).unwrap(), Some(V2Value::Num(0)));
        assert_eq!(swap_to_v2(Some(-1), Some(m)).unwrap(), Some(V2Value::Max));
        assert_eq!(swap_to_v2(None, Some(m)).unwrap(), None);
        assert_eq!(swap_to_v2(Some(0), Some(m)).unwrap(), None);
        assert_eq!(swap_to_v2(None, Some(-1)).unwrap(), Some(V2Value::Max));
        assert_eq!(swap_to_v2(None, None).unwrap(), None);
        assert!(swap_to_v2(Some(m), None).is_err());
        assert!(swap_to_v2(Some(m), Some(-1)).is_err());
        assert!(swap_to_v2(Some(m / 2), Some(m)).is_err());
        assert!(swap_to_v2(Some(-5), Some(m)).is_err());
    }

    #[test]
    fn cpu_max_strings() {
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(cpu_max(Some(50_000), Some(100_000)).as_deref(), Some("50000 100000"));
        assert_eq!(cpu_max(Some(-1), None).as_deref(), Some("max"));
        assert_eq!(cpu_max(None, Some(250_000)).as_deref(), Some("max 250000"));
        assert_eq!(cpu_max(Some(20_000), None).as_deref(), Some("20000"));
    }

    #[test]
    fn limits() {
        assert_eq!(V2Value::from_limit(-1).to_string(), "max");
        assert_eq!(V2Value::from_limit(20).to_string(), "20");
    }
}
