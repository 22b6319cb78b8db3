//! containerd's task API (ttrpc `containerd.task.v2.Task` and `containerd.task.v3.Task`) over
//! libcontainer. Every container of
//! this shim lives in one map; every process the shim made is in a pid map the reaper reads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use libcontainer::Runtime;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

pub(crate) mod checkpoint;

use crate::container::{self, Container};
use crate::events::Events;
use crate::io::{IoConfig, ProcessIo};
use crate::options::Options;
use crate::process::{Phase, Process};
use crate::proto::events::{Event, TaskCreate, TaskDelete, TaskExit, TaskIO, TaskStart};
use crate::proto::rpc::{Code, Status};
use crate::proto::task::{self as api, ProcessRequest};
use crate::proto::{Empty, Message, Timestamp};

/// The task service as containerd 1.6 and 1.7 (and 2.x through its bridge for version-2 shims)
/// call it, and as containerd 2.x calls a shim that answered `start` with version 3. The two
/// have the same methods and messages; only the package name differs.
const TASK_SERVICES: [&str; 2] = ["containerd.task.v2.Task", "containerd.task.v3.Task"];

type TtrpcError = Status;
type TtrpcResult<T> = Result<T, Status>;

/// containerd's exit status for a process whose real status is unknown.
const UNKNOWN_EXIT_STATUS: u32 = 255;

fn status(code: Code, msg: impl Into<String>) -> TtrpcError {
    Status::new(code, msg)
}

fn internal(msg: impl Into<String>) -> TtrpcError {
    status(Code::Internal, msg)
}

/// libcontainer's errors with the codes containerd maps to its errdefs.
fn lc_error(e: libcontainer::Error) -> TtrpcError {
    crate::error::Error::from(e).into()
}

/// Every process the shim made, by pid: what the reaper's exits are matched against.
type PidMap = HashMap<i32, (Arc<Container>, Arc<Process>)>;

pub struct Inner {
    rt: Runtime,
    /// The same state root, creating containers in systemd scopes (SystemdCgroup, or a
    /// cgroupsPath of the form `slice:prefix:name`); later operations read the driver from
    /// the container's state, so `rt` serves them all.
    rt_systemd: Runtime,
    /// The shim's runtime options (from `start`); a Create's own options go on top.
    options: Options,
    namespace: String,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    pids: Mutex<PidMap>,
    events: Arc<Events>,
    /// Held while an exit becomes visible and its TaskExit is queued, and while TaskDelete is
    /// queued: a Delete that saw the exit cannot queue its event first (containerd's runc shim
    /// keeps the same order with its eventSendMu).
    exit_order: Mutex<()>,
    /// Ends the shim (after Shutdown's answer is written).
    exit: Box<dyn Fn() + Send + Sync>,
    /// Shutdown was asked for: the shim exits once the answer is written.
    shutting_down: std::sync::atomic::AtomicBool,
}

#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

/// Where the state root of a container is written in its bundle when the Root option moved it,
/// for `delete` after the shim died (which gets no options).
pub const ROOT_FILE: &str = "hezi-root";

/// Where libcontainer keeps its state for `namespace` (as runc's shim: one root per namespace,
/// below the Root option or hezi's default).
pub fn state_root(namespace: &str, root: Option<&Path>) -> PathBuf {
    root.unwrap_or(Path::new("/run/containerd/hezi")).join(namespace)
}

/// Whether `bundle`'s spec asks for a systemd cgroup path (`slice:prefix:name`, as CRI sends
/// on a node whose kubelet uses the systemd driver).
fn wants_systemd_cgroup(bundle: &Path) -> bool {
    let Ok(text) = std::fs::read(bundle.join("config.json")) else {
        return false;
    };
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return false;
    };
    spec.pointer("/linux/cgroupsPath")
        .and_then(|p| p.as_str())
        .is_some_and(|p| !p.starts_with('/') && p.matches(':').count() == 2)
}

