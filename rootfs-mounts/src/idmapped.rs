//! containerd 2.x's idmapped overlay, for user-namespaced pods (Kubernetes `hostUsers: false`):
//! the snapshotter adds `uidmap=C:H:N[,...]` and `gidmap=...` to an overlay's options, and the
//! shim must show the lower layers through that mapping. Each lowerdir is cloned
//! (open_tree), idmapped (mount_setattr MOUNT_ATTR_IDMAP with a user namespace holding the
//! maps) and attached in a private directory beside the target; the overlay is made from
//! those, and then they are detached again (the overlay holds its own references). The upper
//! layer is the snapshotter's own, already owned by the mapped ids.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::{path_cstring, Error, Result};

/// The idmapped lower layers of one overlay mount, detached and removed on drop.
pub(crate) struct Lowers {
    dir: PathBuf,
    mounted: Vec<PathBuf>,
}

impl Drop for Lowers {
    fn drop(&mut self) {
        for m in &self.mounted {
            let _ = crate::umount(m, libc::MNT_DETACH);
            let _ = std::fs::remove_dir(m);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `C:H:N,C:H:N` (containerd's mount option syntax) as uid_map/gid_map lines (`C H N`).
pub(crate) fn id_map(value: &str) -> std::result::Result<String, String> {
    let mut out = String::new();
    for range in value.split(',') {
        let parts: Vec<&str> = range.split(':').collect();
        let nums: Option<Vec<u32>> = parts.iter().map(|p| p.parse().ok()).collect();
        match nums.as_deref() {
            Some([c, h, n]) if *n > 0 => out.push_str(&format!("{c} {h} {n}\n")),
            _ => return Err(format!("id mapping {range:?}: want container-id:host-id:size")),
        }
    }
    Ok(out)
}

/// If `options` ask for an idmapped overlay, take `uidmap=`/`gidmap=` out of them, idmap each
/// `lowerdir` into a private directory beside `target`, and point `lowerdir=` at those.
pub(crate) fn prepare(options: &mut Vec<String>, target: &Path) -> Result<Option<Lowers>> {
    let take = |options: &mut Vec<String>, key: &str| {
        let i = options.iter().position(|o| o.starts_with(key))?;
        Some(options.remove(i)[key.len()..].to_string())
    };
    let (uid, gid) = (take(options, "uidmap="), take(options, "gidmap="));
    let (uid, gid) = match (uid, gid) {
        (None, None) => return Ok(None),
        (Some(u), Some(g)) => (u, g),
        _ => {
            return Err(Error::io(
                "idmapped overlay: uidmap= and gidmap= come together",
                io::Error::from(io::ErrorKind::InvalidInput),
            ))
        }
    };
    let bad = |e: String| {
        Error::io(
            format!("idmapped overlay: {e}"),
            io::Error::from(io::ErrorKind::InvalidInput),
        )
    };
    let (uid_map, gid_map) = (id_map(&uid).map_err(bad)?, id_map(&gid).map_err(bad)?);
    let li = options
        .iter()
        .position(|o| o.starts_with("lowerdir="))
        .ok_or_else(|| bad("no lowerdir= to idmap".into()))?;
    let userns = userns_with(&uid_map, &gid_map)
        .map_err(|e| Error::io("idmapped overlay: a user namespace with its maps", e))?;
    let name = target
        .file_name()
        .map_or("rootfs".into(), |n| n.to_string_lossy().into_owned());
    let dir = target.with_file_name(format!(".{name}-idmapped-lowers"));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    let mut lowers = Lowers {
        dir,
        mounted: Vec::new(),
    };
    let mut new_lowers = Vec::new();
    for (i, lower) in options[li]["lowerdir=".len()..].split(':').enumerate() {
        let at = lowers.dir.join(i.to_string());
        std::fs::create_dir_all(&at).map_err(|e| Error::io(format!("create {}", at.display()), e))?;
        idmap_bind(Path::new(lower), &at, &userns)
            .map_err(|e| Error::io(format!("idmap {lower} at {}", at.display()), e))?;
        new_lowers.push(at.to_string_lossy().into_owned());
        lowers.mounted.push(at);
    }
    options[li] = format!("lowerdir={}", new_lowers.join(":"));
    Ok(Some(lowers))
}

/// The kernel's `struct mount_attr`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// Clone `source`, idmap the clone through `userns`, attach it at `target`.
fn idmap_bind(source: &Path, target: &Path, userns: &OwnedFd) -> io::Result<()> {
    let src = path_cstring(source)?;
    let tgt = path_cstring(target)?;
    // SAFETY: open_tree with a NUL-terminated path and constant flags; the fd it returns is ours.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            src.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if tree < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: open_tree returned a new fd nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: libc::MS_PRIVATE,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: mount_setattr on our tree fd with AT_EMPTY_PATH; `attr` is a valid mount_attr of
    // the size given, alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: move_mount of our detached tree (AT_EMPTY_PATH form) onto a NUL-terminated path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            tgt.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A user namespace with these maps, held by an fd. A forked child makes it (a threaded caller
/// such as the shim cannot unshare one itself) and waits, doing nothing else, while its maps
/// are written and its namespace opened; then it exits.
fn userns_with(uid_map: &str, gid_map: &str) -> io::Result<OwnedFd> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new fds that nothing else owns.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the child only calls async-signal-safe functions (unshare, read, _exit).
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    if child == 0 {
        drop(w);
        let mut b = [0u8; 1];
        // SAFETY: plain syscalls on our own fds; _exit leaves without running the parent's code.
        unsafe {
            let code = if libc::unshare(libc::CLONE_NEWUSER) == 0 { 0 } else { 1 };
            // Tell the parent the namespace is there (one byte), then wait for its end-of-file.
            libc::write(fds[1], b"x".as_ptr().cast(), 0);
            libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), 1);
            libc::_exit(code)
        }
    }
    drop(r);
    // The child unshares before its first instruction that we wait on: poll its namespace until
    // it differs from ours (at most a second).
    let ours = std::fs::read_link("/proc/self/ns/user")?;
    let theirs = format!("/proc/{child}/ns/user");
    let result = (|| {
        for _ in 0..1000 {
            if std::fs::read_link(&theirs).is_ok_and(|l| l != ours) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if std::fs::read_link(&theirs)? == ours {
            return Err(io::Error::other("the helper never entered a new user namespace"));
        }
        std::fs::write(format!("/proc/{child}/uid_map"), uid_map)?;
        std::fs::write(format!("/proc/{child}/gid_map"), gid_map)?;
        let f = std::fs::File::open(&theirs)?;
        Ok(OwnedFd::from(f))
    })();
    drop(w);
    let mut status = 0;
    // SAFETY: waiting for our own child (the shim's reaper may take it first: ECHILD is fine).
    unsafe { libc::waitpid(child, &mut status, 0) };
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_mappings_become_map_lines() {
        assert_eq!(id_map("0:200000:65536").unwrap(), "0 200000 65536\n");
        assert_eq!(id_map("0:1000:1,1:100000:65536").unwrap(), "0 1000 1\n1 100000 65536\n");
        assert!(id_map("0:1").is_err());
        assert!(id_map("0:x:1").is_err());
        assert!(id_map("0:1:0").is_err());
    }

    #[test]
    fn options_without_maps_are_left_alone() {
        let mut o = vec!["lowerdir=/a".to_string(), "upperdir=/u".to_string()];
        assert!(prepare(&mut o, Path::new("/x/rootfs")).unwrap().is_none());
        assert_eq!(o.len(), 2);
        let mut o = vec!["uidmap=0:1:1".to_string(), "lowerdir=/a".to_string()];
        assert!(prepare(&mut o, Path::new("/x/rootfs")).is_err());
    }

    /// As root: a lower layer's file owned by root on disk (as image layers are) shows as host
    /// uid 200000 through the mapping 0:200000:65536 in the overlay, which is the container's
    /// root in a user namespace with that map; the upper layer is left as it is.
    #[test]
    fn an_idmapped_overlay_shows_the_lowers_through_the_map() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIP: needs root");
            return;
        }
        let base = std::env::temp_dir().join(format!("hezi-idmapped-{}", std::process::id()));
        let (lower, upper, work, target) = (base.join("l"), base.join("u"), base.join("w"), base.join("rootfs"));
        for d in [&lower, &upper, &work, &target] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(lower.join("f"), "x").unwrap();
        let m = crate::Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "uidmap=0:200000:65536".into(),
                "gidmap=0:200000:65536".into(),
                format!("lowerdir={}", lower.display()),
                format!("upperdir={}", upper.display()),
                format!("workdir={}", work.display()),
            ],
        };
        crate::mount_rootfs(&[m], &target).unwrap();
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata(target.join("f")).unwrap().uid();
        crate::unmount_rootfs(&target).unwrap();
        let left = std::fs::read_dir(&base).unwrap().count();
        std::fs::remove_dir_all(&base).unwrap();
        assert_eq!(uid, 200000, "root's file on disk is uid 200000 through the map");
        assert_eq!(left, 4, "the idmapped lowers' directory is gone");
    }
}
