//! `exec`: runc's flags, merged onto the container's own process spec as runc does (or a whole
//! process from `-p FILE`), then run in the foreground (waiting, exit code passed on) or detached.

use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use oci_spec::runtime::{Capabilities, Capability, Process};

use super::relay::Relay;
use super::run::{wait_forwarding, FORWARDED};
use crate::cli::{self, flag, opt};
use crate::{Failure, Global};

pub(crate) const FLAGS: &[cli::Flag] = &[
    opt(&["p", "process"]),
    opt(&["console-socket"]),
    flag(&["t", "tty"]),
    opt(&["cwd"]),
    opt(&["e", "env"]),
    opt(&["u", "user"]),
    opt(&["additional-gids", "g"]),
    opt(&["c", "cap"]),
    flag(&["no-new-privs"]),
    opt(&["apparmor"]),
    opt(&["process-label"]),
    flag(&["d", "detach"]),
    opt(&["pid-file"]),
    opt(&["preserve-fds"]),
    flag(&["ignore-paused"]),
    opt(&["cgroup"]),
    opt(&["pidfd-socket"]),
];

fn bad(m: impl Into<String>) -> Failure {
    Failure::Usage(m.into())
}

fn parse_id(s: &str, what: &str) -> Result<u32, Failure> {
    s.parse().map_err(|_| bad(format!("invalid {what} {s:?}")))
}

/// The process to run: `-p FILE` as is (runc ignores the other process flags then), or the
/// container's process with the command and flags.
fn build_process(a: &cli::Args, base: Option<Process>, command: &[String]) -> Result<Process, Failure> {
    if let Some(path) = a.value("p") {
        let text = std::fs::read(path).map_err(|e| Failure::Error(format!("read {path}: {e}")))?;
        return process_file(&text, base.as_ref()).map_err(|e| Failure::Error(format!("{path}: {e}")));
    }
    if command.is_empty() {
        return Err(bad("exec: requires the container id and a command"));
    }
    let mut p = base.unwrap_or_default();
    p.set_args(Some(command.to_vec()));
    p.set_terminal(Some(a.is_set("t")));
    // Appended as runc appends them: the process's environment is merged in the container
    // (libcontainer::process::env), where a later entry's value wins at the first one's place.
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.values("e").iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = a.value("cwd") {
        p.set_cwd(PathBuf::from(cwd));
    }
    let user = p.user_mut();
    if let Some(u) = a.value("u") {
        let (uid, gid) = u.split_once(':').map_or((u, None), |(x, y)| (x, Some(y)));
        user.set_uid(parse_id(uid, "uid")?);
        if let Some(g) = gid {
            user.set_gid(parse_id(g, "gid")?);
        }
    }
    if !a.values("additional-gids").is_empty() {
        let gids = a
            .values("additional-gids")
            .iter()
            .map(|g| parse_id(g, "gid"))
            .collect::<Result<Vec<_>, _>>()?;
        user.set_additional_gids(Some(gids));
    }
    if !a.values("c").is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        // As runc: an ambient capability needs the inheritable bit, which --cap does not give;
        // so ambient only where the process already has an inheritable set.
        let ambient = caps.inheritable().is_some();
        for name in a.values("c") {
            let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| bad(format!("unknown capability {name:?}")))?;
            let add = |set: &Option<Capabilities>| {
                let mut s = set.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            if ambient {
                caps.set_ambient(add(caps.ambient()));
            }
        }
        p.set_capabilities(Some(caps));
    }
    if a.is_set("no-new-privs") {
        p.set_no_new_privileges(Some(true));
    }
    // libcontainer applies them at the exec, or refuses them up front on a host without the
    // module (lsm::check_process).
    if let Some(profile) = a.value("apparmor") {
        p.set_apparmor_profile(Some(profile.to_string()));
    }
    if let Some(label) = a.value("process-label") {
        p.set_selinux_label(Some(label.to_string()));
    }
    Ok(p)
}

/// A process.json as runc reads it for `exec -p`: fields left out are filled as runc fills them
/// (no `user`: uid and gid 0; no `env`: none; no `capabilities`: the container's), while a
/// missing or relative `cwd` and empty `args` are refused with runc's messages.
fn process_file(text: &[u8], base: Option<&Process>) -> Result<Process, String> {
    let mut v: serde_json::Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    for key in libcontainer::spec::normalise_process_keys(&mut v) {
        tracing::warn!("process.json: {key}: a key in another case than the spec's; read as runc reads it");
    }
    let obj = v.as_object_mut().ok_or("a process must be a JSON object")?;
    match obj.get("cwd").and_then(|c| c.as_str()) {
        None | Some("") => return Err("Cwd property must not be empty".into()),
        Some(c) if !c.starts_with('/') => return Err("Cwd must be an absolute path".into()),
        Some(_) => {}
    }
    if obj.get("args").and_then(|a| a.as_array()).is_none_or(|a| a.is_empty()) {
        return Err("args must not be empty".into());
    }
    if obj.get("user").is_none_or(|u| u.is_null()) {
        obj.insert("user".into(), serde_json::json!({ "uid": 0, "gid": 0 }));
    }
    libcontainer::spec::read_spec_scheduler_flags(&mut v);
    let mut p: Process = serde_json::from_value(v).map_err(|e| e.to_string())?;
    if p.capabilities().is_none() {
        p.set_capabilities(base.and_then(|b| b.capabilities().clone()));
    }
    Ok(p)
}

