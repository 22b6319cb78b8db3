//! `--memory-limit BYTES` and `--cpus N` as the spec's cgroup resources, as ctr sets them:
//! `memory.limit`, and a CFS quota of N periods of 100 ms.

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// ctr's CFS period, 100 ms.
pub const CPU_PERIOD: u64 = 100_000;
/// The kernel's least CFS quota, 1 ms: `--cpus` below 0.01 cannot be set.
const MIN_QUOTA: i64 = 1_000;

/// The limits, checked; None where the flag was not given (or, as ctr has it, was 0).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Limits {
    pub memory: Option<i64>,
    pub cpu_quota: Option<i64>,
}

impl Limits {
    pub fn new(memory: Option<&str>, cpus: Option<&str>) -> Result<Limits> {
        Ok(Limits {
            memory: memory.map(parse_memory).transpose()?.flatten(),
            cpu_quota: cpus.map(parse_cpus).transpose()?.flatten(),
        })
    }

    pub fn apply(&self, spec: &mut Value) {
        let r = &mut spec["linux"]["resources"];
        if let Some(m) = self.memory {
            r["memory"]["limit"] = json!(m);
        }
        if let Some(q) = self.cpu_quota {
            r["cpu"]["quota"] = json!(q);
            r["cpu"]["period"] = json!(CPU_PERIOD);
        }
    }
}

/// A whole number of bytes; 0 is no limit (ctr's default).
fn parse_memory(s: &str) -> Result<Option<i64>> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("--memory-limit {s:?}: not a whole number of bytes")))?;
    if n == 0 {
        return Ok(None);
    }
    i64::try_from(n)
        .map(Some)
        .map_err(|_| Error::Invalid(format!("--memory-limit {s:?}: more bytes than a cgroup limit can hold")))
}

/// A number of CPUs, fractions allowed; 0 is no limit (ctr's default).
fn parse_cpus(s: &str) -> Result<Option<i64>> {
    let bad = |why: &str| Error::Invalid(format!("--cpus {s:?}: {why}"));
    let n: f64 = s.trim().parse().map_err(|_| bad("not a number of CPUs"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(bad("not a number of CPUs"));
    }
    if n == 0.0 {
        return Ok(None);
    }
    let quota = n * CPU_PERIOD as f64;
    if quota > i64::MAX as f64 {
        return Err(bad("too many CPUs"));
    }
    let quota = quota as i64;
    if quota < MIN_QUOTA {
        return Err(bad("less than 0.01, the kernel's least CFS quota (1 ms per 100 ms)"));
    }
    Ok(Some(quota))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_ctr_takes_them() {
        assert_eq!(parse_memory("67108864").unwrap(), Some(67108864));
        assert_eq!(parse_memory("0").unwrap(), None);
        assert_eq!(parse_cpus("0.5").unwrap(), Some(50_000));
        assert_eq!(parse_cpus("2").unwrap(), Some(200_000));
        assert_eq!(parse_cpus("0").unwrap(), None);
        for bad in ["", "64m", "-1", "1.5", "18446744073709551616"] {
            let e = parse_memory(bad).unwrap_err().to_string();
            assert!(e.contains("--memory-limit") && e.contains(&format!("{bad:?}")), "{e}");
        }
        for bad in ["", "half", "-0.5", "NaN", "inf", "0.001", "1e300"] {
            let e = parse_cpus(bad).unwrap_err().to_string();
            assert!(e.contains("--cpus") && e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn into_the_spec() {
        let mut spec = crate::spec::default_spec("c");
        Limits::new(Some("1048576"), Some("1.5")).unwrap().apply(&mut spec);
        let r = &spec["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 1048576);
        assert_eq!(r["cpu"], json!({"quota": 150000, "period": 100000}));
        // The default device rule stays.
        assert_eq!(r["devices"][0]["allow"], false);
    }
}
