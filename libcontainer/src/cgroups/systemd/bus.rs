//! A blocking D-Bus connection to systemd, just enough for unit jobs: authenticate, call a
//! method of the systemd Manager, and wait for the job it queued to finish.
//!
//! As root hezi talks to PID 1 over its private socket (`/run/systemd/private`, the one
//! `systemctl` uses): no dbus-daemon hop, no Hello or match rules, and systemd sends job signals
//! to every private connection. Where that socket cannot be opened it uses the system bus.
//!
//! Rootless, it talks to the user's own manager (`systemd --user`) the same way: its private
//! socket `$XDG_RUNTIME_DIR/systemd/private` (what `systemctl --user` uses), else the session
//! bus (`$DBUS_SESSION_BUS_ADDRESS`, or `$XDG_RUNTIME_DIR/bus`).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::wire::{self, Call, Message, Writer};
use super::BusError;

const PRIVATE_SOCKET: &str = "/run/systemd/private";
const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
pub const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// How long a unit job may take before hezi gives up on it (systemd's own default job timeout
/// for a scope is infinite; a stuck PID 1 must not hang `create` forever).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a quiet connection waits before it pings systemd (see [`Bus::wait_readable`]).
const NUDGE_AFTER_MS: u16 = 500;

/// Whether systemd is the init system: the check `sd_booted()` makes.
pub fn systemd_booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

pub struct Bus {
    reader: BufReader<UnixStream>,
    serial: u32,
    /// On the system bus, messages go to systemd's well-known name; on the private socket
    /// there is only systemd.
    destination: Option<&'static str>,
    /// Messages read while waiting for something else (a job's signal can come before the
    /// reply that names the job).
    pending: Vec<Message>,
}

impl Bus {
    /// Connect to systemd (`user`: the calling user's manager), the private socket first.
    pub fn connect(user: bool) -> Result<Bus, BusError> {
        if user {
            return Bus::connect_user();
        }
        if !systemd_booted() {
            return Err(BusError::NoSystemd);
        }
        match UnixStream::connect(PRIVATE_SOCKET) {
            Ok(s) => {
                tracing::debug!("systemd bus: connected to {PRIVATE_SOCKET}");
                Bus::handshake(s, None)
            }
            Err(private) => {
                let s = UnixStream::connect(SYSTEM_BUS)
                    .map_err(|e| BusError::Connect(format!("{PRIVATE_SOCKET}: {private}; {SYSTEM_BUS}: {e}")))?;
                let mut bus = Bus::handshake(s, Some(SYSTEMD))?;
                bus.join_system_bus()?;
                Ok(bus)
            }
        }
    }

