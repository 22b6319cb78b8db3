//! OCI hooks: each is a program run with the container's state JSON on stdin, its own args
//! (`args[0]` is `argv[0]`) and exactly its own env, killed after its timeout.
//!
//! Who runs what, and where (config.md, "POSIX-platform Hooks"):
//! - prestart, createRuntime: the runtime, after the init made its mounts, before pivot_root;
//! - createContainer: the init, in the container's namespaces, before pivot_root;
//! - startContainer: the init, after `start`, before exec of the program;
//! - poststart: `start`, after the program started (failures are logged, not fatal);
//! - poststop: `delete`, after the container stopped (failures are logged, not fatal).

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Stage {
    /// Every stage hezi runs, in the order of a container's life (`features` lists their names).
    pub const ALL: [Stage; 6] = [
        Stage::Prestart,
        Stage::CreateRuntime,
        Stage::CreateContainer,
        Stage::StartContainer,
        Stage::Poststart,
        Stage::Poststop,
    ];

    /// The stage's key in config.json's `hooks`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Prestart => "prestart",
            Stage::CreateRuntime => "createRuntime",
            Stage::CreateContainer => "createContainer",
            Stage::StartContainer => "startContainer",
            Stage::Poststart => "poststart",
            Stage::Poststop => "poststop",
        }
    }
}

/// The hooks of one stage (empty if none).
pub fn of(hooks: Option<&Hooks>, stage: Stage) -> &[Hook] {
    let Some(h) = hooks else { return &[] };
    #[allow(deprecated)]
    let list = match stage {
        Stage::Prestart => h.prestart(),
        Stage::CreateRuntime => h.create_runtime(),
        Stage::CreateContainer => h.create_container(),
        Stage::StartContainer => h.start_container(),
        Stage::Poststart => h.poststart(),
        Stage::Poststop => h.poststop(),
    };
    list.as_deref().unwrap_or(&[])
}

/// Run every hook of `stage` in order; the first failure stops the rest and is returned.
pub fn run(hooks: Option<&Hooks>, stage: Stage, state_json: &str) -> Result<()> {
    for (i, hook) in of(hooks, stage).iter().enumerate() {
        run_one(hook, state_json, stage)
            .map_err(|m| Error::Other(format!("{} hook #{i} ({}): {m}", stage.name(), hook.path().display())))?;
    }
    Ok(())
}

/// For the stages whose failures the spec says only to log (poststart, poststop): every hook
/// runs, whatever the ones before it did, and each failure is a warning.
pub fn run_logged(hooks: Option<&Hooks>, stage: Stage, state_json: &str) {
    for (i, hook) in of(hooks, stage).iter().enumerate() {
        if let Err(m) = run_one(hook, state_json, stage) {
            tracing::warn!("{} hook #{i} ({}): {m}", stage.name(), hook.path().display());
        }
    }
}

/// Every hook of every stage: an absolute path and, when given, a timeout above zero
/// (config.md "POSIX-platform Hooks").
pub fn validate(hooks: Option<&Hooks>) -> std::result::Result<(), String> {
    for stage in Stage::ALL {
        for (i, hook) in of(hooks, stage).iter().enumerate() {
            if !hook.path().is_absolute() {
                return Err(format!(
                    "{} hook #{i}: path {} must be absolute",
                    stage.name(),
                    hook.path().display()
                ));
            }
            if let Some(t) = hook.timeout().filter(|t| *t <= 0) {
                return Err(format!(
                    "{} hook #{i}: timeout {t} must be greater than zero",
                    stage.name()
                ));
            }
        }
    }
    Ok(())
}

fn run_one(hook: &Hook, state_json: &str, stage: Stage) -> std::result::Result<(), String> {
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args().as_deref() {
        if let Some((first, rest)) = args.split_first() {
            cmd.arg0(first).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        match child.try_wait().map_err(|e| format!("wait: {e}"))? {
            Some(status) => break status,
            None if deadline.is_some_and(|d| Instant::now() >= d) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {}s", hook.timeout().unwrap_or(0)));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(failure(hook, status, stage))
    }
}

/// Why a hook that ran did not succeed. A signal death names the signal and the hook's args (the
/// path alone does not say which of several calls of one program died); SIGSYS is what a seccomp
/// filter's KILL actions send, and startContainer hooks run under the container's filter.
fn failure(hook: &Hook, status: ExitStatus, stage: Stage) -> String {
    let Some(sig) = status.signal() else {
        return format!("failed: {status}");
    };
    let name = nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("{sig}"));
    let args = hook.args().as_deref().unwrap_or(&[]);
    let mut msg = format!("killed by signal {name}, args {args:?}");
    if status.core_dumped() {
        msg.push_str(" (core dumped)");
    }
    if sig == libc::SIGSYS {
        msg.push_str(if stage == Stage::StartContainer {
            ": a seccomp filter killed it on a syscall (startContainer hooks run under the \
             container's linux.seccomp)"
        } else {
            ": a seccomp filter killed it on a syscall"
        });
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hooks {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn state_on_stdin_args_env_and_failure() {
        let dir = std::env::temp_dir().join(format!("hezi-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let h = hook(&format!(
            r#"{{"createRuntime":[{{"path":"/bin/sh","args":["sh","-c","cat > {0}; echo \"$0 $X\" >> {0}","a1"],"env":["X=y"]}}],
                "poststop":[{{"path":"/bin/sh","args":["sh","-c","exit 3"]}}]}}"#,
            out.display()
        ));
        run(Some(&h), Stage::CreateRuntime, "{\"id\":\"c\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"c\"}a1 y\n");
        let err = run(Some(&h), Stage::Poststop, "{}").unwrap_err().to_string();
        assert!(err.contains("poststop hook #0"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_hook_killed_by_a_signal_is_named_with_its_args_and_the_signal() {
        let h = hook(r#"{"startContainer":[{"path":"/bin/sh","args":["sh","-c","kill -SYS $$"]}]}"#);
        let err = run(Some(&h), Stage::StartContainer, "{}").unwrap_err().to_string();
        assert!(
            err.contains(
                r#"startContainer hook #0 (/bin/sh): killed by signal SIGSYS, args ["sh", "-c", "kill -SYS $$"]"#
            ),
            "{err}"
        );
        assert!(err.contains("seccomp"), "{err}");
        let h = hook(r#"{"poststop":[{"path":"/bin/sh","args":["sh","-c","kill -TERM $$"]}]}"#);
        let err = run(Some(&h), Stage::Poststop, "{}").unwrap_err().to_string();
        assert!(err.contains("killed by signal SIGTERM"), "{err}");
        assert!(!err.contains("seccomp"), "{err}");
    }

    #[test]
    fn timeout_kills_the_hook() {
        let h = hook(r#"{"prestart":[{"path":"/bin/sleep","args":["sleep","30"],"timeout":1}]}"#);
        let err = run(Some(&h), Stage::Prestart, "{}").unwrap_err().to_string();
        assert!(err.contains("timed out after 1s"), "{err}");
    }
}
