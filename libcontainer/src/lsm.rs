//! Linux security modules: the process's AppArmor profile (`process.apparmorProfile`), its
//! SELinux label (`process.selinuxLabel`) and the label of its mounts (`linux.mountLabel`).
//!
//! Both process settings take effect at the program's execve: the init (and an exec'd process)
//! writes them to its own `/proc/<pid>/task/<tid>/attr/...exec` file before dropping privileges
//! (a non-dumpable process's /proc files belong to root, so after a setuid the write would fail).
//! The write goes to procfs only: /proc is checked to be the root of a procfs, and the path is
//! resolved with neither symlinks nor mount crossings, so a hostile image or mount cannot redirect
//! it (CVE-2025-52881).
//!
//! Asked for on a host without the module, `create` and `exec` fail before anything is made,
//! naming the setting: silently running a container unconfined would be worse.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::statfs::SELINUX_MAGIC;
use oci_spec::runtime::{Process, Spec};

use crate::error::{Error, Result};

/// AppArmor is loaded and enabled (the module parameter runc and podman read).
pub fn apparmor_enabled() -> bool {
    std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with(b"Y"))
}

/// SELinux is enabled: selinuxfs is mounted where the kernel mounts it.
pub fn selinux_enabled() -> bool {
    let Ok(fd) = nix::fcntl::open(
        "/sys/fs/selinux",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    nix::sys::statfs::fstatfs(fd.as_fd()).is_ok_and(|fs| fs.filesystem_type() == SELINUX_MAGIC)
}

fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// The process's settings are usable on this host. "unconfined" asks for nothing, so it is
/// accepted without AppArmor (as podman does).
pub fn check_process(p: &Process) -> Result<()> {
    if let Some(profile) = set(p.apparmor_profile()) {
        if profile != "unconfined" && !apparmor_enabled() {
            return Err(Error::InvalidSpec(format!(
                "process.apparmorProfile {profile:?} is set, but AppArmor is not enabled on this host"
            )));
        }
        check_text("process.apparmorProfile", profile)?;
    }
    if let Some(label) = set(p.selinux_label()) {
        if !selinux_enabled() {
            // runc's words.
            return Err(Error::InvalidSpec(
                "selinux label is specified in config, but selinux is disabled or not supported".into(),
            ));
        }
        check_text("process.selinuxLabel", label)?;
    }
    Ok(())
}

/// `check_process` for the spec's process, and linux.mountLabel.
pub fn check(spec: &Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        check_process(p)?;
    }
    if let Some(label) = mount_label(spec) {
        if !selinux_enabled() {
            return Err(Error::InvalidSpec(format!(
                "linux.mountLabel {label:?} is set, but selinux is disabled or not supported"
            )));
        }
        check_text("linux.mountLabel", label)?;
        if label.contains('"') {
            return Err(Error::InvalidSpec(format!(
                "linux.mountLabel {label:?} contains a quote"
            )));
        }
    }
    Ok(())
}

fn check_text(what: &str, v: &str) -> Result<()> {
    if v.contains(['\0', '\n']) {
        return Err(Error::InvalidSpec(format!("{what} {v:?} contains a NUL or newline")));
    }
    Ok(())
}

/// linux.mountLabel, when set.
pub fn mount_label(spec: &Spec) -> Option<&str> {
    spec.linux().as_ref().and_then(|l| set(l.mount_label()))
}

/// Mount data with the SELinux `context=` option for `label` added. The label is quoted: MCS
/// categories (`s0:c1,c2`) hold commas.
pub fn mount_data(data: &str, label: Option<&str>) -> String {
    match label {
        None => data.to_string(),
        Some(l) if data.is_empty() => format!("context=\"{l}\""),
        Some(l) => format!("{data},context=\"{l}\""),
    }
}

/// Whether a mount of this filesystem type takes the mount label (as runc: not proc, sysfs,
/// cgroups or mqueue, whose labels the policy fixes, nor binds, which keep their source's).
pub fn labels_mount(fs_type: &str) -> bool {
    !matches!(
        fs_type,
        "proc" | "sysfs" | "cgroup" | "cgroup2" | "mqueue" | "bind" | ""
    )
}