impl Service {
    pub fn new(
        config: &crate::launch::ServeConfig,
        exit: impl Fn() + Send + Sync + 'static,
    ) -> Result<Service, String> {
        let namespace = config.namespace.as_str();
        let root = state_root(namespace, config.options.root.as_deref());
        let open = || Runtime::new(&root).map_err(|e| format!("open state root {}: {e}", root.display()));
        let (rt, rt_systemd) = (open()?, open()?.with_systemd_cgroup(true));
        let inner = Arc::new(Inner {
            rt,
            rt_systemd,
            options: config.options.clone(),
            namespace: namespace.to_string(),
            containers: Mutex::new(HashMap::new()),
            pids: Mutex::new(HashMap::new()),
            events: Arc::new(Events::start(config.ttrpc_address.clone(), namespace.to_string())),
            exit: Box::new(exit),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            exit_order: Mutex::new(()),
        });
        let weak = Arc::downgrade(&inner);
        crate::reaper::start(move |pid, code| {
            if let Some(inner) = weak.upgrade() {
                inner.on_exit(pid, code);
            }
        })
        .map_err(|e| format!("start the reaper: {e}"))?;
        Ok(Service { inner })
    }
}

impl Inner {
    fn containers(&self) -> MutexGuard<'_, HashMap<String, Arc<Container>>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pids(&self) -> MutexGuard<'_, PidMap> {
        self.pids.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn container(&self, id: &str) -> TtrpcResult<Arc<Container>> {
        self.containers()
            .get(id)
            .cloned()
            .ok_or_else(|| status(Code::NotFound, format!("container {id} not found")))
    }

    fn process(&self, id: &str, exec_id: &str) -> TtrpcResult<(Arc<Container>, Arc<Process>)> {
        let c = self.container(id)?;
        let p = c
            .process(exec_id)
            .ok_or_else(|| status(Code::NotFound, format!("process {exec_id} of container {id} not found")))?;
        Ok((c, p))
    }

    /// A child exited (reaper thread). Reporting waits for its output to drain, so it runs on a
    /// thread of its own and the reaper goes on reaping.
    fn on_exit(self: &Arc<Self>, pid: i32, code: u32) {
        let Some((c, p)) = self.pids().remove(&pid) else {
            // A helper, a logger, or an orphan reparented to us: nothing to report.
            return;
        };
        let inner = Arc::clone(self);
        let spawned = thread::Builder::new().name("exit".into()).spawn(move || {
            if p.exec_id.is_empty() {
                // Before waiting for the output to drain: in a shared pid namespace the init's
                // children hold it open.
                inner.kill_leftovers(&c.id);
            }
            let _order = p.lifecycle();
            if p.exec_id.is_empty() {
                // Before the exit is published, and before Wait returns (then Delete may
                // remove the cgroup): CRI needs TaskOOM first to say "OOMKilled".
                crate::oom::before_exit(&c);
            }
            let _queued_first = inner.exit_order.lock().unwrap_or_else(|p| p.into_inner());
            let exit = p.set_exited(code);
            let id = if p.exec_id.is_empty() {
                c.id.clone()
            } else {
                p.exec_id.clone()
            };
            inner.events.publish(Event::exit(TaskExit {
                container_id: c.id.clone(),
                id,
                pid: pid as u32,
                exit_status: exit.code,
                exited_at: Some(Timestamp::of(exit.at)),
            }));
        });
        if let Err(e) = spawned {
            log::error!("report the exit of {pid}: {e}");
        }
    }

    fn kill_leftovers(&self, id: &str) {
        match self.rt.kill_leftovers(id) {
            Ok(()) | Err(libcontainer::Error::NotFound(_)) => {}
            Err(e) => log::warn!("kill what the init of {id} left: {e}"),
        }
    }

    fn create(&self, req: &api::CreateTaskRequest) -> crate::error::Result<u32> {
        use crate::error::Error;
        if self.containers().contains_key(&req.id) {
            return Err(Error::new(
                Code::AlreadyExists,
                format!("container {} already exists", req.id),
            ));
        }
        let bundle = PathBuf::from(&req.bundle);
        let options = self.task_options(req, &bundle)?;
        let systemd = options.systemd_cgroup.unwrap_or(false) || wants_systemd_cgroup(&bundle);
        let rt = if systemd { &self.rt_systemd } else { &self.rt };
        let rootfs = bundle.join("rootfs");
        crate::mount::mount(&req.rootfs, &rootfs).map_err(Error::internal)?;
        let mounted = !req.rootfs.is_empty();
        let undo = |e: Error| {
            if mounted {
                if let Err(u) = crate::mount::unmount(&rootfs) {
                    log::warn!("{u}");
                }
            }
            e
        };
        let cfg = IoConfig {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let (io, stdio) = ProcessIo::open(&cfg, &self.namespace, &req.id)
            .map_err(Error::internal)
            .map_err(undo)?;
        let init = Arc::new(Process::new("", cfg, None));
        let c = Arc::new(Container::new(&req.id, bundle.clone(), mounted, Arc::clone(&init)));
        if !req.checkpoint.is_empty() {
            // No container yet: Start restores the checkpoint with this IO (as runc's shim).
            *c.restore.lock().unwrap_or_else(|p| p.into_inner()) = Some(checkpoint::PendingRestore {
                image: PathBuf::from(&req.checkpoint),
                stdio,
                io,
            });
            self.containers().insert(req.id.clone(), Arc::clone(&c));
            self.publish_create(req, 0);
            return Ok(0);
        }
        let spawned = container::spawn_init(rt, &req.id, &bundle, stdio, req.terminal).map_err(|e| {
            // A helper that died half-way (killed, say) may have left state, a cgroup and an
            // init behind: a failed Create leaves nothing, like a failed `hezi create`.
            match self.rt.delete(&req.id, true) {
                Ok(()) | Err(libcontainer::Error::NotFound(_)) => {}
                Err(d) => log::warn!("clean up after the failed create of {}: {d}", req.id),
            }
            undo(e)
        })?;
        let pid = spawned.pid;
        self.pids().insert(pid, (Arc::clone(&c), Arc::clone(&init)));
        spawned.finish(&init, io, Phase::Created)?;
        self.containers().insert(req.id.clone(), Arc::clone(&c));
        crate::oom::watch(&self.rt, &c, Arc::clone(&self.events));
        self.publish_create(req, pid as u32);
        Ok(pid as u32)
    }

    fn publish_create(&self, req: &api::CreateTaskRequest, pid: u32) {
        self.events.publish(Event::create(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: Some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            }),
            checkpoint: req.checkpoint.clone(),
            pid,
        }));
    }

    /// The options for this Create: the shim's, with the request's own on top (containerd 2.x
    /// sends a pod's containers to the sandbox's shim with no `start`, so their options come
    /// only here). Where the Root option moved the state, the bundle says so for `delete`.
    fn task_options(&self, req: &api::CreateTaskRequest, bundle: &Path) -> crate::error::Result<Options> {
        let parsed = req.options.as_ref().map(crate::options::from_any).unwrap_or_default();
        for w in &parsed.warnings {
            log::warn!("create {}: {w}", req.id);
        }
        if parsed.options.root.is_some() && parsed.options.root != self.options.root {
            log::warn!(
                "create {}: Root differs from the shim's; the state stays under {}",
                req.id,
                self.rt.store().root().display()
            );
        }
        if self.options.root.is_some() {
            let root = self.rt.store().root().display().to_string();
            std::fs::write(bundle.join(ROOT_FILE), root)
                .map_err(|e| crate::error::Error::internal(format!("write {ROOT_FILE} in the bundle: {e}")))?;
        }
        Ok(self.options.merged(&parsed.options))
    }

    fn start(&self, id: &str, exec_id: &str) -> TtrpcResult<u32> {
        let (c, p) = self.process(id, exec_id)?;
        let _order = p.lifecycle();
        if p.state().phase != Phase::Created {
            return Err(status(
                Code::FailedPrecondition,
                format!("process {id}/{exec_id} already started"),
            ));
        }
        if exec_id.is_empty() {
            if let Some(pending) = c.take_restore() {
                return self.start_restore(&c, pending);
            }
            self.rt.start(id).map_err(lc_error)?;
            let pid = {
                let mut st = p.state();
                if st.phase == Phase::Created {
                    st.phase = Phase::Running;
                }
                st.pid
            };
            self.events.publish(Event::start(TaskStart {
                container_id: id.to_string(),
                pid: pid as u32,
            }));
            return Ok(pid as u32);
        }
        let opened = ProcessIo::open(&p.io_cfg, &self.namespace, id)
            .map_err(crate::error::Error::internal)
            .and_then(|(io, stdio)| Ok((io, container::spawn_exec(&self.rt, id, &p, stdio)?)));
        let (io, spawned) = match opened {
            Ok(started) => started,
            Err(e) => {
                // As containerd's runc shim: an exec that could not start is finished, so a
                // Wait already pending (CRI's ExecSync waits before it starts) returns, and a
                // Kill says "already finished". 255 is containerd's unknown exit status.
                p.set_exited(UNKNOWN_EXIT_STATUS);
                return Err(e.into());
            }
        };
        let pid = spawned.pid;
        self.pids().insert(pid, (Arc::clone(&c), Arc::clone(&p)));
        spawned.finish(&p, io, Phase::Running)?;
        self.events.publish(Event::exec_started(id, exec_id, pid as u32));
        Ok(pid as u32)
    }

    fn delete(&self, id: &str, exec_id: &str) -> TtrpcResult<api::DeleteResponse> {
        let (c, p) = self.process(id, exec_id)?;
        let response = |pid: i32, exit: Option<crate::process::Exit>| {
            let (code, at) = exit.map_or((0, std::time::SystemTime::now()), |e| (e.code, e.at));
            api::DeleteResponse {
                pid: pid as u32,
                exit_status: code,
                exited_at: Some(Timestamp::of(at)),
            }
        };
        if !exec_id.is_empty() {
            if p.state().phase == Phase::Running {
                return Err(status(
                    Code::FailedPrecondition,
                    format!("exec {exec_id} is still running"),
                ));
            }
            c.execs().remove(exec_id);
            let st = p.state();
            return Ok(response(st.pid, st.exit));
        }
        let phase = p.state().phase;
        if phase == Phase::Running && p.state().exit.is_none() {
            return Err(status(
                Code::FailedPrecondition,
                format!("container {id} is still running"),
            ));
        }
        if c.take_restore().is_some() {
            // Created from a checkpoint and never started: no process was ever made.
            p.set_exited(0);
        }
        // A created (never started) init is killed by libcontainer's delete.
        match self.rt.delete(id, phase == Phase::Created) {
            Ok(()) | Err(libcontainer::Error::NotFound(_)) => {}
            Err(e) => return Err(lc_error(e)),
        }
        let exit = p.wait_timeout(container::DELETE_EXIT_WAIT);
        if c.mounted_rootfs {
            crate::mount::unmount(&c.bundle.join("rootfs")).map_err(internal)?;
        }
        c.oom_stop.lock().unwrap_or_else(|p| p.into_inner()).take();
        c.oom.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.containers().remove(id);
        let pid = p.pid();
        let resp = response(pid, exit);
        let _after_the_exit = self.exit_order.lock().unwrap_or_else(|p| p.into_inner());
        self.events.publish(Event::delete(TaskDelete {
            container_id: id.to_string(),
            pid: pid as u32,
            exit_status: resp.exit_status,
            exited_at: resp.exited_at.clone(),
            id: id.to_string(),
        }));
        Ok(resp)
    }

    fn kill(&self, req: &api::KillRequest) -> TtrpcResult<()> {
        let (_, p) = self.process(&req.id, &req.exec_id)?;
        let sig = Signal::try_from(req.signal as i32)
            .map_err(|_| status(Code::InvalidArgument, format!("invalid signal {}", req.signal)))?;
        let (pid, stopped) = {
            let st = p.state();
            (st.pid, st.exit.is_some())
        };
        if stopped || pid == 0 {
            return Err(status(Code::NotFound, "process already finished"));
        }
        if req.exec_id.is_empty() {
            return self.rt.kill(&req.id, sig, req.all).map_err(|e| match e {
                libcontainer::Error::WrongState { .. } => status(Code::NotFound, "process already finished"),
                e => lc_error(e),
            });
        }
        nix::sys::signal::kill(Pid::from_raw(pid), sig).map_err(|e| match e {
            nix::errno::Errno::ESRCH => status(Code::NotFound, "process already finished"),
            e => internal(format!("signal {pid}: {e}")),
        })
    }

    fn state(&self, id: &str, exec_id: &str) -> TtrpcResult<api::StateResponse> {
        use api::Status;
        let (c, p) = self.process(id, exec_id)?;
        let st = p.state();
        let mut status = match st.phase {
            Phase::Created => Status::Created,
            Phase::Running => Status::Running,
            Phase::Stopped => Status::Stopped,
        };
        if exec_id.is_empty() && st.phase == Phase::Running {
            if let Ok(s) = self.rt.state(id) {
                if s.status == libcontainer::Status::Paused {
                    status = Status::Paused;
                }
            }
        }
        Ok(api::StateResponse {
            id: if exec_id.is_empty() {
                id.to_string()
            } else {
                exec_id.to_string()
            },
            bundle: c.bundle.display().to_string(),
            pid: st.pid as u32,
            status: status as u32,
            stdin: p.io_cfg.stdin.clone(),
            stdout: p.io_cfg.stdout.clone(),
            stderr: p.io_cfg.stderr.clone(),
            terminal: p.io_cfg.terminal,
            exit_status: st.exit.map_or(0, |e| e.code),
            exited_at: st.exit.map(|e| Timestamp::of(e.at)),
            exec_id: exec_id.to_string(),
        })
    }
}

