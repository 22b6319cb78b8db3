//! A minimal task API client for driving the shim where no containerd is, as in the systemd
//! test VM (scripts/vm/systemd-tests.sh). Speaks containerd.task.v3.Task with the shim's own
//! messages and ttrpc client.
//!
//! ```text
//! shimctl options TOML                  runtime options (runtimeoptions.v1.Options) on stdout
//! shimctl ADDRESS create ID BUNDLE      prints the init's pid
//! shimctl ADDRESS start|delete ID
//! shimctl ADDRESS kill ID SIGNAL
//! shimctl ADDRESS wait ID               prints the exit status
//! shimctl ADDRESS shutdown
//! ```

#[allow(dead_code, unused_imports)]
#[path = "../src/proto/mod.rs"]
mod proto;
#[allow(dead_code)]
#[path = "../src/ttrpc.rs"]
mod ttrpc;

use std::io::Write;
use std::process::ExitCode;

use proto::bootstrap::RuntimeOptions;
use proto::task::{CreateTaskRequest, CreateTaskResponse, KillRequest, ProcessRequest, ShutdownRequest, WaitResponse};
use proto::{Any, Message};

const SERVICE: &str = "containerd.task.v3.Task";

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
    let mut call = |method: &str, req: Vec<u8>| client.call(SERVICE, method, req).map_err(|e| format!("{method}: {e}"));
    let process = |id: &str| ProcessRequest {
        id: id.to_string(),
        exec_id: String::new(),
    };
    match arg(1)? {
        "create" => {
            let req = CreateTaskRequest {
                id: arg(2)?.to_string(),
                bundle: arg(3)?.to_string(),
                ..Default::default()
            };
            let resp = CreateTaskResponse::decode(&call("Create", req.encode())?).map_err(|e| e.to_string())?;
            println!("{}", resp.pid);
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
