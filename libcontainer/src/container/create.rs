//! `create`: the parent side. Claims the id, prepares state and cgroups, and starts the init
//! through the launcher (launch.rs) with its own steps: id maps and cgroups before `Go`, the
//! runtime's hooks, the pid saved in the state at `Ready`. Anything that fails leaves nothing
//! behind: the launcher kills a half-started init, the guard removes the cgroups and the state
//! directory (and kills an init that started but whose pid file could not be written).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::launch::{Console, End, Launch, Steps};
use super::{cgroup_err, Runtime};
use crate::cgroups::{CgroupConfig, Manager};
use crate::error::{Error, Result, SysContext};
use crate::namespaces::{self, Plan};
use crate::netdev;
use crate::process::init::{self, InitArgs};
use crate::process::spawn;
use crate::seccomp::ProcessInfo;
use crate::spec::Bundle;
use crate::state::{ContainerState, EXEC_FIFO};

#[derive(Default, Debug)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    /// `--console-socket`: where to send the pty master when process.terminal is set.
    pub console_socket: Option<PathBuf>,
    /// An already connected console socket (used by `run` in the foreground), instead of a path.
    pub console_fd: Option<std::os::fd::OwnedFd>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Socket-activation fds (the caller's LISTEN_FDS): kept open after the preserved ones, and
    /// announced to the program as LISTEN_FDS=N, LISTEN_PID=1.
    pub listen_fds: u32,
    /// `--pidfd-socket`: where to send a pidfd of the init once it is set up.
    pub pidfd_socket: Option<PathBuf>,
}

/// What `create` made.
#[derive(Debug, Clone, Copy)]
pub struct Created {
    pub pid: Pid,
    /// The init sent a pty master to the console socket.
    pub terminal: bool,
}