fn decode<M: Message>(payload: &[u8]) -> TtrpcResult<M> {
    M::decode(payload).map_err(|e| status(Code::InvalidArgument, e.to_string()))
}

fn empty() -> TtrpcResult<Vec<u8>> {
    Ok(Empty::default().encode())
}

impl crate::ttrpc::Handler for Service {
    fn handle(&self, service: &str, method: &str, payload: &[u8]) -> Result<Vec<u8>, Status> {
        if !TASK_SERVICES.contains(&service) {
            return Err(status(
                Code::Unimplemented,
                format!("service {service} is not served here"),
            ));
        }
        let inner = &self.inner;
        match method {
            "Create" => {
                let req: api::CreateTaskRequest = decode(payload)?;
                let pid = inner.create(&req).map_err(|e| {
                    log::error!("create {}: {e}", req.id);
                    Status::from(e)
                })?;
                Ok(api::CreateTaskResponse { pid }.encode())
            }
            "Start" => {
                let req: ProcessRequest = decode(payload)?;
                let pid = inner.start(&req.id, &req.exec_id)?;
                Ok(api::StartResponse { pid }.encode())
            }
            "State" => {
                let req: ProcessRequest = decode(payload)?;
                Ok(inner.state(&req.id, &req.exec_id)?.encode())
            }
            "Delete" => {
                let req: ProcessRequest = decode(payload)?;
                Ok(inner.delete(&req.id, &req.exec_id)?.encode())
            }
            "Pids" => self.pids(decode(payload)?),
            "Pause" => self.pause(decode(payload)?),
            "Resume" => self.resume(decode(payload)?),
            "Checkpoint" => {
                inner.checkpoint(&decode(payload)?)?;
                empty()
            }
            "Kill" => {
                inner.kill(&decode(payload)?)?;
                empty()
            }
            "Exec" => self.exec(decode(payload)?),
            "ResizePty" => self.resize_pty(decode(payload)?),
            "CloseIO" => self.close_io(decode(payload)?),
            "Update" => self.update(decode(payload)?),
            "Wait" => self.wait(decode(payload)?),
            "Stats" => self.stats(decode(payload)?),
            "Connect" => self.connect(decode(payload)?),
            "Shutdown" => self.shutdown(decode(payload)?),
            _ => Err(status(
                Code::Unimplemented,
                format!("{service}/{method} is not implemented"),
            )),
        }
    }

