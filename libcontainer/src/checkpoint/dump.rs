//! `checkpoint`: dump a running container's process tree into an image directory. Without
//! --leave-running CRIU kills the processes once dumped and hezi deletes the container, as runc.

use super::{check_criu, open_dir, rpc, CheckpointOptions, Opts, STATE_IN_IMAGE};
use crate::container::{Runtime, Status};
use crate::error::{Error, Result, SysContext};

impl Runtime {
    pub fn checkpoint(&self, id: &str, opts: &CheckpointOptions) -> Result<()> {
        crate::id::validate(id)?;
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
        check_criu()?;
        let spec = crate::spec::parse_file(&st.bundle.join("config.json"))?;

        std::fs::create_dir_all(&opts.image_path)
            .ctx(|| format!("create image directory {}", opts.image_path.display()))?;
        let images = open_dir(&opts.image_path, "image directory")?;
        let work_path = opts.work_path.as_ref().unwrap_or(&opts.image_path);
        std::fs::create_dir_all(work_path).ctx(|| format!("create work directory {}", work_path.display()))?;
        let work = open_dir(work_path, "work directory")?;

        // The state goes in first: restore needs it to adopt what CRIU brings back.
        let state = serde_json::to_vec_pretty(&st).map_err(|e| Error::Other(format!("encode state: {e}")))?;
        let state_file = opts.image_path.join(STATE_IN_IMAGE);
        std::fs::write(&state_file, state).ctx(|| format!("write {}", state_file.display()))?;

        let mut o = Opts::new(
            &images,
            &work,
            "dump.log",
            (opts.tcp_established, opts.shell_job, opts.file_locks),
        );
        o.enc.int32(2, st.pid).string(13, &st.rootfs.to_string_lossy());
        if opts.leave_running {
            o.enc.bool(3, true);
        }
        o.external_mounts(&spec, Some(st.pid));
        rpc::call(rpc::DUMP, o.enc.into_bytes())?;
        drop(lock);

        if !opts.leave_running {
            // CRIU killed the tree after dumping it; what is left is a stopped container.
            self.delete(id, true)?;
        }
        Ok(())
    }
}