/// Undoes a partial create unless disarmed.
struct Guard<'a> {
    rt: &'a Runtime,
    id: &'a str,
    init: Option<Pid>,
    cgroup: Option<Box<dyn Manager>>,
    /// The rootfs and how many mounts it had, when the container mounts in the host's namespace.
    host_mounts: Option<(&'a Path, usize)>,
    /// The container's network namespace (held open, so it outlives the init) and the devices
    /// moved into it.
    net_devices: Option<(OwnedFd, &'a [crate::state::NetDevice])>,
    intel_rdt: Option<&'a crate::state::RdtGroup>,
    armed: bool,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.init {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        // The namespace lives on while we hold it, dead init or not.
        if let Some((ns, devices)) = &self.net_devices {
            if let Err(e) = netdev::move_out(devices, ns.as_fd()) {
                tracing::warn!("cleanup after failed create: network devices: {e}");
            }
        }
        if let Some((rootfs, before)) = self.host_mounts {
            if let Err(e) = super::host_mounts::detach_above(rootfs, before) {
                tracing::warn!("cleanup after failed create: {e}");
            }
        }
        if let Some(m) = &self.cgroup {
            if let Err(e) = m.destroy() {
                tracing::warn!("cleanup after failed create: {e}");
            }
        }
        if let Some(g) = self.intel_rdt {
            if let Err(e) = crate::intelrdt::remove(g) {
                tracing::warn!("cleanup after failed create: {e}");
            }
        }
        if let Err(e) = self.rt.store().remove(self.id) {
            tracing::warn!("cleanup after failed create: {e}");
        }
    }
}

impl Runtime {
    /// Create container `id` from `opts.bundle`. The caller is the init's parent (so `run` can
    /// wait for it).
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<Created> {
        crate::id::validate(id)?;
        let bundle = Bundle::load(&opts.bundle)?;
        let spec = &bundle.spec;
        check_supported(spec, opts)?;
        let net_devices = netdev::from_spec(spec)?;
        // Here, before anything is made: where resctrl is not mounted this is the error.
        let rdt = crate::intelrdt::plan(spec, id)?;
        // Compiled before anything is made: a bad profile fails here, naming what is wrong.
        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(crate::seccomp::Filter::compile(s)?),
            None => None,
        };
        let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().as_deref());
        let cgroup_cfg = if self.systemd_cgroup {
            CgroupConfig::resolve_systemd(cgroups_path, id, self.rootless)
        } else {
            CgroupConfig::resolve(cgroups_path, id)
        }
        .map_err(cgroup_err)?;

        let (dir, lock) = self.store().claim(id)?;
        let mut guard = Guard {
            rt: self,
            id,
            init: None,
            cgroup: None,
            host_mounts: None,
            net_devices: None,
            intel_rdt: None,
            armed: true,
        };
        let host_mounts_below = if namespaces::in_host_mount_ns(spec) {
            Some(super::host_mounts::count_at(&bundle.rootfs)?)
        } else {
            None
        };
        guard.host_mounts = host_mounts_below.map(|n| (bundle.rootfs.as_path(), n));
        let mut state = ContainerState {
            oci_version: spec.version().clone(),
            id: id.to_string(),
            pid: 0,
            init_start_time: 0,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: crate::time::rfc3339_now(),
            owner: owner(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            pid_file: opts.pid_file.as_ref().map(|p| absolute(p)),
            cgroup: Some(cgroup_cfg.clone()),
            shared_pid_ns: false,
            host_mounts_below,
            hooks: spec.hooks().clone(),
            // Recorded before they move: a delete after a create killed half-way moves back
            // whatever made it across.
            net_devices: net_devices.clone(),
            intel_rdt: rdt.as_ref().map(|p| p.group.clone()),
        };
        // Saved before anything else is made, so `delete --force` finds what to clean up even if
        // this process is killed half-way.
        self.store().save(&state)?;
        make_fifo(&dir.join(EXEC_FIFO))?;

        let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
        let mgr = super::rootless::make_cgroup(self.rootless, &cgroup_cfg, resources).map_err(cgroup_err)?;
        // Placement costs no migration (cgroups/join.rs): cloned into the v2 directory, the v1
        // ones joined by the init itself. None: the driver places it (systemd), at `placed`.
        let join = match &mgr {
            Some(m) => m.join_fds().map_err(cgroup_err)?,
            None => {
                // Rootless without a cgroup of its own: later commands must not look for one.
                state.cgroup = None;
                self.store().save(&state)?;
                None
            }
        };
        let placed_by_runtime = mgr.is_some() && join.is_none();
        let (cgroup_fd, cgroup_tasks) = join.map(|j| (j.clone_into, j.tasks)).unwrap_or_default();
        guard.cgroup = mgr;
        if let Some(p) = &rdt {
            guard.intel_rdt = Some(&p.group);
            p.make()?;
        }
        let plan = Plan::new(spec, cgroup_fd.is_some() && cgroup_tasks.is_empty())?;
        // Saved with the init's pid.
        state.shared_pid_ns = !plan.new_pid;
        let terminal = spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false);
        let console = Console::connect(terminal, opts.console_socket.as_deref(), opts.console_fd.as_ref())?;
        // The init gets the fifo itself (O_PATH, reopened for writing through /proc/self/fd), as
        // runc's does: a descriptor of the state directory would give the container a way out
        // to the host's filesystem (openat "..") for as long as the init waits.
        let fifo_path = dir.join(EXEC_FIFO);
        let exec_fifo = nix::fcntl::open(&fifo_path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .ctx(|| format!("open {}", fifo_path.display()))?;

        let mut steps = InitSteps {
            rt: self,
            id,
            spec,
            plan: &plan,
            mgr: guard.cgroup.as_deref(),
            placed_by_runtime,
            pidfd_socket: opts.pidfd_socket.as_deref(),
            net_devices: &net_devices,
            net_ns: None,
            intel_rdt: rdt.as_ref().map(|p| &p.group),
            state: &mut state,
        };
        let launch = Launch {
            end: End::Waiting,
            seccomp: seccomp.as_ref(),
        };
        // The child closure moves what only the child keeps; the rest it borrows.
        // The lock stays ours until create returns; the child closes its copy.
        let (rootfs, bundle_dir, plan, filter, lock) = (&bundle.rootfs, &bundle.dir, &plan, seccomp.as_ref(), &lock);
        let started = launch.start(
            &mut steps,
            || spawn::clone_init(plan, cgroup_fd.as_ref().map(|f| f.as_fd())),
            // Moved in: the parent's copies of the console and the fifo close with the closure.
            move |channel| {
                lock.close_in_child();
                init::run(InitArgs {
                    id,
                    spec,
                    rootfs,
                    bundle: bundle_dir,
                    plan,
                    channel,
                    exec_fifo,
                    no_pivot: opts.no_pivot,
                    preserve_fds: opts.preserve_fds + opts.listen_fds,
                    listen_fds: opts.listen_fds,
                    no_new_keyring: opts.no_new_keyring,
                    console: console.for_child(terminal, opts.console_fd.as_ref()),
                    seccomp: filter,
                    cgroup_tasks,
                    cgroup_layout: cgroup_cfg.layout.as_ref(),
                })
            },
        );
        guard.net_devices = steps.net_ns.take().map(|ns| (ns, net_devices.as_slice()));
        let pid = started?;
        guard.init = Some(pid);
        if let Some(p) = &state.pid_file {
            super::write_pid_file(p, pid)?;
        }
        guard.armed = false;
        Ok(Created { pid, terminal })
    }
}

/// create's steps of the exchange (launch.rs).
struct InitSteps<'a> {
    rt: &'a Runtime,
    id: &'a str,
    spec: &'a oci_spec::runtime::Spec,
    plan: &'a Plan,
    /// None: rootless, without a cgroup (rootless.rs).
    mgr: Option<&'a dyn Manager>,
    /// No join fds: the manager places the init itself (`add_init`).
    placed_by_runtime: bool,
    pidfd_socket: Option<&'a Path>,
    net_devices: &'a [crate::state::NetDevice],
    /// The namespace the devices went to, for the guard to take them back from.
    net_ns: Option<OwnedFd>,
    intel_rdt: Option<&'a crate::state::RdtGroup>,
    state: &'a mut ContainerState,
}

