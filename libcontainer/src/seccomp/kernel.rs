//! seccomp(2): loading a compiled program with our flags, and asking the kernel which flags it
//! knows.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;
use oci_spec::runtime::LinuxSeccompFilterFlag;

/// The filter flags the OCI spec names, in the kernel's bit order.
pub const KNOWN_FLAGS: &[LinuxSeccompFilterFlag] = &[
    LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
    LinuxSeccompFilterFlag::SeccompFilterFlagLog,
    LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
    LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
];

/// The kernel's name and bit of an OCI filter flag.
pub fn flag_bits(flag: LinuxSeccompFilterFlag) -> (&'static str, libc::c_ulong) {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
            ("SECCOMP_FILTER_FLAG_TSYNC", libc::SECCOMP_FILTER_FLAG_TSYNC)
        }
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => ("SECCOMP_FILTER_FLAG_LOG", libc::SECCOMP_FILTER_FLAG_LOG),
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
            ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW)
        }
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => (
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
        ),
    }
}

/// Whether the running kernel knows every bit of `flags`. With a null program the kernel checks
/// the flags first (EINVAL for unknown ones) and only then faults on the pointer (EFAULT), so
/// nothing is loaded and no privilege is needed.
pub fn flags_supported(flags: libc::c_ulong) -> bool {
    // SAFETY: a null program pointer is never dereferenced by us; the kernel reports EFAULT.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    ret < 0 && Errno::last() == Errno::EFAULT
}

/// Whether the kernel can take `flag` at all. WAIT_KILLABLE_RECV is only valid together with
/// NEW_LISTENER, so it is asked with it.
pub fn flag_supported(bits: libc::c_ulong) -> bool {
    if bits == libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
        return flags_supported(bits | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER);
    }
    flags_supported(bits)
}

/// Install `program` on the calling thread. Returns the notify fd when `flags` asks for a
/// listener. Allocates nothing, so it is safe in a freshly cloned child.
pub fn load(program: &[libc::sock_filter], flags: libc::c_ulong) -> Result<Option<OwnedFd>, Errno> {
    let prog = libc::sock_fprog {
        // The compiler checked the length against BPF_MAXINSNS (4096).
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `program`, which outlives the call; the kernel copies it and never
    // writes through the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER the kernel returns a new fd that nothing else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as i32) }));
    }
    Ok(None)
}
