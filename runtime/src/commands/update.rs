//! `update`: runc's flags, or `-r FILE|-` with a LinuxResources JSON (then the flags are
//! ignored, as in runc). Memory values take runc's (docker's) unit suffixes: `64m`, `1.5g`,
//! `512KiB`, or `-1` for unlimited.

use std::io::Read;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::cli::{self, opt, Args, Flag};
use crate::{Failure, Global};

const FLAGS: &[Flag] = &[
    opt(&["r", "resources"]),
    opt(&["memory"]),
    opt(&["memory-swap"]),
    opt(&["memory-reservation"]),
    opt(&["kernel-memory"]),
    opt(&["kernel-memory-tcp"]),
    // runc spells it --cpu-share; --cpu-shares as docker does is accepted too.
    opt(&["cpu-share", "cpu-shares"]),
    opt(&["cpu-quota"]),
    // runc 1.2's flag (cpu.cfs_burst_us on v1, cpu.max.burst on v2).
    opt(&["cpu-burst"]),
    opt(&["cpu-period"]),
    opt(&["cpu-rt-period"]),
    opt(&["cpu-rt-runtime"]),
    opt(&["cpuset-cpus"]),
    opt(&["cpuset-mems"]),
    opt(&["pids-limit"]),
    opt(&["blkio-weight"]),
];

pub fn update(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse(args, FLAGS, false)?;
    let id = a.id("update")?;
    let r = match a.value("r") {
        Some(src) => {
            if FLAGS[1..].iter().any(|f| a.value(f.names[0]).is_some()) {
                tracing::warn!("update: --resources given, the other resource flags are ignored");
            }
            read_resources(src)?
        }
        None => from_flags(&a)?,
    };
    Ok(super::runtime(g)?.update(id, &r)?)
}

/// A LinuxResources JSON from a file, or stdin for `-`.
fn read_resources(src: &str) -> Result<LinuxResources, Failure> {
    let mut text = String::new();
    let res = if src == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::File::open(src).and_then(|mut f| f.read_to_string(&mut text).map(|_| ()))
    };
    let name = if src == "-" { "stdin" } else { src };
    res.map_err(|e| Failure::Error(format!("update: read resources from {name}: {e}")))?;
    serde_json::from_str(&text).map_err(|e| Failure::Error(format!("update: resources in {name}: {e}")))
}

fn num<T: std::str::FromStr>(a: &Args, flag: &str) -> Result<Option<T>, Failure> {
    match a.value(flag).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| Failure::Usage(format!("invalid value {v:?} for --{flag}"))),
    }
}

fn bytes(a: &Args, flag: &str) -> Result<Option<i64>, Failure> {
    match a.value(flag).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse_bytes(v)
            .map(Some)
            .map_err(|e| Failure::Usage(format!("invalid value for --{flag}: {e}"))),
    }
}

