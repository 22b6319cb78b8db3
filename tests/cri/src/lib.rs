//! hezi under Kubernetes' Container Runtime Interface: a private containerd 1.6 with the CRI
//! plugin ([`containerd`]), images the suite builds itself ([`image`]), and a blocking CRI v1
//! client that plays the kubelet ([`client`]).
//!
//! Every test runs once per runtime handler: `hezi-runc` (containerd's runc shim driving the
//! hezi binary) always, `hezi` (hezi's own shim) once `containerd-shim-hezi-v2` is built next to
//! hezi. Like the other end-to-end tests, a test without its prerequisites (root, containerd,
//! the CNI plugins, busybox, the built binaries) says SKIP and returns, except under CI (`CI`
//! set), where that is a failure.

pub mod client;
pub mod containerd;
pub mod image;

use std::path::{Path, PathBuf};

pub use hezi_e2e::hezi_bin;

/// Debian's containernetworking-plugins put the CNI plugins here.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";

/// What the tests need on the machine beyond the built binaries, with the Debian package
/// that provides each.
const NEEDED: &[(&str, &str)] = &[
    ("/usr/bin/containerd", "containerd"),
    ("/usr/bin/ctr", "containerd"),
    ("/usr/bin/containerd-shim-runc-v2", "containerd"),
    ("/usr/lib/cni/bridge", "containernetworking-plugins"),
    ("/usr/lib/cni/host-local", "containernetworking-plugins"),
    ("/usr/lib/cni/loopback", "containernetworking-plugins"),
    ("/usr/bin/unshare", "util-linux"),
    ("/usr/sbin/ip", "iproute2"),
];

/// The runtime handler a test runs its pods with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    /// `io.containerd.runc.v2` with `BinaryName` = hezi.
    HeziRunc,
    /// `io.containerd.hezi.v2`: hezi's own shim.
    Hezi,
}

impl Handler {
    pub fn name(self) -> &'static str {
        match self {
            Handler::HeziRunc => containerd::HANDLER_RUNC,
            Handler::Hezi => containerd::HANDLER_SHIM,
        }
    }
}

/// hezi's shim, where containerd will find it (next to the hezi binary).
pub fn shim_bin() -> PathBuf {
    hezi_bin().with_file_name("containerd-shim-hezi-v2")
}

/// Whether a test with `handler` can run here; says SKIP (or panics under CI) when not.
///
/// What the tests of `handler` need: root, the Debian packages, and for the `hezi` handler
/// hezi's shim next to the hezi binary. Without them: SKIP, or a failure under CI.
pub fn prerequisites(handler: Handler) -> bool {
    if !hezi_e2e::prerequisites() {
        return false;
    }
    let mut missing: Vec<String> = NEEDED
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(path, pkg)| format!("{path} (apt-get install {pkg})"))
        .collect();
    if handler == Handler::Hezi && !shim_bin().exists() {
        missing.push(format!(
            "{} (cargo build -p containerd-shim-hezi-v2)",
            shim_bin().display()
        ));
    }
    if !missing.is_empty() {
        let msg = format!("handler {} needs {}", handler.name(), missing.join(", "));
        if std::env::var_os("CI").is_some() {
            panic!("{msg}: CI must provide it");
        }
        eprintln!("SKIP: {msg}");
        return false;
    }
    true
}

/// One line of a CRI container log: `<RFC 3339 nano time> <stdout|stderr> <F|P> <text>`.
#[derive(Debug, PartialEq, Eq)]
pub struct LogLine {
    pub time: String,
    pub stream: String,
    pub tag: String,
    pub text: String,
}

/// Parse a CRI log file; panics (naming the line) on any line not in the format.
pub fn parse_cri_log(text: &str) -> Vec<LogLine> {
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let (Some(time), Some(stream), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
                panic!("not a CRI log line: {line:?}");
            };
            let text = parts.next().unwrap_or("").to_string();
            assert!(is_rfc3339_nano(time), "bad timestamp in CRI log line {line:?}");
            assert!(
                ["stdout", "stderr"].contains(&stream),
                "bad stream in CRI log line {line:?}"
            );
            assert!(["F", "P"].contains(&tag), "bad tag in CRI log line {line:?}");
            LogLine {
                time: time.into(),
                stream: stream.into(),
                tag: tag.into(),
                text,
            }
        })
        .collect()
}

/// `2006-01-02T15:04:05.999999999Z07:00` as Go writes it: date, `T`, time, an optional
/// fraction of 1 to 9 digits, then `Z` or `±hh:mm`.
fn is_rfc3339_nano(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 20 || !digits(0..4) || b[4] != b'-' || !digits(5..7) || b[7] != b'-' || !digits(8..10) {
        return false;
    }
    if b[10] != b'T' || !digits(11..13) || b[13] != b':' || !digits(14..16) || b[16] != b':' || !digits(17..19) {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=9).contains(&n) {
            return false;
        }
        rest = &frac[n..];
    }
    rest == "Z" || (rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && rest.as_bytes()[3] == b':')
}

/// The cgroup directories under `parent` (a pod's cgroup parent) in every v1 hierarchy and the
/// v2 (or hybrid unified) one that exist now.
pub fn cgroup_dirs(parent: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut roots = vec![base.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(base) {
        roots.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    roots
        .into_iter()
        .map(|r| r.join(parent.trim_start_matches('/')))
        .filter(|d| d.is_dir())
        .collect()
}

/// Sub-cgroups left under the pod cgroups `parent` (the runtime's containers' cgroups; the
/// kubelet, here the test, owns `parent` itself).
pub fn cgroup_children(parent: &str) -> Vec<PathBuf> {
    cgroup_dirs(parent)
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect()
}

/// Remove the pod cgroup `parent` everywhere, as the kubelet does once the pod is gone.
pub fn remove_cgroups(parent: &str) {
    for d in cgroup_dirs(parent) {
        let _ = std::fs::remove_dir(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_log_lines_parse() {
        let log = "2024-05-01T10:11:12.123456789Z stdout F hello world\n\
                   2024-05-01T10:11:12.5+02:00 stderr P part\n\
                   2024-05-01T10:11:13Z stdout F \n";
        let lines = parse_cri_log(log);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].text, "hello world");
        assert_eq!(lines[1].stream, "stderr");
        assert_eq!(lines[2].text, "");
    }

    #[test]
    #[should_panic(expected = "bad timestamp")]
    fn cri_log_rejects_a_bad_time() {
        parse_cri_log("2024-05-01 10:11:12Z stdout F x\n");
    }

    #[test]
    fn rfc3339() {
        assert!(is_rfc3339_nano("2024-05-01T10:11:12.000000001Z"));
        assert!(!is_rfc3339_nano("2024-05-01T10:11:12.0000000001Z"));
        assert!(!is_rfc3339_nano("2024-05-01T10:11:12"));
    }
}