    fn connect_user() -> Result<Bus, BusError> {
        let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR").ok_or_else(|| {
            BusError::Connect(
                "XDG_RUNTIME_DIR is not set: the user's systemd is found through it (rootless --systemd-cgroup)".into(),
            )
        })?;
        let private = Path::new(&runtime_dir).join("systemd/private");
        match UnixStream::connect(&private) {
            Ok(s) => {
                tracing::debug!("systemd bus: connected to {}", private.display());
                Bus::handshake(s, None)
            }
            Err(private_err) => {
                let session = session_bus_path(&runtime_dir);
                let s = UnixStream::connect(&session).map_err(|e| {
                    BusError::Connect(format!(
                        "the user's systemd: {}: {private_err}; {}: {e}",
                        private.display(),
                        session.display()
                    ))
                })?;
                let mut bus = Bus::handshake(s, Some(SYSTEMD))?;
                bus.join_system_bus()?;
                Ok(bus)
            }
        }
    }

    fn handshake(stream: UnixStream, destination: Option<&'static str>) -> Result<Bus, BusError> {
        stream
            .set_read_timeout(Some(JOB_TIMEOUT))
            .map_err(|e| BusError::Io(format!("set a read timeout: {e}")))?;
        let mut reader = BufReader::new(stream);
        // SASL EXTERNAL: the server checks our uid from the socket's credentials, which it sees
        // in its own user namespace (the initial one): inside podman's rootless namespace, root
        // is the user's own uid there.
        let uid = host_uid(nix::unistd::getuid().as_raw()).to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let hello = format!("\0AUTH EXTERNAL {hex}\r\n");
        reader
            .get_mut()
            .write_all(hello.as_bytes())
            .map_err(|e| BusError::Io(format!("send AUTH: {e}")))?;
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| BusError::Io(format!("read the AUTH answer: {e}")))?;
        tracing::debug!("systemd bus: auth answer {}", line.trim_end());
        if !line.starts_with("OK ") {
            return Err(BusError::Auth(line.trim_end().to_string()));
        }
        reader
            .get_mut()
            .write_all(b"BEGIN\r\n")
            .map_err(|e| BusError::Io(format!("send BEGIN: {e}")))?;
        Ok(Bus {
            reader,
            serial: 0,
            destination,
            pending: Vec::new(),
        })
    }

    /// On a message bus: say Hello, and ask for systemd's JobRemoved signals.
    fn join_system_bus(&mut self) -> Result<(), BusError> {
        let bus = "org.freedesktop.DBus";
        let call = |member, signature, body| Call {
            destination: Some(bus),
            path: "/org/freedesktop/DBus",
            interface: bus,
            member,
            signature,
            body,
        };
        self.call(call("Hello", "", Vec::new()))?;
        let mut rule = Writer::default();
        rule.str(&format!(
            "type='signal',sender='{SYSTEMD}',interface='{MANAGER}',member='JobRemoved'"
        ));
        self.call(call("AddMatch", "s", rule.buf))?;
        Ok(())
    }

    /// A string property of systemd's Manager object (org.freedesktop.DBus.Properties.Get).
    pub fn manager_property(&mut self, name: &str) -> Result<String, BusError> {
        let mut body = Writer::default();
        body.str(MANAGER);
        body.str(name);
        let reply = self.call(Call {
            destination: self.destination,
            path: MANAGER_PATH,
            interface: "org.freedesktop.DBus.Properties",
            member: "Get",
            signature: "ss",
            body: body.buf,
        })?;
        let mut r = reply.reader();
        let sig = r.sig()?;
        if sig != "s" {
            return Err(BusError::Protocol(format!(
                "property {name} is of type {sig:?}, not a string"
            )));
        }
        r.str()
    }

    /// A method of systemd's Manager object.
    pub fn manager_call(&mut self, member: &str, signature: &str, body: Vec<u8>) -> Result<Message, BusError> {
        let call = Call {
            destination: self.destination,
            path: MANAGER_PATH,
            interface: MANAGER,
            member,
            signature,
            body,
        };
        self.call(call)
    }

    /// Send `call` and return its reply; an error reply becomes [`BusError::Call`].
    fn call(&mut self, call: Call<'_>) -> Result<Message, BusError> {
        self.serial += 1;
        let serial = self.serial;
        let bytes = call.encode(serial);
        tracing::debug!("systemd bus: call {} serial {serial}", call.member);
        self.reader
            .get_mut()
            .write_all(&bytes)
            .map_err(|e| BusError::Io(format!("send {}: {e}", call.member)))?;
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let m = self.read(deadline, call.member)?;
            if m.reply_serial != Some(serial) {
                self.pending.push(m);
                continue;
            }
            return match m.kind {
                wire::METHOD_RETURN => Ok(m),
                wire::ERROR => Err(BusError::Call {
                    name: m.error_name.clone().unwrap_or_default(),
                    text: m.error_text(),
                }),
                k => Err(BusError::Protocol(format!("reply of message type {k}"))),
            };
        }
    }

    /// Wait for the JobRemoved signal of `job` (an object path) and return the job's result
    /// (`done`, `failed`, `canceled`, `timeout`, `dependency`, `skipped`).
    pub fn wait_job(&mut self, job: &str) -> Result<String, BusError> {
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            if let Some(i) = self
                .pending
                .iter()
                .position(|m| job_removed(m).is_some_and(|(j, _)| j == job))
            {
                let m = self.pending.swap_remove(i);
                return Ok(job_removed(&m).map(|(_, r)| r).unwrap_or_default());
            }
            // Older messages can never match again; keep only what a later wait might want.
            self.pending.retain(|m| job_removed(m).is_some());
            let m = self.read(deadline, &format!("the end of job {job}"))?;
            self.pending.push(m);
        }
    }

    /// Wait until a message starts to arrive, or `deadline` passes (an error naming `what`).
    ///
    /// systemd 252 can leave a request unanswered when it arrived in the same read as our
    /// BEGIN line: it goes on only once more bytes come. Seen in the cgroup v2 VM, where a
    /// StopUnit sent while PID 1 was busy reaping the scope never got its reply (systemctl
    /// went on working meanwhile). A Peer.Ping after a quiet spell is those bytes.
    fn wait_readable(&mut self, deadline: Instant, what: &str) -> Result<(), BusError> {
        while self.reader.buffer().is_empty() {
            let mut fds = [PollFd::new(self.reader.get_ref().as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(NUDGE_AFTER_MS)) {
                Ok(0) if Instant::now() > deadline => {
                    return Err(BusError::Io(format!(
                        "no answer from systemd about {what} in {JOB_TIMEOUT:?}"
                    )))
                }
                Ok(0) => self.nudge()?,
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(BusError::Io(format!("poll the systemd connection: {e}"))),
            }
        }
        Ok(())
    }

    /// org.freedesktop.DBus.Peer.Ping, answered by the bus library itself; its reply is
    /// never waited for.
    fn nudge(&mut self) -> Result<(), BusError> {
        tracing::debug!("systemd bus: no answer yet, pinging");
        self.serial += 1;
        let ping = Call {
            destination: self.destination,
            path: MANAGER_PATH,
            interface: "org.freedesktop.DBus.Peer",
            member: "Ping",
            signature: "",
            body: Vec::new(),
        };
        self.reader
            .get_mut()
            .write_all(&ping.encode(self.serial))
            .map_err(|e| BusError::Io(format!("send Ping: {e}")))
    }

    fn read(&mut self, deadline: Instant, what: &str) -> Result<Message, BusError> {
        self.wait_readable(deadline, what)?;
        let mut fixed = [0u8; 16];
        self.reader
            .read_exact(&mut fixed)
            .map_err(|e| BusError::Io(format!("read from systemd: {e}")))?;
        let mut msg = vec![0u8; 16 + wire::remaining_len(&fixed)?];
        msg[..16].copy_from_slice(&fixed);
        self.reader
            .read_exact(&mut msg[16..])
            .map_err(|e| BusError::Io(format!("read from systemd: {e}")))?;
        let m = Message::decode(&msg)?;
        tracing::debug!(
            "systemd bus: type {} {:?}.{:?} path {:?} reply to {:?}",
            m.kind,
            m.interface,
            m.member,
            m.path,
            m.reply_serial
        );
        Ok(m)
    }
}