impl Steps for InitSteps<'_> {
    fn placed(&mut self, pid: Pid) -> Result<()> {
        if self.plan.new_user {
            super::idmap::write(self.spec, pid)?;
        }
        // None: rootless without a cgroup of its own (rootless.rs).
        if let Some(mgr) = self.mgr {
            if self.placed_by_runtime {
                mgr.add_init(pid.as_raw()).map_err(cgroup_err)?;
            }
            if let Some(res) = self.spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
                mgr.apply_resources(&super::rootless::applicable(self.rt.rootless, res))
                    .map_err(cgroup_err)?;
            }
        }
        if let Some(g) = self.intel_rdt {
            crate::intelrdt::add(g, pid)?;
        }
        if !self.net_devices.is_empty() {
            // Before `Go`: the container's program finds its devices there from the start.
            let ns = self.net_ns.insert(netdev::container_ns(self.spec, pid)?);
            netdev::move_in(self.net_devices, ns.as_fd())?;
        }
        Ok(())
    }

    fn hooks(&mut self, pid: Pid) -> Result<String> {
        let state = ContainerState {
            pid: pid.as_raw(),
            ..self.state.clone()
        };
        // runtime.md: `created` is "after step 2", the environment's creation; the hooks are
        // steps 3 to 5 (crun says the same; runc 1.1 says `creating`). The init's
        // createContainer and startContainer hooks get this state too.
        let json = super::hook_state(&state, super::Status::Created);
        let hooks = self.spec.hooks().as_ref();
        crate::hooks::run(hooks, crate::hooks::Stage::Prestart, &json)?;
        crate::hooks::run(hooks, crate::hooks::Stage::CreateRuntime, &json)?;
        Ok(json)
    }

    /// From here the init may outlive us: its pid must be in the state first.
    fn record(&mut self, pid: Pid) -> Result<()> {
        let stat = crate::procfs::stat(pid).ok_or_else(|| Error::Init("init exited right after setup".into()))?;
        if let Some(path) = self.pidfd_socket {
            super::pidfd::send(path, pid, super::pidfd::Kind::Init)?;
        }
        self.state.pid = pid.as_raw();
        self.state.init_start_time = stat.start_time;
        self.rt.store().save(self.state)
    }

    fn child_dumpable_until_go(&self) -> bool {
        self.plan.new_user && !nix::unistd::geteuid().is_root()
    }

    fn seccomp_info(&self, pid: Pid) -> ProcessInfo<'_> {
        ProcessInfo {
            oci_version: &self.state.oci_version,
            id: self.id,
            status: oci_spec::runtime::ContainerState::Creating,
            pid: pid.as_raw(),
            init_pid: pid.as_raw(),
            bundle: &self.state.bundle,
            annotations: &self.state.annotations,
        }
    }

    fn failed(&self, why: String) -> Error {
        Error::Init(why)
    }
}

/// Spec features that are not implemented yet get an error, never a silent no-op.
fn check_supported(spec: &oci_spec::runtime::Spec, opts: &CreateOptions) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec("process is required".into()))?;
    if process.terminal().unwrap_or(false) && opts.console_socket.is_none() && opts.console_fd.is_none() {
        return Err(Error::InvalidSpec(
            "process.terminal is true but no --console-socket was given".into(),
        ));
    }
    let linux = spec.linux().as_ref();
    let has_ns = |t| {
        linux
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
            .any(|n| n.typ() == t)
    };
    crate::lsm::check(spec)?;
    super::rootless::check_spec(spec)?;
    if let Some(p) = linux.and_then(|l| l.memory_policy().as_ref()) {
        crate::process::mempolicy::check(p)?;
    }
    crate::process::attrs::warn_personality_flags(linux.and_then(|l| l.personality().as_ref()));
    let restricted = linux.is_some_and(|l| {
        l.masked_paths().as_ref().is_some_and(|p| !p.is_empty())
            || l.readonly_paths().as_ref().is_some_and(|p| !p.is_empty())
    });
    if restricted && namespaces::in_host_mount_ns(spec) {
        // runc's rule: hiding paths in the host's mount namespace would hide them on the host.
        return Err(Error::InvalidSpec(
            "maskedPaths and readonlyPaths need a mount namespace (linux.namespaces has none)".into(),
        ));
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has_ns(oci_spec::runtime::LinuxNamespaceType::Uts)
    {
        return Err(Error::InvalidSpec("hostname needs a uts namespace".into()));
    }
    Ok(())
}

fn make_fifo(path: &Path) -> Result<()> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o622)).ctx(|| format!("mkfifo {}", path.display()))?;
    // mkfifo honours the umask; the init may write as any uid.
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        path,
        Mode::from_bits_truncate(0o622),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .ctx(|| format!("chmod {}", path.display()))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The name runc shows in `list`'s OWNER column: the user running the runtime. Read from
/// /etc/passwd directly: NSS would probe nscd and load nsswitch.conf on every create.
fn owner() -> String {
    let uid = nix::unistd::geteuid().as_raw();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}
