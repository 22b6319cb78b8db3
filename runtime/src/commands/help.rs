//! Per-command help, printed the way runc (urfave/cli) prints it: `hezi help CMD`,
//! `hezi CMD -h|--help`. Every command runc has gets one, implemented or not, so a caller that
//! asks for help (or probes for a command) gets usage and exit 0.

/// One command's help: its name, the arguments after `[command options]`, and what it does.
struct Topic {
    name: &'static str,
    args: &'static str,
    summary: &'static str,
}

const TOPICS: &[Topic] = &[
    Topic {
        name: "checkpoint",
        args: "<container-id>",
        summary: "checkpoint a running container with CRIU (--image-path DIR, --work-path DIR, --leave-running, --pre-dump, --parent-path DIR, --tcp-established, --ext-unix-sk, --shell-job, --file-locks, --manage-cgroups-mode soft|full|strict|ignore, --empty-ns network, --auto-dedup, --page-server ADDR:PORT, --lazy-pages, --status-fd N; needs a CRIU whose `criu check` passes)",
    },
    Topic {
        name: "create",
        args: "<container-id>",
        summary: "create a container (from a bundle, or --image REF [-- CMD ARG...] from hezi's image store)",
    },
    Topic {
        name: "delete",
        args: "<container-id>",
        summary: "delete any resources held by the container",
    },
    Topic {
        name: "events",
        args: "<container-id>",
        summary: "display container events such as OOM notifications, cpu, memory, and IO usage statistics",
    },
    Topic {
        name: "exec",
        args: "<container-id> <command> [command options]  || -p process.json <container-id>",
        summary: "execute new process inside the container",
    },
    Topic {
        name: "features",
        args: "",
        summary: "show the enabled features",
    },
    Topic {
        name: "image",
        args: "pull|push|import|export|ls|rm|tag|label|inspect|mount|unmount|check|prune|usage|demo ...",
        summary: "manage images in hezi's store, as ctr's images commands (hezi image help lists them)",
    },
    Topic {
        name: "kill",
        args: "<container-id> [signal]",
        summary: "kill sends the specified signal (default: SIGTERM) to the container's init process",
    },
    Topic {
        name: "list",
        args: "",
        summary: "lists containers started by hezi with the given root",
    },
    Topic {
        name: "pause",
        args: "<container-id>",
        summary: "pause suspends all processes inside the container",
    },
    Topic {
        name: "ps",
        args: "<container-id> [ps options]",
        summary: "ps displays the processes running inside a container",
    },
    Topic {
        name: "restore",
        args: "<container-id>",
        summary: "restore a container from a checkpoint, under its own id or a new one (--image-path DIR, --work-path DIR, --bundle DIR, -d, --pid-file FILE, --tcp-established, --ext-unix-sk, --shell-job, --file-locks, --manage-cgroups-mode MODE, --empty-ns network, --auto-dedup, --console-socket PATH (a terminal's new master), --lazy-pages, --no-subreaper, --no-pivot; not --lsm-profile, --lsm-mount-context)",
    },
    Topic {
        name: "resume",
        args: "<container-id>",
        summary: "resumes all processes that have been previously paused",
    },
    Topic {
        name: "run",
        args: "<container-id> [-- command args...]",
        summary: "create and run a container (from a bundle, or --image REF [-- CMD ARG...] from hezi's image store)",
    },
    Topic {
        name: "spec",
        args: "",
        summary: "create a new specification file",
    },
    Topic {
        name: "start",
        args: "<container-id>",
        summary: "executes the user defined process in a created container",
    },
    Topic {
        name: "state",
        args: "<container-id>",
        summary: "output the state of a container",
    },
    Topic {
        name: "update",
        args: "<container-id>",
        summary: "update container resource constraints",
    },
];

/// One `OPTIONS:` line: the flag's spellings, and what it does.
type Opt = (&'static str, &'static str);

