//! `restore`: bring a checkpointed container back from its image directory under `id`, and
//! adopt the restored init into hezi's state. The rootfs is bound at a private mount point for
//! CRIU's root (it must be a mount point of its own), removed again whatever happens.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::Pid;

use super::{check_criu, open_dir, rpc, Opts, RestoreOptions, STATE_IN_IMAGE};
use crate::container::Runtime;
use crate::error::{Error, Result, SysContext};
use crate::state::ContainerState;

/// The restored container: its init, a child of the caller (CRIU restores it as its sibling).
#[derive(Debug)]
pub struct Restored {
    pub pid: Pid,
}

impl Runtime {
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
        if st.id != id {
            // The cgroup path and state CRIU brings back are the checkpointed container's.
            return Err(Error::InvalidArgument(format!(
                "restoring {} as {id}: restore under a new id is not supported yet",
                st.id
            )));
        }
        let bundle = crate::spec::Bundle::load(opts.bundle.as_deref().unwrap_or(&st.bundle))?;

        let (dir, lock) = self.store().claim(id)?;
        let restored = self.restore_claimed(&dir, &mut st, &bundle, opts);
        drop(lock);
        match restored {
            Ok(pid) => Ok(Restored { pid }),
            Err(e) => {
                // Nothing left behind: the state directory (and any cgroup CRIU made).
                if let Some(cfg) = st.cgroup.as_ref() {
                    if let Ok(m) = crate::cgroups::manager(cfg) {
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
        // After the claim, so that an id in use is refused as such whatever CRIU can do.
        check_criu()?;
        let images = open_dir(&opts.image_path, "image path")?;
        let work_path = opts.work_path.as_ref().unwrap_or(&opts.image_path);
        std::fs::create_dir_all(work_path).ctx(|| format!("create work directory {}", work_path.display()))?;
        let work = open_dir(work_path, "work directory")?;
        let readonly = bundle.spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false);
        let root = RootBind::new(dir.join("criu-root"), &bundle.rootfs, readonly)?;

        let mut o = Opts::new(
            &images,
            &work,
            "restore.log",
            (opts.tcp_established, opts.shell_job, opts.file_locks),
        );
        o.enc.string(13, &root.path.to_string_lossy()).bool(26, true);
        o.external_mounts(&bundle.spec, None);
        let reply = rpc::call(rpc::RESTORE, o.enc.into_bytes())?;
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
        st.bundle = bundle.dir.clone();
        st.rootfs = bundle.rootfs.clone();
        st.created = crate::time::rfc3339_now();
        self.store().save(st)?;
        Ok(pid)
    }
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