/// Set the AppArmor profile and SELinux label that the next execve gives this process. In the
/// container, after its /proc is mounted and before privileges are dropped.
pub fn apply_exec(p: &Process) -> Result<()> {
    // "unconfined" without AppArmor asks for nothing (see check_process).
    let profile = set(p.apparmor_profile()).filter(|p| *p != "unconfined" || apparmor_enabled());
    let label = set(p.selinux_label());
    if profile.is_none() && label.is_none() {
        return Ok(());
    }
    let proc = crate::procfs::checked_root("LSM attributes")?;
    if let Some(profile) = profile {
        // The AppArmor-only file since Linux 5.8 (several LSMs may be stacked); else the shared one.
        let text = format!("exec {profile}");
        match write_attr(&proc, "apparmor/exec", &text) {
            Err(Error::Sys {
                errno: Errno::ENOENT, ..
            }) => write_attr(&proc, "exec", &text)?,
            r => r?,
        }
    }
    if let Some(label) = label {
        write_attr(&proc, "exec", label)?;
    }
    Ok(())
}

/// Write `value` to this thread's `attr/<name>` under the checked /proc.
fn write_attr(proc: &OwnedFd, name: &str, value: &str) -> Result<()> {
    // Named by pid and tid: /proc/self and /proc/thread-self are symlinks, which the resolution
    // refuses. The pid is the one this /proc's pid namespace shows (the container's).
    let rel = format!("{}/task/{}/attr/{name}", nix::unistd::getpid(), nix::unistd::gettid());
    crate::procfs::write_beneath(proc, &rel, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_data_quotes_the_label() {
        assert_eq!(mount_data("mode=755", None), "mode=755");
        assert_eq!(
            mount_data("", Some("system_u:object_r:container_file_t:s0:c1,c2")),
            "context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        assert_eq!(mount_data("size=1m", Some("l")), "size=1m,context=\"l\"");
    }

    #[test]
    fn labelled_filesystems() {
        assert!(labels_mount("tmpfs") && labels_mount("devpts"));
        assert!(!labels_mount("proc") && !labels_mount("sysfs") && !labels_mount("mqueue"));
    }

    #[test]
    fn asked_for_without_the_module_is_an_error() {
        let mut p = Process::default();
        p.set_apparmor_profile(Some("hezi-test".into()));
        if !apparmor_enabled() {
            let err = check_process(&p).unwrap_err().to_string();
            assert!(err.contains("AppArmor is not enabled"), "{err}");
        }
        p.set_apparmor_profile(Some("unconfined".into()));
        check_process(&p).unwrap();
        p.set_selinux_label(Some("system_u:system_r:container_t:s0".into()));
        if !selinux_enabled() {
            let err = check_process(&p).unwrap_err().to_string();
            assert!(err.contains("selinux is disabled"), "{err}");
        }
    }

    #[test]
    fn own_attr_files_are_reachable_through_the_checked_proc() {
        // The host's /proc is the root of a procfs; the attr directory exists on any kernel
        // with an LSM hook, even with no module enabled.
        let proc = crate::procfs::checked_root("LSM attributes").unwrap();
        let rel = format!("{}/task/{}/attr", nix::unistd::getpid(), nix::unistd::gettid());
        crate::procfs::open_beneath(&proc, &rel, OFlag::O_PATH).unwrap();
    }

    #[test]
    fn exec_label_is_written_to_our_own_attr_file() {
        if selinux_enabled() {
            return;
        }
        // No module takes the write, so the kernel refuses it; the error shows where it went.
        let mut p = Process::default();
        p.set_selinux_label(Some("system_u:system_r:container_t:s0".into()));
        let err = apply_exec(&p).unwrap_err().to_string();
        let want = format!(
            "/proc/{}/task/{}/attr/exec",
            nix::unistd::getpid(),
            nix::unistd::gettid()
        );
        assert!(err.contains(&want), "{err}");
    }
}
