//! `restore`: bring a checkpointed container back from its image directory under `id` (its own
//! or a new one), in the cgroup a create of `id` would make, and adopt the restored init into
//! hezi's state. The rootfs is bound at a private mount point for
//! CRIU's root (it must be a mount point of its own), removed again whatever happens.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::Pid;

use super::opts::Opts;
use super::{
    check_criu, descriptors, mountpoints, namespaces, netlock, open_dir, rpc, CgroupMode, Console, RestoreOptions,
    STATE_IN_IMAGE,
};
use crate::container::Runtime;
use crate::error::{Error, Result, SysContext};
use crate::state::ContainerState;

/// The restored container: its init, a child of the caller (CRIU restores it as its sibling).
#[derive(Debug)]
pub struct Restored {
    pub pid: Pid,
}

impl Runtime {
    /// Restore the checkpoint at `opts.image_path` as container `id`, which may differ from the
    /// checkpointed container's: its state, cgroup and bundle are then the new id's.
    pub fn restore(&self, id: &str, opts: &RestoreOptions) -> Result<Restored> {
        crate::id::validate(id)?;
        // What must exist comes first, before anything is made.
        let state_file = opts.image_path.join(STATE_IN_IMAGE);
        let saved = std::fs::read(&state_file).map_err(|e| {
            Error::InvalidArgument(format!(
                "image path {}: no hezi checkpoint there ({}: {e})",
                opts.image_path.display(),
                STATE_IN_IMAGE
            ))
        })?;
        let mut st: ContainerState = serde_json::from_slice(&saved)
            .map_err(|e| Error::InvalidArgument(format!("{}: {e}", state_file.display())))?;
        if self.rootless() {
            return Err(Error::InvalidArgument(
                "restore needs the host's root: CRIU cannot restore as an unprivileged user".into(),
            ));
        }
        let bundle = crate::spec::Bundle::load(opts.bundle.as_deref().unwrap_or(&st.bundle))?;
        // The restored container's cgroup is where a create of `id` from this bundle puts it.
        let cgroups_path = bundle.spec.linux().as_ref().and_then(|l| l.cgroups_path().as_deref());
        let cgroup = if st.cgroup.as_ref().is_some_and(|c| c.systemd.is_some()) || self.systemd_cgroup() {
            crate::cgroups::CgroupConfig::resolve_systemd(cgroups_path, id, false)
        } else {
            crate::cgroups::CgroupConfig::resolve(cgroups_path, id)
        }
        .map_err(|e| Error::Other(format!("cgroup for restored {id}: {e}")))?;
        let dumped_pid = st.pid;
        st.id = id.to_string();
        st.cgroup = Some(cgroup);
        st.annotations = bundle.spec.annotations().clone().unwrap_or_default();

        let (dir, lock) = self.store().claim(id)?;
        let restored = self.restore_claimed(&dir, &mut st, &bundle, opts);
        if let Ok(pid) = &restored {
            // CRIU locks the network of every dump (connections or not) with that table.
            // Failing this leaves connections blocked, not the container broken: say so.
            if let Err(e) = netlock::delete_table_of(pid.as_raw(), &netlock::dump_table(dumped_pid)) {
                tracing::warn!("restored {id}, but its connections may stay blocked: {e}");
            }
        }
        drop(lock);
        match restored {
            Ok(pid) => Ok(Restored { pid }),
            Err(e) => {
                // Nothing left behind: the state directory and the cgroup.
                if let Some(cfg) = st.cgroup.as_ref() {
                    if let Ok(m) = crate::cgroups::manager(cfg) {
                        let _ = m.kill_all(libc::SIGKILL);
                        let _ = m.destroy();
                    }
                }
                let _ = self.store().remove(id);
                Err(e)
            }
        }
    }

    fn restore_claimed(
        &self,
        dir: &Path,
        st: &mut ContainerState,
        bundle: &crate::spec::Bundle,
        opts: &RestoreOptions,
    ) -> Result<Pid> {
        // The state first: a restore killed half-way leaves what `delete --force` can find.
        st.pid = 0;
        st.bundle = bundle.dir.clone();
        st.rootfs = bundle.rootfs.clone();
        self.store().save(st)?;
        // After the claim, so that an id in use is refused as such whatever CRIU can do.
        check_criu()?;
        let images = open_dir(&opts.image_path, "image path")?;
        let work_path = opts.work_path.as_ref().unwrap_or(&opts.image_path);
        std::fs::create_dir_all(work_path).ctx(|| format!("create work directory {}", work_path.display()))?;
        let work = open_dir(work_path, "work directory")?;
        let readonly = bundle.spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false);
        mountpoints::make(&bundle.spec, &bundle.rootfs)?;
        let root = RootBind::new(dir.join("criu-root"), &bundle.rootfs, readonly)?;

