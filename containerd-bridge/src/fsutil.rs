//! Directory-fd based file operations that never follow a symlink out of the tree they work in:
//! every path is walked one component at a time with `O_NOFOLLOW`, and the final name is acted
//! on with the `*at` calls relative to its parent's descriptor.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains a NUL byte"))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Open a directory (not following a symlink in its last component).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: c is a valid NUL-terminated string; the returned fd is owned by us.
    let fd = check(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fd was just returned by open and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open `name` in `dir` as a directory, refusing symlinks (ELOOP) and non-directories (ENOTDIR).
pub fn open_dir_at(dir: RawFd, name: &[u8]) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: dir is a descriptor the caller keeps open; c is NUL-terminated.
    let fd = check(unsafe {
        libc::openat(
            dir,
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fd is new and ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// lstat of `name` in `dir`.
pub fn lstat_at(dir: RawFd, name: &[u8]) -> io::Result<libc::stat> {
    let c = cstr(name)?;
    // SAFETY: zeroed stat is a valid out-buffer for fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid dir fd, NUL-terminated name, and a writable stat buffer.
    check(unsafe { libc::fstatat(dir, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

pub fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

pub fn mkdir_at(dir: RawFd, name: &[u8], mode: u32) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid dir fd and NUL-terminated name.
    check(unsafe { libc::mkdirat(dir, c.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// Remove `name` in `dir` whatever it is (a directory with everything in it). Missing is fine.
pub fn remove_at(dir: RawFd, name: &[u8]) -> io::Result<()> {
    let st = match lstat_at(dir, name) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let c = cstr(name)?;
    if is_dir(&st) {
        let sub = open_dir_at(dir, name)?;
        for child in list_dir(sub.as_raw_fd())? {
            remove_at(sub.as_raw_fd(), &child)?;
        }
        // SAFETY: valid dir fd and NUL-terminated name.
        check(unsafe { libc::unlinkat(dir, c.as_ptr(), libc::AT_REMOVEDIR) }).map(drop)
    } else {
        // SAFETY: as above.
        check(unsafe { libc::unlinkat(dir, c.as_ptr(), 0) }).map(drop)
    }
}

/// Names in the directory open as `dir` (without `.` and `..`).
pub fn list_dir(dir: RawFd) -> io::Result<Vec<Vec<u8>>> {
    // Read through /proc/self/fd so std does the getdents; the magic link names exactly `dir`.
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/self/fd/{dir}"))? {
        out.push(e?.file_name().as_bytes().to_vec());
    }
    Ok(out)
}

pub fn symlink_at(target: &[u8], dir: RawFd, name: &[u8]) -> io::Result<()> {
    let (t, n) = (cstr(target)?, cstr(name)?);
    // SAFETY: NUL-terminated strings and a valid dir fd.
    check(unsafe { libc::symlinkat(t.as_ptr(), dir, n.as_ptr()) }).map(drop)
}

pub fn mknod_at(dir: RawFd, name: &[u8], mode: u32, dev: libc::dev_t) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid dir fd and NUL-terminated name.
    check(unsafe { libc::mknodat(dir, c.as_ptr(), mode as libc::mode_t, dev) }).map(drop)
}

pub fn link_at(from_dir: RawFd, from: &[u8], to_dir: RawFd, to: &[u8]) -> io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: valid dir fds and NUL-terminated names; flags 0 does not follow a symlink `from`.
    check(unsafe { libc::linkat(from_dir, f.as_ptr(), to_dir, t.as_ptr(), 0) }).map(drop)
}

/// Create a new regular file (never an existing one, never through a symlink).
pub fn create_at(dir: RawFd, name: &[u8], mode: u32) -> io::Result<File> {
    let c = cstr(name)?;
    // SAFETY: valid dir fd and NUL-terminated name.
    let fd = check(unsafe {
        libc::openat(
            dir,
            c.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: fd is new and ours.
    Ok(unsafe { File::from_raw_fd(fd) })
}

pub fn chown_at(dir: RawFd, name: &[u8], uid: u32, gid: u32) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid dir fd and NUL-terminated name; AT_SYMLINK_NOFOLLOW changes a link itself.
    check(unsafe { libc::fchownat(dir, c.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) }).map(drop)
}

/// chmod `name` in `dir` (never called on symlinks, whose mode Linux ignores).
pub fn chmod_at(dir: RawFd, name: &[u8], mode: u32) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid dir fd and NUL-terminated name.
    check(unsafe { libc::fchmodat(dir, c.as_ptr(), mode as libc::mode_t, 0) }).map(drop)
}

/// Set atime and mtime of `name` in `dir` (a symlink itself, not what it points to).
pub fn set_times_at(dir: RawFd, name: &[u8], secs: i64, nsecs: i64) -> io::Result<()> {
    let c = cstr(name)?;
    let t = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: nsecs as _,
    };
    let times = [t, t];
    // SAFETY: valid dir fd, NUL-terminated name, and an array of two timespecs.
    check(unsafe { libc::utimensat(dir, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) }).map(drop)
}

/// Set an extended attribute on `name` in `dir` without following a symlink.
pub fn set_xattr_at(dir: RawFd, name: &[u8], key: &str, value: &[u8]) -> io::Result<()> {
    // lsetxattr through the parent's /proc/self/fd magic link: the link resolves to `dir`
    // itself, and lsetxattr does not follow `name` if it is a symlink.
    let mut p = format!("/proc/self/fd/{dir}/").into_bytes();
    p.extend_from_slice(name);
    let (p, k) = (cstr(&p)?, cstr(key.as_bytes())?);
    // SAFETY: NUL-terminated path and key; value points to value.len() readable bytes.
    check(unsafe { libc::lsetxattr(p.as_ptr(), k.as_ptr(), value.as_ptr().cast(), value.len(), 0) }).map(drop)
}

/// List extended attributes of `name` in `dir` (not following a symlink) with their values.
pub fn get_xattrs_at(dir: RawFd, name: &[u8]) -> io::Result<Vec<(CString, Vec<u8>)>> {
    let mut p = format!("/proc/self/fd/{dir}/").into_bytes();
    p.extend_from_slice(name);
    let p = cstr(&p)?;
    let mut names = vec![0u8; 4096];
    // SAFETY: NUL-terminated path; names is a writable buffer of its length.
    let n = unsafe { libc::llistxattr(p.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOTSUP) => Ok(Vec::new()),
            _ => Err(e),
        };
    }
    let mut out = Vec::new();
    for key in names[..n as usize].split(|b| *b == 0).filter(|k| !k.is_empty()) {
        let k = cstr(key)?;
        let mut val = vec![0u8; 65536];
        // SAFETY: NUL-terminated path and key; val is a writable buffer of its length.
        let m = unsafe { libc::lgetxattr(p.as_ptr(), k.as_ptr(), val.as_mut_ptr().cast(), val.len()) };
        if m < 0 {
            return Err(io::Error::last_os_error());
        }
        val.truncate(m as usize);
        out.push((k, val));
    }
    Ok(out)
}

/// Open `path` inside `root` with every symlink resolved as if `root` were `/` (openat2
/// RESOLVE_IN_ROOT): how a container would see it, and never a file outside `root`.
pub fn open_in_root(root: &Path, path: &str) -> io::Result<File> {
    let dir = open_dir(root)?;
    let c = cstr(path.trim_start_matches('/').as_bytes())?;
    // struct open_how from linux/openat2.h (libc's is non-exhaustive, so not constructible).
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: (libc::O_RDONLY | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 with a valid dir fd, a NUL-terminated path, and an open_how of the size
    // passed; the result is a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is new and ours.
    Ok(unsafe { File::from_raw_fd(fd as RawFd) })
}

/// A C string of a path (for mount(2) and friends).
pub fn path_cstring(p: &Path) -> io::Result<CString> {
    cstr(p.as_os_str().as_bytes())
}

/// The target of symlink `name` in `dir`.
pub fn readlink_at(dir: RawFd, name: &[u8]) -> io::Result<Vec<u8>> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: valid dir fd, NUL-terminated name, and a writable buffer of the length passed.
    let n = unsafe { libc::readlinkat(dir, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Open an existing regular file `name` in `dir` for reading, not following a symlink.
pub fn open_file_at(dir: RawFd, name: &[u8]) -> io::Result<File> {
    let c = cstr(name)?;
    // SAFETY: valid dir fd and NUL-terminated name.
    let fd = check(unsafe { libc::openat(dir, c.as_ptr(), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC) })?;
    // SAFETY: fd is new and ours.
    Ok(unsafe { File::from_raw_fd(fd) })
}
