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
        summary: "checkpoint a running container (not implemented yet)",
    },
    Topic {
        name: "create",
        args: "<container-id>",
        summary: "create a container",
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
        args: "import|pull|list|rm|tag ...",
        summary: "import, pull, list and remove images",
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
        summary: "restore a container from a previous checkpoint (not implemented yet)",
    },
    Topic {
        name: "resume",
        args: "<container-id>",
        summary: "resumes all processes that have been previously paused",
    },
    Topic {
        name: "run",
        args: "<container-id>",
        summary: "create and run a container",
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

/// The help text of `command`, or None when there is no such command.
pub fn topic(command: &str) -> Option<String> {
    let t = TOPICS.iter().find(|t| t.name == command)?;
    let sep = if t.args.is_empty() { "" } else { " " };
    Some(format!(
        "NAME:\n   hezi {name} - {summary}\n\nUSAGE:\n   hezi {name} [command options]{sep}{args}\n",
        name = t.name,
        summary = t.summary,
        args = t.args,
    ))
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
}
