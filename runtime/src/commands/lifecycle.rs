//! create, start, state, kill, delete.

use std::path::PathBuf;

use super::run_image;
use crate::cli::{self, flag, opt, Flag};
use crate::{Failure, Global};
use libcontainer::CreateOptions;

pub const CREATE_FLAGS: &[Flag] = &[
    opt(&["b", "bundle"]),
    opt(&["console-socket"]),
    opt(&["pid-file"]),
    flag(&["no-pivot"]),
    flag(&["no-new-keyring"]),
    opt(&["preserve-fds"]),
    opt(&["pidfd-socket"]),
];

/// CreateOptions from `create`'s (and `run`'s) flags.
pub fn create_options(a: &cli::Args) -> Result<CreateOptions, Failure> {
    let preserve_fds = match a.value("preserve-fds") {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| Failure::Usage(format!("invalid --preserve-fds {v:?}")))?,
    };
    Ok(CreateOptions {
        bundle: PathBuf::from(a.value("b").unwrap_or(".")),
        console_socket: a.value("console-socket").map(PathBuf::from),
        console_fd: None,
        pid_file: a.value("pid-file").map(PathBuf::from),
        no_pivot: a.is_set("no-pivot"),
        no_new_keyring: a.is_set("no-new-keyring"),
        preserve_fds,
        listen_fds: listen_fds(),
        pidfd_socket: a.value("pidfd-socket").map(PathBuf::from),
    })
}

/// systemd socket activation, as runc passes it on: LISTEN_FDS=N for this very process.
fn listen_fds() -> u32 {
    let for_us = std::env::var("LISTEN_PID").ok().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    match std::env::var("LISTEN_FDS") {
        Ok(n) if for_us => n.parse().unwrap_or(0),
        _ => 0,
    }
}

/// Every flag `create` takes: runc's, and `--image` with ctr's flags and the stdio ones.
pub fn create_flags() -> Vec<Flag> {
    let mut flags: Vec<Flag> = run_image::copy(CREATE_FLAGS).collect();
    flags.push(run_image::IMAGE);
    flags.extend(run_image::copy(run_image::IMAGE_FLAGS));
    flags.extend(run_image::copy(super::stdio::IO_FLAGS));
    flags
}

pub fn create(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("create", args, &create_flags())?;
    let id = a.id("create")?;
    let mut opts = create_options(&a)?;
    let io = super::stdio::target(&a)?;
    let rt = super::runtime(g)?;
    let _claim = super::container_ns::claim_id(g, id)?;
    // `--image REF`: the bundle stays until `delete` removes it with the container.
    let image_bundle = run_image::prepare(g, &a, id, &mut opts)?;
    if let Err(e) = super::run::create_with(g, &rt, id, &opts, &io) {
        if image_bundle {
            run_image::remove_bundle(g, id);
        }
        return Err(e);
    }
    Ok(())
}

pub fn start(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse(args, &[], false)?;
    Ok(super::runtime(g)?.start(a.id("start")?)?)
}

pub fn state(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse(args, &[], false)?;
    let st = super::runtime(g)?.state(a.id("state")?)?;
    let text = serde_json::to_string_pretty(&st).map_err(|e| Failure::Error(e.to_string()))?;
    println!("{text}");
    Ok(())
}

pub fn kill(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse(args, &[flag(&["a", "all"])], false)?;
    let id = a.id("kill")?;
    let name = a.positional.get(1).map(String::as_str).unwrap_or("SIGTERM");
    if matches!(name, "0" | "SIG0") {
        return Ok(super::runtime(g)?.probe(id)?);
    }
    let signal = libcontainer::signal::parse(name)?;
    // A stopped container's error reads as runc's "container not running" (libcontainer's
    // Error), which containerd's runc shim takes as "the process already finished".
    Ok(super::runtime(g)?.kill(id, signal, a.is_set("a"))?)
}

pub fn delete(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse(args, &[flag(&["f", "force"])], false)?;
    let id = a.id("delete")?;
    let rt = super::runtime(g)?;
    match rt.delete(id, a.is_set("f")) {
        // runc: `delete --force` of a container that does not exist is not an error.
        Err(libcontainer::Error::NotFound(_)) if a.is_set("f") => {}
        r => r?,
    }
    // A container made by `create --image` or `run --image -d|--keep` leaves its bundle
    // (rootfs mount, snapshot) to us; only this namespace's.
    let ns = super::image::namespace(g)?;
    containerd_bridge::bundle::remove(&super::image::image_dirs(&g.root), &ns, id)
        .map_err(|e| Failure::Error(e.to_string()))?;
    Ok(())
}