const BUNDLE: Opt = (
    "--bundle value, -b value",
    "path to the root of the bundle directory, defaults to the current directory",
);
const CONSOLE_SOCKET: Opt = (
    "--console-socket value",
    "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal",
);
const PID_FILE: Opt = ("--pid-file value", "specify the file to write the process id to");
const PRESERVE_FDS: Opt = (
    "--preserve-fds value",
    "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total) (default: 0)",
);
const NO_PIVOT: Opt = ("--no-pivot", "do not use pivot root to jail process inside rootfs");
const NO_NEW_KEYRING: Opt = (
    "--no-new-keyring",
    "do not create a new session keyring for the container",
);
const INIT_PIDFD: Opt = (
    "--pidfd-socket value",
    "path to an AF_UNIX socket which will receive a file descriptor referencing the init process",
);

const CREATE_OPTIONS: &[Opt] = &[
    BUNDLE,
    CONSOLE_SOCKET,
    INIT_PIDFD,
    PID_FILE,
    NO_PIVOT,
    NO_NEW_KEYRING,
    PRESERVE_FDS,
];

const RUN_OPTIONS: &[Opt] = &[
    BUNDLE,
    CONSOLE_SOCKET,
    INIT_PIDFD,
    ("--detach, -d", "detach from the container's process"),
    ("--keep", "do not delete the container after it exits"),
    (
        "--rm",
        "delete the container (and an image's rootfs snapshot) after it exits: the default, as ctr's --rm",
    ),
    PID_FILE,
    (
        "--no-subreaper",
        "disable the use of the subreaper used to reap reparented processes",
    ),
    NO_PIVOT,
    NO_NEW_KEYRING,
    PRESERVE_FDS,
];

/// `--image` and ctr's flags, on `run` and `create`.
const IMAGE_OPTIONS: &[Opt] = &[
    (
        "--image value",
        "run an image from hezi's store instead of a bundle (hezi image); a command may follow --",
    ),
    (
        "--env KEY=VALUE",
        "with --image: set an environment variable (repeatable)",
    ),
    (
        "--env-file FILE",
        "with --image: environment variables from FILE, one KEY=VALUE a line (# comments)",
    ),
    ("--cwd value", "with --image: the working directory"),
    (
        "--hostname value",
        "with --image: the container's hostname (default: its id)",
    ),
    ("--net-host", "with --image: share the host's network namespace"),
    ("--read-only", "with --image: a read-only root file system"),
    (
        "--mount type=T,src=S,dst=D,options=a:b",
        "with --image: a mount as ctr takes it (bind by default; repeatable)",
    ),
    (
        "--user value, -u value",
        "with --image: UID[:GID], or names from the image's /etc/passwd and /etc/group",
    ),
    (
        "--label K=V",
        "with --image: an annotation on the container (repeatable)",
    ),
    ("--memory-limit BYTES", "with --image: the memory limit in bytes"),
    (
        "--cpus value",
        "with --image: CPUs the container may use (a CFS quota of that many 100 ms periods)",
    ),
    (
        "--privileged",
        "with --image: every capability, the host's devices, no seccomp, masked or read-only paths",
    ),
    ("--seccomp", "with --image: the default seccomp profile"),
    (
        "--cap-add CAP",
        "with --image: add a capability (CAP_ optional; ALL for every one; repeatable)",
    ),
    (
        "--cap-drop CAP",
        "with --image: drop a capability (CAP_ optional; ALL for every one; repeatable)",
    ),
    (
        "--tty, -t",
        "with --image: give the process a terminal (run relays it to hezi's own)",
    ),
    ("--null-io", "the container's stdin, stdout and stderr are /dev/null"),
    (
        "--log-uri file:///PATH",
        "append the container's stdout and stderr to PATH (stdin is /dev/null)",
    ),
    (
        "--log-uri binary:///PATH?K=V",
        "start the logging program PATH (args K V; fd 3 stdout, 4 stderr, 5 closed when ready)",
    ),
];

