//! The bpf(2) calls that put a device program on a cgroup: BPF_PROG_LOAD, BPF_PROG_QUERY,
//! BPF_PROG_GET_FD_BY_ID, BPF_PROG_ATTACH and BPF_PROG_DETACH. Each command reads its own
//! prefix of `union bpf_attr`; the kernel zero-fills the rest when the size passed is smaller.

use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::insn::Insn;
use crate::cgroups::{CgroupError, Result};

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Several programs on one cgroup, all of which must allow: ours beside whatever a parent or
/// a manager (systemd) attached, and the old one while it is being replaced.
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The program uses no GPL-only helper, so any license string is accepted; runc's.
const LICENSE: &[u8] = b"Apache\0";
const LOG_SIZE: usize = 64 * 1024;

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct Attach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct Query {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(cmd, attr, sizeof attr); the raw return value.
fn sys_bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::result::Result<libc::c_long, Errno> {
    // SAFETY: `attr` is a live, initialised #[repr(C)] prefix of union bpf_attr of exactly the
    // size passed; the pointers inside it (if any) point to buffers that outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>()) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

fn fd_from(r: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel returned a new fd (r ≥ 0, and fds fit in c_int) that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(r as libc::c_int) }
}

fn io(op: &str, dir: &Path, errno: Errno) -> CgroupError {
    CgroupError::Io {
        op: op.into(),
        path: dir.to_path_buf(),
        errno,
    }
}

/// Load `insns` as a BPF_PROG_TYPE_CGROUP_DEVICE program. A program the verifier rejects is
/// loaded again with the verifier log on, and the log goes into the error.
pub(crate) fn load(insns: &[Insn], dir: &Path) -> Result<OwnedFd> {
    let code: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"hezi_devices");
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: code.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        prog_name: name,
        ..ProgLoad::default()
    };
    let first = match sys_bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => return Ok(fd_from(fd)),
        Err(e) => e,
    };
    if first != Errno::EINVAL && first != Errno::EACCES {
        return Err(io("load the device eBPF program (BPF_PROG_LOAD) for", dir, first));
    }
    let mut log = vec![0u8; LOG_SIZE];
    attr.log_level = 1;
    attr.log_size = LOG_SIZE as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    let again = sys_bpf(BPF_PROG_LOAD, &mut attr);
    let text = String::from_utf8_lossy(&log[..log.iter().position(|b| *b == 0).unwrap_or(0)]).into_owned();
    match again {
        Ok(fd) => Ok(fd_from(fd)),
        Err(e) => Err(io(
            &format!("load the device eBPF program (verifier: {}) for", text.trim()),
            dir,
            e,
        )),
    }
}

/// Ids of the device programs attached to the cgroup `dir_fd` itself (not its ancestors).
fn attached(dir_fd: &OwnedFd, dir: &Path) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = Query {
        target_fd: dir_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Query::default()
    };
    match sys_bpf(BPF_PROG_QUERY, &mut attr) {
        Ok(_) => {}
        // More programs than room: a cgroup hezi made has its own one, at most a few.
        Err(Errno::ENOSPC) => {}
        Err(e) => return Err(io("query the device eBPF programs (BPF_PROG_QUERY) of", dir, e)),
    }
    ids.truncate((attr.prog_cnt as usize).min(ids.len()));
    Ok(ids)
}

fn prog_fd(id: u32, dir: &Path) -> Result<OwnedFd> {
    let mut attr = GetFdById {
        prog_id: id,
        ..GetFdById::default()
    };
    sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)
        .map(fd_from)
        .map_err(|e| io(&format!("open device eBPF program {id} attached to"), dir, e))
}

fn attach_or_detach(cmd: libc::c_int, dir_fd: &OwnedFd, prog: &OwnedFd) -> std::result::Result<(), Errno> {
    let mut attr = Attach {
        target_fd: dir_fd.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: if cmd == BPF_PROG_ATTACH { BPF_F_ALLOW_MULTI } else { 0 },
    };
    sys_bpf(cmd, &mut attr).map(|_| ())
}

/// Attach the program `insns` to the cgroup v2 directory `dir`, then detach the device programs
/// that were there before. The new one goes on first, so there is no moment without rules.
pub(crate) fn replace_device_program(dir: &Path, insns: &[Insn]) -> Result<()> {
    let dir_fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("open", dir, e))?;
    let old = attached(&dir_fd, dir)?;
    let prog = load(insns, dir)?;
    attach_or_detach(BPF_PROG_ATTACH, &dir_fd, &prog)
        .map_err(|e| io("attach the device eBPF program (BPF_PROG_ATTACH) to", dir, e))?;
    for id in old {
        let fd = prog_fd(id, dir)?;
        match attach_or_detach(BPF_PROG_DETACH, &dir_fd, &fd) {
            // Detached meanwhile by someone else.
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => {
                return Err(io(
                    &format!("detach the old device eBPF program {id} (BPF_PROG_DETACH) from"),
                    dir,
                    e,
                ))
            }
        }
    }
    Ok(())
}

/// How many device programs are attached to `dir` itself (tests).
pub fn device_programs(dir: &Path) -> Result<usize> {
    let dir_fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io("open", dir, e))?;
    Ok(attached(&dir_fd, dir)?.len())
}
