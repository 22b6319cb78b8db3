//! One function per command; each parses its own flags and calls libcontainer.

mod checkpoint;
pub mod container_ns;
mod events;
mod exec;
mod help;
mod image;
mod info;
mod lifecycle;
mod list;
mod logger;
mod pause;
mod ps;
mod relay;
mod run;
mod run_image;
mod stdio;
mod update;

use crate::{Failure, Global};

pub use help::is_help_flag;

/// The version of the OCI runtime spec hezi implements (`--version`, `spec`).
pub const SPEC_VERSION: &str = "1.2.0";

pub const USAGE: &str = "\
hezi - an OCI container runtime with runc's command line

usage: hezi [global options] command [command options] [arguments...]

commands:
   create    create a container
   start     start a created container
   state     output the state of a container
   kill      send a signal to the container's init (or all its processes with --all)
   delete    delete a container and everything it made
   exec      run another process in a running container
   run       create, start and wait for a container, then delete it (--image REF ID [-- CMD...]: from an image)
   list      list containers
   pause     freeze every process of a container
   resume    thaw a paused container
   update    change a container's cgroup resources (runc's flags, or -r FILE|-)
   events    stats and OOM events of a container as JSON lines (--stats: once)
   ps        processes of a container (--format table|json, then ps options)
   spec      write a default config.json
   features  show what this runtime supports (OCI features JSON)
   checkpoint  checkpoint a running container with CRIU (--image-path DIR [--leave-running])
   restore   restore a checkpointed container (--image-path DIR [--bundle DIR] [-d] ID)
   image     pull, push, import, export, list, tag, label, inspect, mount, check, prune and remove images
             (hezi image help); run --image REF ID runs one

global options:
   --root DIR            state directory (default /run/hezi; $XDG_RUNTIME_DIR/hezi if not root)
   --log FILE            log file (default stderr)
   --log-format FORMAT   text or json
   --debug               log debug messages
   --systemd-cgroup      use systemd for cgroups
   --namespace NS, -n NS containerd's namespace of images and containers (default: default,
                         or $CONTAINERD_NAMESPACE; default's containers are those of --root)
   --version, -v         print the version
";

pub fn dispatch(g: &Global, command: &str, args: &[String]) -> Result<(), Failure> {
    match command {
        "create" => lifecycle::create(g, args),
        "start" => lifecycle::start(g, args),
        "state" => lifecycle::state(g, args),
        "kill" => lifecycle::kill(g, args),
        "delete" => lifecycle::delete(g, args),
        "run" => run::run(g, args),
        "list" => list::list(g, args),
        "spec" => info::spec(args),
        "features" => info::features(args),
        "exec" => exec::exec(g, args),
        "pause" => pause::pause(g, args),
        "resume" => pause::resume(g, args),
        "update" => update::update(g, args),
        "events" => events::events(g, args),
        "ps" => ps::ps(g, args),
        "image" => image::image(g, args),
        "checkpoint" => checkpoint::checkpoint(g, args),
        "restore" => checkpoint::restore(g, args),
        "help" => match args.first() {
            None => {
                print!("{USAGE}");
                Ok(())
            }
            // runc (urfave/cli) says this and exits 3 for a topic it does not know.
            Some(topic) if help::topic(topic).is_none() => {
                eprintln!("No help topic for '{topic}'");
                Err(Failure::Exit(3))
            }
            Some(topic) => {
                print_help(topic);
                Ok(())
            }
        },
        other => Err(Failure::Usage(format!("no such command {other:?} (see hezi --help)"))),
    }
}

/// Print `command`'s help (the general usage for a command hezi does not know).
pub fn print_help(command: &str) {
    match help::topic(command) {
        Some(text) => print!("{text}"),
        None => print!("{USAGE}"),
    }
}

pub fn runtime(g: &Global) -> Result<libcontainer::Runtime, Failure> {
    let rt = libcontainer::Runtime::new(&container_ns::state_root(g)?)?.with_systemd_cgroup(g.systemd_cgroup);
    Ok(match g.rootless {
        Some(r) => rt.with_rootless(r),
        None => rt,
    })
}
