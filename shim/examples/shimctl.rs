//! A minimal task API client for driving the shim where no containerd is, as in the systemd
//! test VM (scripts/vm/systemd-tests.sh). Speaks containerd.task.v3.Task with the shim's own
//! messages and ttrpc client.
//!
//! ```text
//! shimctl options TOML                  runtime options (runtimeoptions.v1.Options) on stdout
//! shimctl ADDRESS create ID BUNDLE [--stdout URI] [--stderr URI] [--terminal] [--checkpoint DIR]
//!                                   [--binary NAME]
//!                                       prints the init's pid; --binary: runc shim options
//!                                       (containerd.runc.v1.Options) naming the runtime binary
//! shimctl ADDRESS checkpoint ID DIR [--exit]
//! shimctl ADDRESS start|delete ID
//! shimctl ADDRESS kill ID SIGNAL
//! shimctl ADDRESS wait ID               prints the exit status
//! shimctl ADDRESS shutdown
//! ```
//!
//! SHIMCTL_SERVICE names the task service (default containerd.task.v3.Task; containerd 1.6's
//! runc shim serves containerd.task.v2.Task).

#[allow(dead_code, unused_imports)]
#[path = "../src/proto/mod.rs"]
mod proto;
#[allow(dead_code)]
#[path = "../src/ttrpc.rs"]
mod ttrpc;

use std::io::Write;
use std::process::ExitCode;

use proto::bootstrap::RuntimeOptions;
use proto::task::{
    CheckpointOptions, CheckpointTaskRequest, CreateTaskRequest, CreateTaskResponse, KillRequest, ProcessRequest,
    ShutdownRequest, WaitResponse,
};
use proto::{Any, Message};

const SERVICE: &str = "containerd.task.v3.Task";

/// The value after `--NAME` in `args`, if given.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).map(String::as_str)
}

/// A protobuf string field, for the two foreign messages built here.
fn string_field(out: &mut Vec<u8>, field: u8, s: &str) {
    out.push(field << 3 | 2);
    let mut len = s.len();
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(s.as_bytes());
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shimctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .ok_or("missing argument (see the source)")
    };
    if arg(0)? == "options" {
        let any = Any::pack(
            "runtimeoptions.v1.Options",
            &RuntimeOptions {
                config_body: arg(1)?.as_bytes().to_vec(),
                ..Default::default()
            },
        );
        return std::io::stdout().write_all(&any.encode()).map_err(|e| e.to_string());
    }
    let mut client = ttrpc::Client::connect(arg(0)?).map_err(|e| format!("connect: {e}"))?;
    let service = std::env::var("SHIMCTL_SERVICE").unwrap_or_else(|_| SERVICE.to_string());
    let mut call =
        |method: &str, req: Vec<u8>| client.call(&service, method, req).map_err(|e| format!("{method}: {e}"));
    let process = |id: &str| ProcessRequest {
        id: id.to_string(),
        exec_id: String::new(),
    };
    match arg(1)? {
        "create" => {
            // containerd.runc.v1.Options: binary_name is field 6.
            let options = flag(args, "--binary").map(|name| {
                let mut value = Vec::new();
                string_field(&mut value, 6, name);
                Any {
                    type_url: "containerd.runc.v1.Options".into(),
                    value,
                }
            });
            let req = CreateTaskRequest {
                id: arg(2)?.to_string(),
                bundle: arg(3)?.to_string(),
                stdout: flag(args, "--stdout").unwrap_or_default().to_string(),
                stderr: flag(args, "--stderr").unwrap_or_default().to_string(),
                checkpoint: flag(args, "--checkpoint").unwrap_or_default().to_string(),
                terminal: args.iter().any(|a| a == "--terminal"),
                options,
                ..Default::default()
            };
            let resp = CreateTaskResponse::decode(&call("Create", req.encode())?).map_err(|e| e.to_string())?;
            println!("{}", resp.pid);
        }
        "checkpoint" => {
            let opts = CheckpointOptions {
                exit: args.iter().any(|a| a == "--exit"),
                ..Default::default()
            };
            let req = CheckpointTaskRequest {
                id: arg(2)?.to_string(),
                path: arg(3)?.to_string(),
                options: Some(Any::pack("containerd.runc.v1.CheckpointOptions", &opts)),
            };
            call("Checkpoint", req.encode())?;
        }
        "start" => {
            call("Start", process(arg(2)?).encode())?;
        }
        "delete" => {
            call("Delete", process(arg(2)?).encode())?;
        }
        "kill" => {
            let req = KillRequest {
                id: arg(2)?.to_string(),
                signal: arg(3)?.parse().map_err(|_| "SIGNAL is a number")?,
                ..Default::default()
            };
            call("Kill", req.encode())?;
        }
        "wait" => {
            let resp = WaitResponse::decode(&call("Wait", process(arg(2)?).encode())?).map_err(|e| e.to_string())?;
            println!("{}", resp.exit_status);
        }
        "shutdown" => {
            let req = ShutdownRequest {
                id: String::new(),
                now: false,
            };
            call("Shutdown", req.encode())?;
        }
        other => return Err(format!("unknown command {other:?}")),
    }
    Ok(())
}
