//! A faithful tree copy for the copying ("native") snapshotter: owners, modes, xattrs, times,
//! devices, fifos, symlinks and hard links (within the tree) as they are, through directory
//! descriptors so a symlink in the tree is copied, never followed.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::fsutil;

/// Copy the contents of directory `src` into the (existing, empty) directory `dst`.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let s = fsutil::open_dir(src).ctx(|| format!("open {}", src.display()))?;
    let d = fsutil::open_dir(dst).ctx(|| format!("open {}", dst.display()))?;
    let mut links = HashMap::new();
    copy_dir(s.as_raw_fd(), d.as_raw_fd(), &mut links).ctx(|| format!("copy {} to {}", src.display(), dst.display()))
}

/// (dev, ino) of files with several links → where the first copy went (dir fd kept open).
type Links = HashMap<(u64, u64), (std::os::fd::OwnedFd, Vec<u8>)>;

fn copy_dir(src: RawFd, dst: RawFd, links: &mut Links) -> io::Result<()> {
    for name in fsutil::list_dir(src)? {
        let st = fsutil::lstat_at(src, &name)?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                fsutil::mkdir_at(dst, &name, 0o700)?;
                let (s, d) = (fsutil::open_dir_at(src, &name)?, fsutil::open_dir_at(dst, &name)?);
                copy_dir(s.as_raw_fd(), d.as_raw_fd(), links)?;
            }
            libc::S_IFREG => {
                if st.st_nlink > 1 {
                    if let Some((dir, first)) = links.get(&(st.st_dev, st.st_ino)) {
                        fsutil::link_at(dir.as_raw_fd(), first, dst, &name)?;
                        continue;
                    }
                }
                let mut from = fsutil::open_file_at(src, &name)?;
                let mut to = fsutil::create_at(dst, &name, 0o600)?;
                io::copy(&mut from, &mut to)?;
                if st.st_nlink > 1 {
                    let keep = fsutil::open_dir_at(dst, b".")?;
                    links.insert((st.st_dev, st.st_ino), (keep, name.clone()));
                }
            }
            libc::S_IFLNK => fsutil::symlink_at(&fsutil::readlink_at(src, &name)?, dst, &name)?,
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                fsutil::mknod_at(dst, &name, st.st_mode & (libc::S_IFMT | 0o777), st.st_rdev)?
            }
            _ => continue, // sockets: nothing to copy
        }
        fsutil::chown_at(dst, &name, st.st_uid, st.st_gid)?;
        for (k, v) in fsutil::get_xattrs_at(src, &name)? {
            fsutil::set_xattr_at(dst, &name, &k.to_string_lossy(), &v)?;
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
            fsutil::chmod_at(dst, &name, st.st_mode & 0o7777)?;
        }
        fsutil::set_times_at(dst, &name, st.st_mtime, st.st_mtime_nsec)?;
    }
    Ok(())
}
