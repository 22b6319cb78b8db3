//! The systemd cgroup driver (`--systemd-cgroup`): systemd owns the container's cgroup as a
//! transient scope unit, started over D-Bus with the init's pid in it and `Delegate=yes`.
//!
//! Everything past the unit's life cycle is the cgroupfs manager's work, on the directory
//! systemd made for the scope: resources are written there (after telling systemd the same
//! values as unit properties, so a daemon-reload does not reset them), and freeze, kill, pids,
//! stats and OOM events read and write it directly, as runc's systemd driver does.
//!
//! - `wire`: the D-Bus message format. `bus`: a blocking connection to systemd.
//! - `unit`: cgroupsPath → scope and slice, and resources → unit properties.

mod bus;
mod unit;
mod wire;

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

use super::{CgroupError, Manager, OomNotifier, Result, Stats, SubCgroups, TaskPlacement};
use bus::Bus;
use unit::Property;
use wire::Writer;

pub use bus::systemd_booted;

/// The root cgroup of the calling user's manager (`systemd --user`), below which it puts its
/// units: its Manager's ControlGroup property (`/user.slice/user-1000.slice/user@1000.service`
/// under a login; wherever the manager runs otherwise).
pub fn user_manager_root() -> std::result::Result<PathBuf, BusError> {
    let mut bus = Bus::connect(true)?;
    let root = bus.manager_property("ControlGroup")?;
    if !root.starts_with('/') {
        return Err(BusError::Protocol(format!(
            "the user's systemd names its cgroup {root:?}, not an absolute path"
        )));
    }
    Ok(PathBuf::from(root))
}

/// The error systemd answers for a unit it does not have loaded (a scope it already unloaded).
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
pub use unit::SystemdUnit;

/// What went wrong talking to systemd.
#[derive(Debug)]
pub enum BusError {
    /// systemd is not the init system here.
    NoSystemd,
    /// Neither systemd's private socket nor the system bus could be opened.
    Connect(String),
    /// The bus refused our credentials.
    Auth(String),
    /// Reading or writing the socket failed, or a job did not end in time.
    Io(String),
    /// A message that does not parse.
    Protocol(String),
    /// systemd answered with an error: its D-Bus error name, and the name with its text.
    Call { name: String, text: String },
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::NoSystemd => f.write_str(
                "systemd is not running on this host (no /run/systemd/system); run without --systemd-cgroup \
                 to manage cgroups through cgroupfs",
            ),
            BusError::Connect(m) => write!(f, "cannot reach systemd over D-Bus: {m}"),
            BusError::Auth(m) => write!(f, "D-Bus authentication refused: {m}"),
            BusError::Io(m) | BusError::Protocol(m) => f.write_str(m),
            BusError::Call { text, .. } => f.write_str(text),
        }
    }
}

/// `StopUnit hezi-a.scope: <what systemd or the socket said>`.
fn op_error(unit: &str, op: &str, e: BusError) -> CgroupError {
    CgroupError::Systemd(format!("{op} {unit}: {e}"))
}

/// A `Manager` whose cgroup is a systemd scope; `fs` is the cgroupfs manager for the scope's
/// directory in every hierarchy.
pub(crate) struct SystemdManager {
    unit: SystemdUnit,
    fs: Box<dyn Manager>,
}

impl SystemdManager {
    pub fn new(unit: SystemdUnit, fs: Box<dyn Manager>) -> SystemdManager {
        SystemdManager { unit, fs }
    }

    fn err(&self, op: &str, e: BusError) -> CgroupError {
        op_error(&self.unit.unit, op, e)
    }

    /// Call a Manager method that queues a job, wait for the job, and return its result.
    fn job(bus: &mut Bus, op: &str, signature: &str, body: Vec<u8>) -> std::result::Result<String, BusError> {
        let reply = bus.manager_call(op, signature, body)?;
        let job = reply.reader().str()?;
        bus.wait_job(&job)
    }

    /// [`SystemdManager::job`], where any result but `done` is an error.
    fn job_done(&self, bus: &mut Bus, op: &str, signature: &str, body: Vec<u8>) -> Result<()> {
        match Self::job(bus, op, signature, body) {
            Ok(r) if r == "done" => Ok(()),
            Ok(r) => Err(self.err(op, BusError::Protocol(format!("the job ended with result {r:?}")))),
            Err(e) => Err(self.err(op, e)),
        }
    }

    fn set_properties(&self, props: &[Property]) -> Result<()> {
        if props.is_empty() {
            return Ok(());
        }
        let mut bus = Bus::connect(self.unit.user).map_err(|e| self.err("SetUnitProperties", e))?;
        let mut body = Writer::default();
        body.str(&self.unit.unit);
        // runtime = true: the values live in /run and go with the unit.
        body.bool(true);
        unit::write_properties(&mut body, props);
        bus.manager_call("SetUnitProperties", "sba(sv)", body.buf)
            .map_err(|e| self.err("SetUnitProperties", e))?;
        Ok(())
    }
}