        let mut o = Opts::new(&images, &work, "restore.log", &opts.flags);
        o.enc.string(13, &root.path.to_string_lossy()).bool(26, true);
        if opts.lazy_pages {
            // Memory comes from `criu lazy-pages` (the daemon the caller started on this side,
            // fetching from the dump's page server) as the restored processes touch it.
            o.enc.bool(48, true);
        }
        o.external_mounts(&bundle.spec, None);
        // Open until CRIU is done with them.
        let _namespaces = namespaces::restore(&bundle.spec, &mut o)?;
        if let Some(cfg) = &st.cgroup {
            o.cgroup_binds_restore(&bundle.spec, cfg);
        }
        // Open until CRIU is done with them.
        let _stdio = descriptors::inherit(&opts.image_path, &mut o)?;
        let cgroup = st.cgroup.clone();
        let resources = bundle.spec.linux().as_ref().and_then(|l| l.resources().clone());
        let console = opts.console.as_ref();
        let mut pass_master = |script: &str, master: Option<OwnedFd>| -> Result<()> {
            let (Some(master), "orphan-pts-master") = (master, script) else {
                return Ok(());
            };
            let Some(console) = console else {
                return Err(Error::InvalidArgument(
                    "the checkpoint has a terminal: restore it with --console-socket".into(),
                ));
            };
            let socket = match console {
                Console::Socket(path) => crate::tty::connect(path)?,
                Console::Fd(fd) => fd.try_clone().ctx(|| "copy the console fd".into())?,
            };
            crate::tty::send_fd(
                socket.as_fd(),
                master.as_fd(),
                "/dev/ptmx",
                "the restored terminal's master on the console socket",
            )
        };
        let reply = rpc::call(
            rpc::RESTORE,
            o,
            |swrk, o| {
                if opts.flags.manage_cgroups_mode == CgroupMode::Ignore {
                    return Ok(());
                }
                match &cgroup {
                    Some(cfg) => place_in_cgroup(cfg, resources.as_ref(), swrk, o),
                    None => Ok(()),
                }
            },
            &mut pass_master,
        )?;
        drop(root);
        // The post-restore callback names the restored init; the final reply does too.
        let pid = reply
            .notifies
            .iter()
            .find(|(script, _)| script == "post-restore")
            .map(|(_, pid)| *pid)
            .or(reply.restored_pid)
            .filter(|p| *p > 0)
            .ok_or_else(|| Error::Other("criu restore succeeded but named no restored process".into()))?;
        let pid = Pid::from_raw(pid);
        let stat = crate::procfs::stat(pid)
            .ok_or_else(|| Error::Other(format!("restored init {pid} exited before hezi could adopt it")))?;

        st.pid = pid.as_raw();
        st.init_start_time = stat.start_time;
        st.created = crate::time::rfc3339_now();
        st.pid_file = opts.pid_file.clone();
        self.store().save(st)?;
        if let Some(path) = &opts.pid_file {
            crate::container::write_pid_file(path, pid)?;
        }
        Ok(pid)
    }
}

/// Make the restored container's cgroup with the bundle's limits, move criu swrk into it (a
/// systemd driver starts the scope with it), and tell CRIU to restore the tree there: cg_root
/// for each hierarchy, as /proc/PID/cgroup names swrk's place (runc does the same).
fn place_in_cgroup(
    cfg: &crate::cgroups::CgroupConfig,
    resources: Option<&oci_spec::runtime::LinuxResources>,
    swrk: i32,
    o: &mut Opts,
) -> Result<()> {
    let cg = |e: crate::cgroups::CgroupError| Error::Other(format!("restore's cgroup: {e}"));
    let mgr = crate::cgroups::manager(cfg).map_err(cg)?;
    mgr.create().map_err(cg)?;
    if let Some(r) = resources {
        mgr.apply_resources(r).map_err(cg)?;
    }
    mgr.add_init(swrk).map_err(cg)?;
    let file = format!("/proc/{swrk}/cgroup");
    let text = std::fs::read_to_string(&file).ctx(|| format!("read {file}"))?;
    for line in text.lines() {
        // "ID:CONTROLLERS:PATH"; v2's line has no controllers, and its root covers them all.
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        o.cgroup_root(ctrl, path);
    }
    Ok(())
}

/// The rootfs bound at `path` for CRIU's root option, unbound and removed on drop.
struct RootBind {
    path: PathBuf,
}

impl RootBind {
    /// `readonly`: root.readonly of the spec. CRIU does not make the restored root read-only
    /// again, so the bind it builds on is.
    fn new(path: PathBuf, rootfs: &Path, readonly: bool) -> Result<RootBind> {
        std::fs::create_dir(&path).ctx(|| format!("create {}", path.display()))?;
        let bind = RootBind { path };
        mount(
            Some(rootfs),
            &bind.path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx(|| format!("bind {} at {}", rootfs.display(), bind.path.display()))?;
        if readonly {
            mount(
                None::<&str>,
                &bind.path,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .ctx(|| format!("remount {} read-only", bind.path.display()))?;
        }
        Ok(bind)
    }
}

impl Drop for RootBind {
    fn drop(&mut self) {
        // Detach: the restored container holds its own copy of this mount in its namespace.
        let _ = umount2(&self.path, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.path);
    }
}
