//! `checkpoint`: dump a running container's process tree into an image directory. Without
//! --leave-running CRIU kills the processes once dumped and hezi deletes the container, as runc.
//! `--pre-dump` writes only the memory and leaves the container running; a later dump names it
//! with `--parent-path` and writes only the pages that changed since.

use std::path::{Component, Path, PathBuf};

use super::opts::Opts;
use super::{check_criu, descriptors, namespaces, open_dir, rpc, CheckpointOptions, STATE_IN_IMAGE};
use crate::container::{Runtime, Status};
use crate::error::{Error, Result, SysContext};

impl Runtime {
    pub fn checkpoint(&self, id: &str, opts: &CheckpointOptions) -> Result<()> {
        crate::id::validate(id)?;
        if opts.pre_dump && opts.leave_running {
            // Harmless, but says the caller expects something a pre-dump does not do.
            tracing::debug!("--leave-running with --pre-dump: a pre-dump always leaves it running");
        }
        let lock = self.store().lock(id)?;
        let st = self.store().load(id)?;
        match self.status(&st) {
            Status::Running | Status::Paused => {}
            s => {
                return Err(Error::WrongState {
                    id: id.into(),
                    op: "checkpoint",
                    status: s.to_string(),
                })
            }
        }
        if let Some(parent) = &opts.parent_path {
            let at = lexical_join(&opts.image_path, parent);
            if !at.is_dir() {
                return Err(Error::InvalidArgument(format!(
                    "--parent-path {}: no pre-dump at {}",
                    parent.display(),
                    at.display()
                )));
            }
        }
        if opts.lazy_pages && opts.page_server.is_none() {
            return Err(Error::InvalidArgument(
                "--lazy-pages needs --page-server ADDRESS:PORT: the dump serves the memory there".into(),
            ));
        }
        check_criu()?;
        let spec = crate::spec::parse_file(&st.bundle.join("config.json"))?;

        std::fs::create_dir_all(&opts.image_path)
            .ctx(|| format!("create image directory {}", opts.image_path.display()))?;
        let images = open_dir(&opts.image_path, "image directory")?;
        let work_path = opts.work_path.as_ref().unwrap_or(&opts.image_path);
        std::fs::create_dir_all(work_path).ctx(|| format!("create work directory {}", work_path.display()))?;
        let work = open_dir(work_path, "work directory")?;

        let log = if opts.pre_dump { "pre-dump.log" } else { "dump.log" };
        let mut o = Opts::new(&images, &work, log, &opts.flags);
        o.enc.int32(2, st.pid).string(13, &st.rootfs.to_string_lossy());
        if let Some(parent) = &opts.parent_path {
            o.enc.string(14, &parent.to_string_lossy());
        }
        if let Some((address, port)) = &opts.page_server {
            o.page_server(address, *port);
        }
        if opts.lazy_pages {
            o.enc.bool(48, true);
        }
        // freeze_cgroup: CRIU stops the tree with the container's freezer rather than ptrace,
        // and finds a paused container (containerd's `ctr c checkpoint` pauses first) already
        // frozen instead of waiting on tasks that cannot stop. As runc.
        if let Some(dir) = st
            .cgroup
            .as_ref()
            .and_then(|c| crate::cgroups::manager(c).ok())
            .and_then(|m| m.dir("freezer"))
        {
            o.enc.string(44, &dir.to_string_lossy());
        }
        if opts.pre_dump || opts.parent_path.is_some() {
            // track_mem: the kernel's soft-dirty bits say which pages changed since.
            o.enc.bool(15, true);
        }
        if opts.pre_dump {
            // Memory only: what restore needs (state, mounts, stdio) comes with the dump.
            rpc::call(rpc::PRE_DUMP, o, |_, _| Ok(()), &mut |_, _| Ok(()))?;
            return Ok(());
        }

        // The state goes in first: restore needs it to adopt what CRIU brings back.
        let state = serde_json::to_vec_pretty(&st).map_err(|e| Error::Other(format!("encode state: {e}")))?;
        let state_file = opts.image_path.join(STATE_IN_IMAGE);
        std::fs::write(&state_file, state).ctx(|| format!("write {}", state_file.display()))?;
        descriptors::record(st.pid, &opts.image_path, &mut o)?;
        if opts.leave_running {
            o.enc.bool(3, true);
        }
        o.external_mounts(&spec, Some(st.pid));
        namespaces::dump(&spec, &mut o)?;
        o.cgroup_binds_dump(st.pid)?;
        // A lazy dump serves its pages until the restore side has them all; "status-ready" says
        // the server is up, which `--status-fd` passes on (a byte, then closed), as runc.
        let mut status_fd = opts.status_fd.as_ref();
        let mut on_notify = |script: &str, _: Option<std::os::fd::OwnedFd>| -> Result<()> {
            if script == "status-ready" {
                if let Some(fd) = status_fd.take() {
                    nix::unistd::write(fd, &[0]).map_err(|e| Error::sys("write to --status-fd", e))?;
                }
            }
            Ok(())
        };
        rpc::call(rpc::DUMP, o, |_, _| Ok(()), &mut on_notify)?;
        drop(lock);

        if !opts.leave_running {
            // CRIU killed the tree after dumping it; what is left is a stopped container.
            self.delete(id, true)?;
        }
        Ok(())
    }
}

/// `base` joined with `rel` as CRIU will resolve it once `base` exists, `..` taken lexically
/// (base may not exist yet, and the check must not make it).
fn lexical_join(base: &Path, rel: &Path) -> PathBuf {
    let mut out = base.to_path_buf();
    for c in rel.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_paths_resolve_beside_the_image_directory() {
        assert_eq!(
            lexical_join(Path::new("/c/dump"), Path::new("../pre")),
            Path::new("/c/pre")
        );
        assert_eq!(lexical_join(Path::new("dump"), Path::new("../pre")), Path::new("pre"));
        assert_eq!(
            lexical_join(Path::new("/c/dump"), Path::new("/abs/pre")),
            Path::new("/abs/pre")
        );
        assert_eq!(
            lexical_join(Path::new("/c/dump"), Path::new("./p")),
            Path::new("/c/dump/p")
        );
    }
}