/// The session bus: `$DBUS_SESSION_BUS_ADDRESS` when it is a `unix:path=`, else the
/// conventional `$XDG_RUNTIME_DIR/bus`.
fn session_bus_path(runtime_dir: &std::ffi::OsStr) -> std::path::PathBuf {
    std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .ok()
        .and_then(|a| {
            a.split(';').find_map(|t| {
                t.strip_prefix("unix:path=")
                    .map(|p| p.split(',').next().unwrap_or(p).to_string())
            })
        })
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(runtime_dir).join("bus"))
}

/// `uid` as the initial user namespace knows it (/proc/self/uid_map: inside LOWER COUNT).
fn host_uid(uid: u32) -> u32 {
    let Ok(map) = std::fs::read_to_string("/proc/self/uid_map") else {
        return uid;
    };
    map.lines()
        .filter_map(|l| {
            let f: Vec<u32> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            (f.len() == 3).then(|| (f[0], f[1], f[2]))
        })
        .find(|&(inside, _, count)| uid >= inside && uid - inside < count)
        .map_or(uid, |(inside, lower, _)| lower + (uid - inside))
}

/// `JobRemoved(u id, o job, s unit, s result)`: the job's path and result.
fn job_removed(m: &Message) -> Option<(String, String)> {
    if m.kind != wire::SIGNAL || m.member.as_deref() != Some("JobRemoved") || m.signature != "uoss" {
        return None;
    }
    let mut r = m.reader();
    r.u32().ok()?;
    let job = r.str().ok()?;
    r.str().ok()?;
    let result = r.str().ok()?;
    Some((job, result))
}