impl Manager for SystemdManager {
    /// The directories systemd will use for the scope, made now so that an existing cgroup
    /// with processes is refused before anything runs. The unit itself needs a pid.
    fn create(&self) -> Result<()> {
        self.fs.create()
    }

    /// A process joining a running container (`exec`): the scope exists, cgroupfs suffices.
    fn add_task(&self, pid: i32) -> Result<()> {
        self.fs.add_task(pid)
    }

    /// Start the scope with `pid` in it, then place `pid` in the hierarchies systemd does not
    /// manage (cgroup v1 controllers it leaves alone).
    fn add_init(&self, pid: i32) -> Result<()> {
        let op = "StartTransientUnit";
        let pid = u32::try_from(pid).map_err(|_| CgroupError::Invalid(format!("pid {pid} is negative")))?;
        let mut bus = Bus::connect(self.unit.user).map_err(|e| self.err(op, e))?;
        let mut body = Writer::default();
        body.str(&self.unit.unit);
        body.str("replace");
        unit::write_properties(&mut body, &unit::scope_properties(&self.unit, pid));
        // No auxiliary units.
        body.array(8, |_| {});
        self.job_done(&mut bus, op, "ssa(sv)a(sa(sv))", body.buf)?;
        self.fs.add_task(pid as i32)
    }

    fn apply_resources(&self, r: &LinuxResources) -> Result<()> {
        self.set_properties(&unit::resource_properties(r)?)?;
        self.fs.apply_resources(r)
    }

    fn update(&self, r: &LinuxResources) -> Result<()> {
        self.set_properties(&unit::resource_properties(r)?)?;
        self.fs.update(r)
    }

    fn freeze(&self) -> Result<()> {
        self.fs.freeze()
    }

    fn thaw(&self) -> Result<()> {
        self.fs.thaw()
    }

    fn is_frozen(&self) -> Result<bool> {
        self.fs.is_frozen()
    }

    fn pids(&self) -> Result<Vec<i32>> {
        self.fs.pids()
    }

    fn kill_all(&self, signal: i32) -> Result<()> {
        self.fs.kill_all(signal)
    }

    /// Stop the scope (systemd removes its cgroup), then whatever cgroupfs directories are
    /// left. A scope whose processes all exited is gone already: systemd unloads it.
    fn destroy(&self) -> Result<()> {
        let op = "StopUnit";
        match Bus::connect(self.unit.user) {
            Ok(mut bus) => {
                let mut body = Writer::default();
                body.str(&self.unit.unit);
                body.str("replace");
                match Self::job(&mut bus, op, "ss", body.buf) {
                    Ok(r) if r == "done" => {}
                    Ok(r) => {
                        let e = BusError::Protocol(format!("the job ended with result {r:?}"));
                        return Err(self.err(op, e));
                    }
                    Err(BusError::Call { name, .. }) if name == NO_SUCH_UNIT => {}
                    Err(e) => return Err(self.err(op, e)),
                }
            }
            // Without systemd there is no unit to stop (a state from before a reboot into
            // another init): the directories are all that is left.
            Err(BusError::NoSystemd) => {}
            Err(e) => return Err(self.err(op, e)),
        }
        self.fs.destroy()
    }

    /// None: the scope cannot exist before the process it is started with, so the init is
    /// cloned first and moved in by systemd.
    fn v2_dir_fd(&self) -> Result<Option<OwnedFd>> {
        Ok(None)
    }

    /// The scope exists once the init runs: an exec'd process goes where the cgroupfs manager
    /// puts it.
    fn task_placement(&self, sub: &SubCgroups) -> Result<TaskPlacement> {
        self.fs.task_placement(sub)
    }

    fn stats(&self) -> Result<Stats> {
        self.fs.stats()
    }

    fn oom_kill_count(&self) -> Result<u64> {
        self.fs.oom_kill_count()
    }

    fn oom_notifier(&self) -> Result<OomNotifier> {
        self.fs.oom_notifier()
    }

    fn dir(&self, controller: &str) -> Option<PathBuf> {
        self.fs.dir(controller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_to_do_and_name_the_unit() {
        assert!(BusError::NoSystemd.to_string().contains("without --systemd-cgroup"));
        let e = BusError::Call {
            name: "org.freedesktop.systemd1.UnitExists".into(),
            text: "org.freedesktop.systemd1.UnitExists: Unit hezi-a.scope already exists.".into(),
        };
        assert_eq!(
            op_error("hezi-a.scope", "StartTransientUnit", e).to_string(),
            "systemd: StartTransientUnit hezi-a.scope: org.freedesktop.systemd1.UnitExists: Unit hezi-a.scope \
             already exists."
        );
    }
}
