//! The v2 device program on a real kernel: the unified hierarchy of this hybrid host
//! (/sys/fs/cgroup/unified) is a cgroup2 mount, and a BPF_CGROUP_DEVICE program attached there
//! governs the processes in that cgroup whatever the v1 devices controller says. A child born
//! in the cgroup (clone3 CLONE_INTO_CGROUP) opens device nodes made with mknod in a temp dir;
//! the kernel's answers (success or EPERM) show what the program allows. Root only; skipped with
//! the reason printed otherwise, or without a separate cgroup2 mount (the VM tests cover pure v2).

mod common;

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libcontainer::cgroups::{self, CgroupConfig, Layout, Manager};
use libcontainer::sys::{clone3, Forked};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::sys::wait::{waitpid, WaitStatus};
use oci_spec::runtime::LinuxResources;

struct Fixture {
    top: PathBuf,
    mgr: Box<dyn Manager>,
    nodes: PathBuf,
    _subtree: common::SubtreeGuard,
}

impl Fixture {
    fn new(name: &str) -> Option<Fixture> {
        let h = common::unified_mount("device program tests")?;
        let prefix = format!("hezi-itest-{}-{name}", std::process::id());
        let cfg = CgroupConfig::resolve(Some(Path::new(&format!("/{prefix}/c"))), name).expect("resolve");
        let mgr = cgroups::manager_for(&Layout::Unified(h.clone()), &cfg).expect("manager");
        let subtree = common::SubtreeGuard::new(&h.mount);
        mgr.create().expect("create the cgroup");
        let nodes = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&nodes).unwrap();
        // Devices every Linux kernel has whose open does nothing by itself: null from the
        // default list, kmsg and loop-control outside it.
        for (file, major, minor) in [("null", 1, 3), ("kmsg", 1, 11), ("ctl", 10, 237)] {
            mknod(
                &nodes.join(file),
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o600),
                makedev(major, minor),
            )
            .expect("mknod a device node (is the temp dir on a nodev mount?)");
        }
        Some(Fixture {
            top: h.mount.join(prefix),
            mgr,
            nodes,
            _subtree: subtree,
        })
    }

    fn apply(&self, json: &str) {
        let r: LinuxResources = serde_json::from_str(json).expect("resources json");
        self.mgr.apply_resources(&r).expect("apply the device rules");
    }

    fn programs(&self) -> usize {
        cgroups::device_programs(&self.mgr.dir("").unwrap()).expect("query the device programs")
    }

    /// In a child born in the cgroup, open each (node, flags): per attempt, whether open
    /// succeeded (true) or failed with EPERM (false); any other errno fails the test.
    fn opens(&self, tries: &[(&str, libc::c_int)]) -> Vec<bool> {
        assert!(tries.len() <= 3, "two bits of exit status per try");
        let paths: Vec<CString> = tries
            .iter()
            .map(|(f, _)| CString::new(self.nodes.join(f).as_os_str().as_bytes()).unwrap())
            .collect();
        let fd = self.mgr.v2_dir_fd().unwrap().expect("a v2 directory fd");
        match clone3(0, Some(fd.as_fd())).expect("clone3 into the cgroup") {
            Forked::Child => {
                // SAFETY: in the forked child of a multi-threaded process only async-signal-safe
                // calls: open, close and errno with strings prepared before the fork, then _exit.
                unsafe {
                    let mut status = 0;
                    for (i, (path, (_, flags))) in paths.iter().zip(tries).enumerate() {
                        let r = libc::open(path.as_ptr(), flags | libc::O_CLOEXEC);
                        let v = if r >= 0 {
                            libc::close(r);
                            1
                        } else if *libc::__errno_location() == libc::EPERM {
                            2
                        } else {
                            3
                        };
                        status |= v << (2 * i);
                    }
                    libc::_exit(status)
                }
            }
            Forked::Parent(pid) => {
                let WaitStatus::Exited(_, status) = waitpid(pid, None).unwrap() else {
                    panic!("child did not exit normally");
                };
                (0..tries.len())
                    .map(|i| match (status >> (2 * i)) & 3 {
                        1 => true,
                        2 => false,
                        _ => panic!("open {} failed with neither success nor EPERM", tries[i].0),
                    })
                    .collect()
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.mgr.kill_all(libc::SIGKILL);
        let _ = self.mgr.destroy();
        let _ = std::fs::remove_dir(self.top.join("c"));
        let _ = std::fs::remove_dir(&self.top);
        let _ = std::fs::remove_dir_all(&self.nodes);
    }
}

#[test]
fn device_program_allows_and_denies_for_real() {
    let Some(f) = Fixture::new("devs") else { return };
    // Nothing attached yet: everything opens (v1 devices of this host allow all).
    assert_eq!(f.programs(), 0);
    assert_eq!(
        f.opens(&[("ctl", libc::O_RDONLY), ("kmsg", libc::O_RDONLY)]),
        [true, true]
    );

    f.apply(
        r#"{"devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}]}"#,
    );
    assert_eq!(f.programs(), 1);
    // /dev/null from the default list; kmsg for reading only; loop-control not at all.
    assert_eq!(
        f.opens(&[
            ("null", libc::O_RDWR),
            ("kmsg", libc::O_RDONLY),
            ("kmsg", libc::O_WRONLY)
        ]),
        [true, true, false]
    );
    assert_eq!(f.opens(&[("ctl", libc::O_RDONLY)]), [false]);

    // Applying again replaces the program: one stays attached, with the new rules.
    f.apply(r#"{"devices": [{"allow": false, "access": "rwm"}]}"#);
    assert_eq!(f.programs(), 1);
    assert_eq!(
        f.opens(&[("null", libc::O_RDWR), ("kmsg", libc::O_RDONLY)]),
        [true, false]
    );

    // Allow-all: the program lets everything through.
    f.apply(r#"{"devices": [{"allow": true, "access": "rwm"}]}"#);
    assert_eq!(f.programs(), 1);
    assert_eq!(
        f.opens(&[("ctl", libc::O_RDONLY), ("kmsg", libc::O_WRONLY)]),
        [true, true]
    );
}

#[test]
fn a_rule_the_emulation_refuses_attaches_nothing() {
    let Some(f) = Fixture::new("devbad") else { return };
    let r: LinuxResources = serde_json::from_str(
        r#"{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "access": "rwm"},
                        {"allow": false, "type": "c", "major": 1, "minor": 1, "access": "r"}]}"#,
    )
    .unwrap();
    let e = f.mgr.apply_resources(&r).unwrap_err().to_string();
    assert!(e.contains("c 1:1"), "{e}");
    assert_eq!(f.programs(), 0);
}
