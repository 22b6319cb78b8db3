//! Thin wrappers over the system calls that nix does not cover (or covers in a shape that costs an
//! allocation): clone3, openat2, pidfds, close_range, and the new mount API (open_tree,
//! move_mount, mount_setattr). Each returns an `Errno` on failure; the
//! callers add context.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// The kernel's `struct clone_args` (version 2, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (linux/sched.h); not in every libc release yet.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

pub enum Forked {
    Parent(Pid),
    Child,
}

/// clone3 without a new stack: like fork(2), but with namespace flags and optionally straight into
/// a cgroup v2 directory. The child runs on a copy of the caller's memory, so the caller must be
/// single-threaded (the hezi CLI is; the shim forks a helper first).
pub fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> Result<Forked, Errno> {
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    clone3_with(args)
}

/// [`clone3`] with CLONE_PARENT: the child is our parent's child (our sibling), and the kernel
/// gives it our own exit signal (clone3 refuses one of its own with CLONE_PARENT).
pub fn clone3_sibling(flags: u64) -> Result<Forked, Errno> {
    clone3_with(CloneArgs {
        flags: flags | libc::CLONE_PARENT as u64,
        ..Default::default()
    })
}

fn clone3_with(mut args: CloneArgs) -> Result<Forked, Errno> {
    // SAFETY: `args` is a valid, fully initialised clone_args that outlives the call; with a null
    // stack the child continues on a copy of our stack, exactly like fork(2).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// openat2(2) with `RESOLVE_*` flags; returns the new fd.
pub fn openat2(dirfd: BorrowedFd<'_>, path: &CStr, flags: i32, mode: u32, resolve: u64) -> Result<OwnedFd, Errno> {
    // SAFETY: open_how is plain old data; all-zero is its documented "no options" value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = mode as u64;
    how.resolve = resolve;
    loop {
        // SAFETY: `path` is NUL-terminated, `how` is a valid open_how of the size passed.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if ret >= 0 {
            // SAFETY: the kernel just returned this fd to us and nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) });
        }
        // openat2 returns EAGAIN with RESOLVE_IN_ROOT when a concurrent rename raced the lookup.
        match Errno::last() {
            Errno::EAGAIN | Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// pidfd_open(2): a handle on a process that cannot be confused with a later process of the same pid.
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: plain syscall with integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if ret < 0 {
        return Err(match Errno::last() {
            // With flags 0 and a positive pid, EINVAL means the pid leads no thread group any
            // more: a process in the middle of exiting (seen while `delete -f` raced the
            // init's death under cgroup.kill). For every caller that is "gone", as ESRCH says.
            Errno::EINVAL if pid.as_raw() > 0 => Errno::ESRCH,
            e => e,
        });
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// pidfd_send_signal(2).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> Result<(), Errno> {
    // SAFETY: plain syscall; a null siginfo means "as kill(2) would send it".
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Mark every fd from `first` upwards close-on-exec (close_range with CLOSE_RANGE_CLOEXEC), so
/// nothing the runtime held leaks into the container's process (CVE-2024-21626).
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// The kernel's `struct mount_attr` (linux/mount.h), version 0.
#[repr(C)]
#[derive(Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount `fd` is on (AT_EMPTY_PATH), and on every mount below it too
/// when `recursive`: the only way to change flags of a whole tree at once.
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, set: u64, clear: u64) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        ..Default::default()
    };
    setattr(fd, recursive, &attr)
}

fn setattr(fd: BorrowedFd<'_>, recursive: bool, attr: &MountAttr) -> Result<(), Errno> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is a static empty C string, `attr` a valid mount_attr of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Close every fd from `first` upwards except those in `keep` (close_range over the gaps), so
/// that the process holds nothing it was not handed on purpose.
///
/// # Safety
///
/// Nothing that outlives this call may use or close an fd in the range other than `keep`'s: an
/// `OwnedFd` or `File` of one, dropped later, would close whatever took its number meanwhile.
pub unsafe fn close_from_except(first: u32, keep: &[RawFd]) -> Result<(), Errno> {
    let mut keep: Vec<u32> = keep.iter().filter_map(|&fd| u32::try_from(fd).ok()).collect();
    keep.sort_unstable();
    let mut lo = first;
    for fd in keep.into_iter().filter(|&fd| fd >= first) {
        if fd > lo {
            close_range(lo, fd - 1)?;
        }
        lo = fd.saturating_add(1);
    }
    close_range(lo, u32::MAX)
}

fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments; `close_from_except`'s caller vouches that
    // nothing else will use or close these fds.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at `path` (and of the mounts
/// below it when `recursive`), as an fd that move_mount(2) can attach elsewhere.
pub fn open_tree_clone(path: &CStr, recursive: bool) -> Result<OwnedFd, Errno> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `path` is NUL-terminated; the other arguments are integers.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// move_mount(2) of the detached mount `from` onto the object `to` names (both by fd).
pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: both paths are static empty C strings; the fds are valid for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// MOUNT_ATTR_IDMAP (linux/mount.h).
pub const MOUNT_ATTR_IDMAP: u64 = 0x10_0000;

/// mount_setattr(2) with MOUNT_ATTR_IDMAP: the detached mount `fd` (and the mounts below it when
/// `recursive`) show file ownership through the user namespace `userns`.
pub fn mount_setattr_idmap(fd: BorrowedFd<'_>, recursive: bool, userns: BorrowedFd<'_>) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        userns_fd: userns.as_raw_fd() as u64,
        ..Default::default()
    };
    setattr(fd, recursive, &attr)
}

/// Whether this kernel has mount_setattr(2) (5.12+), the base of idmapped mounts: asked on an
/// fd that cannot exist, an existing syscall says EBADF.
pub fn has_mount_setattr() -> bool {
    // SAFETY: fd -1 makes the kernel fail the call before it reads anything; the pointers are
    // a static empty string and null with size 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            std::ptr::null::<MountAttr>(),
            0usize,
        )
    };
    ret < 0 && Errno::last() != Errno::ENOSYS
}