const EXEC_OPTIONS: &[Opt] = &[
    CONSOLE_SOCKET,
    (
        "--pidfd-socket value",
        "path to an AF_UNIX socket which will receive a file descriptor referencing the exec process",
    ),
    ("--cwd value", "current working directory in the container"),
    ("--env value, -e value", "set environment variables"),
    ("--tty, -t", "allocate a pseudo-TTY"),
    ("--user value, -u value", "UID (format: <uid>[:<gid>])"),
    ("--additional-gids value, -g value", "additional gids"),
    ("--process value, -p value", "path to the process.json"),
    ("--detach, -d", "detach from the container's process"),
    PID_FILE,
    (
        "--process-label value",
        "set the asm process label for the process commonly used with selinux",
    ),
    ("--apparmor value", "set the apparmor profile for the process"),
    ("--no-new-privs", "set the no new privileges value for the process"),
    (
        "--cap value, -c value",
        "add a capability to the bounding set for the process",
    ),
    PRESERVE_FDS,
    (
        "--cgroup value",
        "run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>.",
    ),
    ("--ignore-paused", "allow exec in a paused container"),
];

/// The flags listed under `OPTIONS:`, for the commands whose flags matter most to callers.
fn options(command: &str) -> Vec<Opt> {
    match command {
        "create" => [CREATE_OPTIONS, IMAGE_OPTIONS].concat(),
        "run" => [RUN_OPTIONS, IMAGE_OPTIONS].concat(),
        "exec" => EXEC_OPTIONS.to_vec(),
        _ => Vec::new(),
    }
}

/// The help text of `command`, or None when there is no such command.
pub fn topic(command: &str) -> Option<String> {
    let t = TOPICS.iter().find(|t| t.name == command)?;
    let sep = if t.args.is_empty() { "" } else { " " };
    let mut text = format!(
        "NAME:\n   hezi {name} - {summary}\n\nUSAGE:\n   hezi {name} [command options]{sep}{args}\n",
        name = t.name,
        summary = t.summary,
        args = t.args,
    );
    let opts = options(command);
    if !opts.is_empty() {
        let width = opts.iter().map(|(f, _)| f.len()).max().unwrap_or(0);
        text.push_str("\nOPTIONS:\n");
        for (flags, what) in &opts {
            text.push_str(&format!("   {flags:width$}  {what}\n"));
        }
    }
    Some(text)
}

/// Whether `arg` asks for help, in any of the spellings urfave/cli accepts.
pub fn is_help_flag(arg: &str) -> bool {
    matches!(arg, "-h" | "--help" | "-help" | "--h")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_topic() {
        for name in [
            "checkpoint",
            "create",
            "delete",
            "events",
            "exec",
            "features",
            "kill",
            "list",
            "pause",
            "ps",
            "restore",
            "resume",
            "run",
            "spec",
            "start",
            "state",
            "update",
        ] {
            let text = topic(name).unwrap_or_else(|| panic!("no help for {name}"));
            assert!(text.contains(&format!("hezi {name} [command options]")), "{text}");
        }
        assert!(topic("frobnicate").is_none());
    }

    #[test]
    fn options_list_every_flag_the_command_takes() {
        let long = |f: &crate::cli::Flag| format!("   --{}", f.names.iter().max_by_key(|n| n.len()).unwrap());
        for (command, flags) in [
            ("create", super::super::lifecycle::create_flags()),
            ("run", super::super::run::flags()),
            (
                "exec",
                crate::commands::run_image::copy(super::super::exec::FLAGS).collect(),
            ),
        ] {
            let text = topic(command).unwrap();
            for f in &flags {
                assert!(text.contains(&long(f)), "{command} --help lacks {}", long(f));
            }
        }
        assert!(!topic("state").unwrap().contains("OPTIONS"));
    }
}