    fn answered(&self, method: &str) {
        // Exit only once containerd has its answer, so Shutdown does not look like a crash.
        if method == "Shutdown" && self.inner.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
            (self.inner.exit)();
        }
        // The call's code stays in the page cache; the idle shim need not keep it mapped.
        crate::trim::own_binary();
    }
}

impl Service {
    fn pids(&self, req: api::ContainerRequest) -> TtrpcResult<Vec<u8>> {
        let pids = self.inner.rt.pids(&req.id).map_err(lc_error)?;
        let processes = pids
            .into_iter()
            .map(|pid| api::ProcessInfo {
                pid: pid as u32,
                info: None,
            })
            .collect();
        Ok(api::PidsResponse { processes }.encode())
    }

    fn pause(&self, req: api::ContainerRequest) -> TtrpcResult<Vec<u8>> {
        self.inner.container(&req.id)?;
        self.inner.rt.pause(&req.id).map_err(lc_error)?;
        self.inner.events.publish(Event::paused(&req.id));
        empty()
    }

    fn resume(&self, req: api::ContainerRequest) -> TtrpcResult<Vec<u8>> {
        self.inner.container(&req.id)?;
        self.inner.rt.resume(&req.id).map_err(lc_error)?;
        self.inner.events.publish(Event::resumed(&req.id));
        empty()
    }