/// `exec`: a wrong command line exits 1; anything failing after that exits 255 with
/// `exec failed: ...`, as runc's does, so a caller can tell it from the program's own status.
pub fn exec(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse(args, FLAGS, true)?;
    let (id, command) = a
        .positional
        .split_first()
        .ok_or_else(|| bad("exec: requires the container id"))?;
    exec_in(g, &a, id, command).map_err(|f| match f {
        Failure::Usage(m) | Failure::Error(m) => Failure::ErrorExit(format!("exec failed: {m}"), 255),
        other => other,
    })
}

fn exec_in(g: &Global, a: &cli::Args, id: &str, command: &[String]) -> Result<(), Failure> {
    let sub_cgroups =
        libcontainer::cgroups::SubCgroups::parse(a.values("cgroup")).map_err(|e| Failure::Error(e.to_string()))?;
    let rt = super::runtime(g)?;
    let base = rt.spec_of(id)?.process().clone();
    let process = build_process(a, base, command)?;
    let detach = a.is_set("d");
    let preserve_fds = match a.value("preserve-fds") {
        None => 0,
        Some(v) => v.parse().map_err(|_| bad(format!("invalid --preserve-fds {v:?}")))?,
    };
    let terminal = process.terminal().unwrap_or(false);
    let mut opts = libcontainer::ExecOptions {
        process,
        console_socket: a.value("console-socket").map(PathBuf::from),
        console_fd: None,
        pid_file: a.value("pid-file").map(PathBuf::from),
        preserve_fds,
        ignore_paused: a.is_set("ignore-paused"),
        pidfd_socket: a.value("pidfd-socket").map(PathBuf::from),
        sub_cgroups,
    };
    let peer = if terminal && !detach && opts.console_socket.is_none() {
        let (ours, theirs) = super::run::console_pair()?;
        opts.console_fd = Some(theirs);
        Some(ours)
    } else {
        None
    };
    let mut set = SigSet::empty();
    if !detach {
        FORWARDED.iter().for_each(|s| set.add(*s));
        set.add(Signal::SIGCHLD);
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .map_err(|e| Failure::Error(format!("block signals: {e}")))?;
    }
    let execed = rt.exec(id, &opts)?;
    drop(opts.console_fd.take());
    if detach {
        return Ok(());
    }
    let relay = match &peer {
        Some(p) => {
            let master = libcontainer::tty::recv_fd(p.as_fd())?;
            Some(Relay::start(master).map_err(|e| Failure::Error(format!("attach the terminal: {e}")))?)
        }
        None => None,
    };
    let code = wait_forwarding(execed.pid, &set, relay.as_ref());
    if let Some(r) = relay {
        r.finish();
    }
    match code {
        Ok(0) => Ok(()),
        Ok(code) => Err(Failure::Exit(code)),
        Err(e) => Err(Failure::Error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> cli::Args {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        cli::parse(&args, FLAGS, true).unwrap()
    }

    #[test]
    fn lsm_flags_set_the_process_settings() {
        let a = parse(&[
            "--apparmor",
            "hezi-profile",
            "--process-label",
            "system_u:system_r:container_t:s0",
            "id",
        ]);
        let p = build_process(&a, Some(Process::default()), &["true".to_string()])
            .ok()
            .unwrap();
        assert_eq!(p.apparmor_profile().as_deref(), Some("hezi-profile"));
        assert_eq!(p.selinux_label().as_deref(), Some("system_u:system_r:container_t:s0"));
        // Without the flags the container's own settings stay.
        let mut base = Process::default();
        base.set_apparmor_profile(Some("from-spec".into()));
        let p = build_process(&parse(&["id"]), Some(base), &["true".to_string()])
            .ok()
            .unwrap();
        assert_eq!(p.apparmor_profile().as_deref(), Some("from-spec"));
        assert_eq!(p.selinux_label(), &None);
    }

    #[test]
    fn process_file_fills_what_runc_fills() {
        // The container's capabilities: oci-spec's default process has some.
        let p = process_file(br#"{"args":["sh"],"cwd":"/"}"#, Some(&Process::default())).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
        assert_eq!(p.env(), &None);
        assert_eq!(p.capabilities(), Process::default().capabilities());
        assert!(p.capabilities().is_some());
        let p = process_file(br#"{"args":["sh"],"cwd":"/","user":{"uid":7,"gid":8}}"#, None).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (7, 8));
        for (text, says) in [
            (&br#"{"args":["sh"]}"#[..], "Cwd property must not be empty"),
            (br#"{"args":["sh"],"cwd":""}"#, "Cwd property must not be empty"),
            (br#"{"args":["sh"],"cwd":"x"}"#, "absolute"),
            (br#"{"args":[],"cwd":"/"}"#, "args must not be empty"),
            (br#"[]"#, "object"),
        ] {
            let e = process_file(text, None).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
