//! The init's standard descriptors across a checkpoint. Whoever ran the container holds their
//! other ends (a shim's or conmon's pipes, a shell's /dev/null or log file, a terminal), and
//! none of that can be dumped with the container. So:
//! - a dump records what fds 0, 1 and 2 of the init are (as /proc/PID/fd names them) in
//!   `descriptors.json`, as runc does. Each pipe among them, on restore, is the restoring
//!   caller's own fd of the same number (CRIU's inherit_fd, given a copy of it), so the
//!   restored init writes to the new caller's pipes. An image runc wrote restores the same way.
//! - a file or terminal on a mount the container cannot see (the host's /dev/null, a log file)
//!   is dumped as external (`file[MNT_ID:INODE]`, `tty[RDEV:DEV]`) and, on restore, also taken
//!   from the caller's fd of the same number. runc leaves these to CRIU, which cannot dump them;
//!   hezi records their keys in `hezi-descriptors.json`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::opts::Opts;
use crate::error::{Error, Result, SysContext};

const RUNC_FILE: &str = "descriptors.json";
const HEZI_FILE: &str = "hezi-descriptors.json";

/// One of the init's stdio fds that restore takes from its caller.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct External {
    fd: i32,
    key: String,
}

/// Write what the init's fds 0-2 are into the image directory, and tell CRIU which are
/// external. An fd the init closed is recorded as an empty name.
pub(super) fn record(pid: i32, images: &Path, o: &mut Opts) -> Result<()> {
    let names: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    write_json(&images.join(RUNC_FILE), &names)?;

    let visible = mount_ids(pid)?;
    let mut externals = Vec::new();
    for (fd, name) in (0..).zip(&names) {
        if name.is_empty() || name.starts_with("pipe:[") || name.starts_with("socket:[") {
            continue;
        }
        if let Some(key) = external_key(pid, fd, &visible)? {
            o.external(&key);
            externals.push(External { fd, key });
        }
    }
    write_json(&images.join(HEZI_FILE), &externals)
}

/// Add an inherit_fd for each pipe and external file the dump recorded, naming a copy of the
/// caller's fd of the same number. The copies are not close-on-exec, so criu swrk inherits
/// them under the numbers given; the caller keeps them open until CRIU is done. An image
/// without the files restores as before, with CRIU re-creating what it can.
pub(super) fn inherit(images: &Path, o: &mut Opts) -> Result<Vec<OwnedFd>> {
    let mut wanted: Vec<(i32, String)> = Vec::new();
    if let Some(names) = read_json::<Vec<String>>(&images.join(RUNC_FILE))? {
        wanted.extend(pipes(&names).map(|(fd, name)| (fd, name.to_string())));
    }
    if let Some(externals) = read_json::<Vec<External>>(&images.join(HEZI_FILE))? {
        wanted.extend(externals.into_iter().map(|e| (e.fd, e.key)));
    }
    let mut copies: Vec<(i32, OwnedFd)> = Vec::new();
    for (fd, key) in wanted {
        let copy = match copies.iter().find(|(n, _)| *n == fd) {
            Some((_, c)) => c.as_raw_fd(),
            None => {
                let c = inheritable_copy(fd)?;
                let raw = c.as_raw_fd();
                copies.push((fd, c));
                raw
            }
        };
        o.inherit_fd(&key, copy);
    }
    Ok(copies.into_iter().map(|(_, c)| c).collect())
}

/// A copy of this process's stdio `fd` for criu swrk (see [`super::inheritable`]).
fn inheritable_copy(fd: i32) -> Result<OwnedFd> {
    super::inheritable(fd).map_err(|e| {
        Error::InvalidArgument(format!(
            "restore hands the container its stdio from the caller's fd {fd}, which is not open: {e}"
        ))
    })
}

/// The pipes among the recorded names, with the fd each was.
fn pipes(names: &[String]) -> impl Iterator<Item = (i32, &str)> {
    names
        .iter()
        .zip(0..)
        .filter(|(n, _)| n.starts_with("pipe:["))
        .map(|(n, fd)| (fd, n.as_str()))
}

/// The mount ids of the init's mount namespace.
fn mount_ids(pid: i32) -> Result<Vec<u64>> {
    let path = format!("/proc/{pid}/mountinfo");
    let text = std::fs::read_to_string(&path).ctx(|| format!("read {path}"))?;
    Ok(text.lines().filter_map(|l| l.split(' ').next()?.parse().ok()).collect())
}

/// CRIU's key for fd `fd` of `pid` when it is on a mount outside the container's (hex, as
/// CRIU prints them): a terminal by device, any other file by mount and inode.
fn external_key(pid: i32, fd: i32, visible: &[u64]) -> Result<Option<String>> {
    let info_path = format!("/proc/{pid}/fdinfo/{fd}");
    let info = std::fs::read_to_string(&info_path).ctx(|| format!("read {info_path}"))?;
    let mnt_id = info
        .lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| Error::Other(format!("{info_path}: no mnt_id")))?;
    if visible.contains(&mnt_id) {
        return Ok(None);
    }
    let fd_path = format!("/proc/{pid}/fd/{fd}");
    let meta = std::fs::metadata(&fd_path).ctx(|| format!("stat {fd_path}"))?;
    Ok(Some(if is_tty(meta.rdev(), meta.mode()) {
        format!("tty[{:x}:{:x}]", meta.rdev(), meta.dev())
    } else {
        format!("file[{mnt_id:x}:{:x}]", meta.ino())
    }))
}

/// A character device of the terminal majors: the consoles (4, 5) and Unix98 ptys (136-143).
fn is_tty(rdev: u64, mode: u32) -> bool {
    let major = libc::major(rdev);
    mode & libc::S_IFMT == libc::S_IFCHR && (major == 4 || major == 5 || (136..=143).contains(&major))
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let json = serde_json::to_vec(v).map_err(|e| Error::Other(format!("encode {}: {e}", path.display())))?;
    std::fs::write(path, json).ctx(|| format!("write {}", path.display()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pipes_are_inherited_by_their_fd_number() {
        let names: Vec<String> = ["/dev/null", "pipe:[4242]", "pipe:[77]"].map(String::from).to_vec();
        let got: Vec<_> = pipes(&names).collect();
        assert_eq!(got, vec![(1, "pipe:[4242]"), (2, "pipe:[77]")]);
        let names: Vec<String> = ["/dev/pts/0", "", "socket:[9]"].map(String::from).to_vec();
        assert_eq!(pipes(&names).count(), 0);
    }

    #[test]
    fn a_file_on_a_mount_the_container_sees_is_not_external() {
        let me = std::process::id() as i32;
        let visible = mount_ids(me).unwrap();
        let f = std::fs::File::open("/proc/self/mountinfo").unwrap();
        use std::os::fd::AsRawFd;
        assert_eq!(external_key(me, f.as_raw_fd(), &visible).unwrap(), None);
        // Seen from a namespace that has none of these mounts, it is external, by mount and
        // inode in hex.
        let key = external_key(me, f.as_raw_fd(), &[]).unwrap().unwrap();
        assert!(key.starts_with("file[") && key.ends_with(']'), "{key}");
    }

    #[test]
    fn terminals_are_told_by_major() {
        let chr = libc::S_IFCHR;
        assert!(is_tty(libc::makedev(136, 3), chr));
        assert!(is_tty(libc::makedev(5, 0), chr));
        assert!(!is_tty(libc::makedev(1, 3), chr)); // /dev/null
        assert!(!is_tty(libc::makedev(136, 3), libc::S_IFREG));
    }
}