    fn exec(&self, req: api::ExecProcessRequest) -> TtrpcResult<Vec<u8>> {
        let c = self.inner.container(&req.id)?;
        let spec_json = req.spec.as_ref().map_or(&[][..], |a| &a.value[..]);
        let spec: oci_spec::runtime::Process = serde_json::from_slice(spec_json).map_err(|e| {
            status(
                Code::InvalidArgument,
                format!("exec {}: process spec: {e}", req.exec_id),
            )
        })?;
        let cfg = IoConfig {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        {
            let mut execs = c.execs();
            if execs.contains_key(&req.exec_id) {
                return Err(status(
                    Code::AlreadyExists,
                    format!("exec {} already exists", req.exec_id),
                ));
            }
            execs.insert(
                req.exec_id.clone(),
                Arc::new(Process::new(&req.exec_id, cfg, Some(spec))),
            );
        }
        self.inner.events.publish(Event::exec_added(&req.id, &req.exec_id));
        empty()
    }

    fn resize_pty(&self, req: api::ResizePtyRequest) -> TtrpcResult<Vec<u8>> {
        let (_, p) = self.inner.process(&req.id, &req.exec_id)?;
        p.with_io(|io| io.resize(req.width, req.height))
            .unwrap_or_else(|| Err("the process has no stdio yet".into()))
            .map_err(|e| status(Code::FailedPrecondition, e))?;
        empty()
    }

    fn close_io(&self, req: api::CloseIORequest) -> TtrpcResult<Vec<u8>> {
        let (_, p) = self.inner.process(&req.id, &req.exec_id)?;
        if req.stdin {
            p.with_io(|io| io.close_stdin());
        }
        empty()
    }

    fn update(&self, req: api::UpdateTaskRequest) -> TtrpcResult<Vec<u8>> {
        self.inner.container(&req.id)?;
        let json = req.resources.as_ref().map_or(&[][..], |a| &a.value[..]);
        let res: oci_spec::runtime::LinuxResources = serde_json::from_slice(json)
            .map_err(|e| status(Code::InvalidArgument, format!("update {}: resources: {e}", req.id)))?;
        self.inner.rt.update(&req.id, &res).map_err(lc_error)?;
        empty()
    }

    fn wait(&self, req: ProcessRequest) -> TtrpcResult<Vec<u8>> {
        let (_, p) = self.inner.process(&req.id, &req.exec_id)?;
        let exit = p.wait();
        Ok(api::WaitResponse {
            exit_status: exit.code,
            exited_at: Some(Timestamp::of(exit.at)),
        }
        .encode())
    }

    fn stats(&self, req: api::ContainerRequest) -> TtrpcResult<Vec<u8>> {
        self.inner.container(&req.id)?;
        let s = self.inner.rt.stats(&req.id).map_err(lc_error)?;
        Ok(api::StatsResponse {
            stats: Some(crate::stats::to_any(&s)),
        }
        .encode())
    }

    fn connect(&self, req: api::ContainerRequest) -> TtrpcResult<Vec<u8>> {
        let task_pid = self.inner.container(&req.id).map(|c| c.init.pid()).unwrap_or(0);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: task_pid as u32,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
        .encode())
    }

    fn shutdown(&self, req: api::ShutdownRequest) -> TtrpcResult<Vec<u8>> {
        // Other containers of the group still need this shim.
        if req.now || self.inner.containers().is_empty() {
            // Asked to go with containers left: what an exited init left behind in a shared pid
            // namespace must not outlive the shim that would reap it.
            let left: Vec<String> = (self.inner.containers().iter())
                .filter(|(_, c)| c.init.state().exit.is_some())
                .map(|(id, _)| id.clone())
                .collect();
            for id in left {
                self.inner.kill_leftovers(&id);
            }
            self.inner
                .shutting_down
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        empty()
    }
}