/// The resources the flags ask for; only the fields given are set.
fn from_flags(a: &Args) -> Result<LinuxResources, Failure> {
    let mut r = LinuxResources::default();
    let (limit, swap, reservation) = (
        bytes(a, "memory")?,
        bytes(a, "memory-swap")?,
        bytes(a, "memory-reservation")?,
    );
    for f in ["kernel-memory", "kernel-memory-tcp"] {
        if bytes(a, f)?.is_some() {
            tracing::warn!("--{f} is ignored: kernel memory limits are deprecated (as in runc)");
        }
    }
    if limit.is_some() || swap.is_some() || reservation.is_some() {
        let mut m = LinuxMemory::default();
        m.set_limit(limit).set_swap(swap).set_reservation(reservation);
        r.set_memory(Some(m));
    }
    let mut c = LinuxCpu::default();
    c.set_shares(num(a, "cpu-share")?)
        .set_quota(num(a, "cpu-quota")?)
        .set_burst(num(a, "cpu-burst")?)
        .set_period(num(a, "cpu-period")?)
        .set_realtime_period(num(a, "cpu-rt-period")?)
        .set_realtime_runtime(num(a, "cpu-rt-runtime")?)
        .set_cpus(a.value("cpuset-cpus").map(String::from))
        .set_mems(a.value("cpuset-mems").map(String::from));
    if c != LinuxCpu::default() {
        r.set_cpu(Some(c));
    }
    // As runc: 0 leaves the limit as it is, -1 lifts it.
    if let Some(p) = num::<i64>(a, "pids-limit")?.filter(|p| *p != 0) {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        r.set_pids(Some(pids));
    }
    if let Some(w) = num::<u16>(a, "blkio-weight")?.filter(|w| *w != 0) {
        if !(10..=1000).contains(&w) {
            return Err(Failure::Usage(format!("--blkio-weight {w}: must be 10 to 1000")));
        }
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(r)
}

/// docker's `RAMInBytes`, which runc uses: a decimal number, an optional space, then an optional
/// k/m/g/t/p (any case) with optional `i` and `b` — all binary multiples (`1k` = 1024). `-1` is
/// unlimited.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    let digits_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, rest) = s.split_at(digits_end);
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    let shift = match chars.peek().map(char::to_ascii_lowercase) {
        Some(u @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            chars.next();
            10 * (1 + "kmgtp".find(u).unwrap_or(0) as u32)
        }
        _ => 0,
    };
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        chars.next();
    }
    let bad = || format!("invalid size: {s:?}");
    if chars.next().is_some() || number.is_empty() || number.starts_with('.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bytes = value * (1u64 << shift) as f64;
    if bytes >= i64::MAX as f64 {
        return Err(format!("size {s:?} is too large"));
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn unit_suffixes() {
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("512kb"), Ok(512 << 10));
        assert_eq!(parse_bytes("1.5k"), Ok(1536));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert_eq!(parse_bytes("100b"), Ok(100));
        assert_eq!(parse_bytes("2 t"), Ok(2 << 40));
        assert_eq!(parse_bytes("-1"), Ok(-1));
        for bad in ["", "m", "-2", "64x", "64mm", "1.2.3m", "64  m", ".5m", "9999999p"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_set_only_what_is_given() {
        let a = cli::parse(
            &v(&[
                "--memory",
                "64m",
                "--pids-limit=20",
                "--cpu-share",
                "512",
                "--cpuset-cpus",
                "0",
                "--cpu-burst",
                "1000",
                "id",
            ]),
            FLAGS,
            false,
        )
        .unwrap();
        let r = from_flags(&a).ok().expect("flags parse");
        let m = r.memory().unwrap();
        assert_eq!((m.limit(), m.swap(), m.reservation()), (Some(64 << 20), None, None));
        assert_eq!(r.pids().unwrap().limit(), 20);
        let c = r.cpu().clone().unwrap();
        assert_eq!(
            (c.shares(), c.quota(), c.burst(), c.cpus().as_deref()),
            (Some(512), None, Some(1000), Some("0"))
        );
        assert!(r.block_io().is_none());

        let a = cli::parse(&v(&["--pids-limit", "0", "--kernel-memory", "1m", "id"]), FLAGS, false).unwrap();
        let r = from_flags(&a).ok().expect("flags parse");
        assert!(r.pids().is_none() && r.memory().is_none() && r.cpu().is_none());

        for bad in [
            &["--memory", "lots", "id"][..],
            &["--cpu-quota", "x", "id"],
            &["--blkio-weight", "5", "id"],
        ] {
            let a = cli::parse(&v(bad), FLAGS, false).unwrap();
            assert!(from_flags(&a).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resources_file() {
        let dir = std::env::temp_dir().join(format!("hezi-update-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("r.json");
        std::fs::write(&f, r#"{"memory":{"limit":1048576},"pids":{"limit":3}}"#).unwrap();
        let r = read_resources(f.to_str().unwrap()).ok().expect("resources parse");
        assert_eq!(r.memory().unwrap().limit(), Some(1 << 20));
        std::fs::write(&f, "{").unwrap();
        assert!(read_resources(f.to_str().unwrap()).is_err());
        assert!(read_resources(dir.join("none").to_str().unwrap()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
