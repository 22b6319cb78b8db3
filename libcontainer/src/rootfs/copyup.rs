//! runc's `tmpcopyup` mount option: a tmpfs mounted over a directory of the image starts with a
//! copy of what that directory held (podman asks for it for `--tmpfs` and for the tmpfs it puts
//! on /run, /tmp and /var/tmp with `--read-only`).
//!
//! The caller opens the directory before mounting over it; that fd still reaches the covered
//! content afterwards. The copy walks it with *at calls only, never following a symlink, so an
//! image's links are copied as links and cannot point the copy at the host.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid};

use crate::error::{Error, Result};

/// Copy the tree under directory `src` into directory `dst` (the new, empty tmpfs): files,
/// directories, symlinks, device nodes and fifos, with their mode and owner. `shown` names `dst`
/// in errors.
pub fn copy_tree(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, shown: &Path) -> Result<()> {
    let fail = |name: &OsStr, what: &str, e: nix::errno::Errno| {
        Error::sys(format!("tmpcopyup: {what} {}", shown.join(name).display()), e)
    };
    let names = list(src).map_err(|e| fail(OsStr::new(""), "read", e))?;
    for name in names {
        let shown_name = OsStr::from_bytes(name.to_bytes());
        let st = nix::sys::stat::fstatat(src, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| fail(shown_name, "stat", e))?;
        let kind = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
        let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
        if kind == SFlag::S_IFDIR {
            nix::sys::stat::mkdirat(dst, name.as_c_str(), Mode::S_IRWXU).map_err(|e| fail(shown_name, "mkdir", e))?;
            let from = open_dir(src, &name).map_err(|e| fail(shown_name, "open", e))?;
            let to = open_dir(dst, &name).map_err(|e| fail(shown_name, "open", e))?;
            copy_tree(from.as_fd(), to.as_fd(), &shown.join(shown_name))?;
        } else if kind == SFlag::S_IFREG {
            copy_file(src, dst, &name, perm).map_err(|e| fail(shown_name, "copy", e))?;
        } else if kind == SFlag::S_IFLNK {
            let target = nix::fcntl::readlinkat(src, name.as_c_str()).map_err(|e| fail(shown_name, "readlink", e))?;
            nix::unistd::symlinkat(target.as_os_str(), dst, name.as_c_str())
                .map_err(|e| fail(shown_name, "symlink", e))?;
        } else if kind == SFlag::S_IFCHR || kind == SFlag::S_IFBLK || kind == SFlag::S_IFIFO {
            nix::sys::stat::mknodat(dst, name.as_c_str(), kind, perm, st.st_rdev)
                .map_err(|e| fail(shown_name, "mknod", e))?;
        } else {
            // A socket means nothing without the process that listened on it.
            continue;
        }
        nix::unistd::fchownat(
            dst,
            name.as_c_str(),
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| fail(shown_name, "chown", e))?;
        // After the chown, which clears set-id bits; symlinks have no mode of their own.
        if kind != SFlag::S_IFLNK {
            nix::sys::stat::fchmodat(dst, name.as_c_str(), perm, nix::sys::stat::FchmodatFlags::FollowSymlink)
                .map_err(|e| fail(shown_name, "chmod", e))?;
        }
    }
    Ok(())
}

/// The names in directory `dir` but `.` and `..`.
fn list(dir: BorrowedFd<'_>) -> nix::Result<Vec<CString>> {
    let mut d = nix::dir::Dir::openat(
        dir,
        c".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    for entry in d.iter() {
        let name = entry?.file_name().to_owned();
        if name.as_bytes() != b"." && name.as_bytes() != b".." {
            out.push(name);
        }
    }
    Ok(out)
}

fn open_dir(parent: BorrowedFd<'_>, name: &CStr) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn copy_file(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, name: &CStr, perm: Mode) -> nix::Result<()> {
    let from = nix::fcntl::openat(
        src,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let to = nix::fcntl::openat(
        dst,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        perm & Mode::S_IRWXU,
    )?;
    let mut from = std::fs::File::from(from);
    let mut to = std::fs::File::from(to);
    std::io::copy(&mut from, &mut to)
        .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok(())
}
