//! The few /proc reads the runtime needs, parsed by hand to keep start-up small, and the one
//! checked way to write below the container's /proc.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::statfs::PROC_SUPER_MAGIC;
use nix::unistd::Pid;

use crate::error::{Error, Result, SysContext};

/// procfs gives its root directory inode 1: a directory of a procfs bind-mounted onto /proc
/// (say /proc/sys/kernel, which would send writes to the wrong files) has another.
const PROC_ROOT_INO: u64 = 1;
const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

/// Open /proc, checked to be the root of a procfs instance: writes below it then cannot be
/// redirected by a file, a symlink or another mount the image or the spec put in its place
/// (CVE-2025-52881). `why` says what the writes are for, in the error.
pub fn checked_root(why: &str) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/proc",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open /proc".into())?;
    let fs = nix::sys::statfs::fstatfs(fd.as_fd()).ctx(|| "statfs /proc".into())?;
    let st = nix::sys::stat::fstat(fd.as_fd()).ctx(|| "stat /proc".into())?;
    if fs.filesystem_type() != PROC_SUPER_MAGIC || st.st_ino != PROC_ROOT_INO {
        return Err(Error::Other(format!(
            "/proc in the container is not the root of a procfs; refusing to write {why}"
        )));
    }
    Ok(fd)
}

/// Open `/proc/<rel>` below a `checked_root`, with no symlink, magic link or mount crossing on
/// the way, with `flags` (O_PATH to only find it).
pub fn open_beneath(proc: &OwnedFd, rel: &str, flags: OFlag) -> Result<OwnedFd> {
    let c = CString::new(rel).map_err(|_| Error::InvalidArgument(format!("/proc/{rel}: contains NUL")))?;
    let resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;
    crate::sys::openat2(proc.as_fd(), &c, flags.bits(), 0, resolve)
        .map_err(|e| Error::sys(format!("open /proc/{rel}"), e))
}

/// Write `value` to `/proc/<rel>` below a `checked_root`.
pub fn write_beneath(proc: &OwnedFd, rel: &str, value: &str) -> Result<()> {
    let fd = open_beneath(proc, rel, OFlag::O_WRONLY)?;
    std::fs::File::from(fd)
        .write_all(value.as_bytes())
        .ctx(|| format!("write {value:?} to /proc/{rel}"))
}

/// A process as /proc/PID/stat describes it.
pub struct ProcStat {
    /// One-letter state: R, S, D, Z, T, ...
    pub state: char,
    /// Start time in clock ticks since boot (field 22).
    pub start_time: u64,
}

/// Read /proc/PID/stat; None if the process does not exist.
pub fn stat(pid: Pid) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    // comm (field 2) is in parentheses and may itself hold spaces and ')'; fields resume after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3) come fields 4..; start time is field 22, so skip 18 more.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// Whether `pid` is still the process that started at `start_time` and has not exited (a zombie
/// counts as exited: nobody may reap it soon when its parent is a non-reaping pid 1).
pub fn is_alive(pid: Pid, start_time: u64) -> bool {
    match stat(pid) {
        Some(s) => s.start_time == start_time && s.state != 'Z' && s.state != 'X',
        None => false,
    }
}

/// A path field of /proc/*/mountinfo as it is: the kernel escapes space, tab, newline and
/// backslash in them as `\ooo`.
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape("/a\\011b\\012c\\134d"), "/a\tb\nc\\d");
        assert_eq!(unescape("/x\\"), "/x\\");
        assert_eq!(unescape("/x\\08"), "/x\\08");
    }

    #[test]
    fn parses_comm_with_spaces_and_parens() {
        let line = "42 (we) ird) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.start_time, 123456);
    }

    #[test]
    fn own_process_is_alive() {
        let me = Pid::this();
        let s = stat(me).unwrap();
        assert!(is_alive(me, s.start_time));
        assert!(!is_alive(me, s.start_time + 1));
    }
}
