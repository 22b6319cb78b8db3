//! hezi: an OCI container runtime with runc's command line.

mod cli;
mod commands;
mod logging;

use std::path::PathBuf;

use cli::{flag, opt, Flag};

const GLOBAL_FLAGS: &[Flag] = &[
    opt(&["root"]),
    opt(&["log"]),
    opt(&["log-format"]),
    flag(&["debug"]),
    flag(&["systemd-cgroup"]),
    opt(&["rootless"]),
    // Accepted for compatibility with callers that pass it to runc, and ignored: checkpoint and
    // restore run `criu` from PATH.
    opt(&["criu"]),
    // containerd's namespace of images and containers (ctr's `-n`).
    opt(&["namespace", "n"]),
    flag(&["v", "version"]),
    flag(&["h", "help"]),
];

const DEFAULT_ROOT: &str = "/run/hezi";

/// `--root`'s default: /run/hezi for the host's root; for anyone else `$XDG_RUNTIME_DIR/hezi`,
/// as runc does (an unprivileged user cannot write /run; root inside a user namespace, such as
/// podman's, counts as someone else unless $USER says root).
fn default_root() -> PathBuf {
    let honour_xdg = !nix::unistd::geteuid().is_root()
        || (libcontainer::container::detect_rootless() && std::env::var("USER").map_or(true, |u| u != "root"));
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if honour_xdg && !dir.is_empty() => PathBuf::from(dir).join("hezi"),
        _ => PathBuf::from(DEFAULT_ROOT),
    }
}

/// runc's `--rootless true|false|auto` (auto, the default: not the host's root).
fn rootless_flag(value: Option<&str>) -> Result<Option<bool>, String> {
    match value {
        None | Some("auto") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(format!("invalid --rootless {other:?} (true, false or auto)")),
    }
}

/// Options shared by every command.
pub struct Global {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    /// `--rootless`: None to detect.
    pub rootless: Option<bool>,
    /// `-n/--namespace` as given (checked, with `CONTAINERD_NAMESPACE` and the default, by the
    /// commands that use image records or containers: see commands::image::namespace and
    /// commands::container_ns).
    pub namespace: Option<String>,
}

/// How a command ends when it does not succeed.
pub enum Failure {
    /// Wrong command line: message, exit 1 (as runc).
    Usage(String),
    /// An operation failed: message, exit 1.
    Error(String),
    /// An operation failed: message, and exit with this code (`exec`'s 255, as runc).
    ErrorExit(String, i32),
    /// Exit with this code and no message (`run` passing on the container's exit code).
    Exit(i32),
    /// The command was asked for its help (`-h`/`--help`): print its usage, exit 0.
    Help,
}

impl From<libcontainer::Error> for Failure {
    fn from(e: libcontainer::Error) -> Self {
        Failure::Error(commands::container_ns::describe(&e))
    }
}

impl From<cli::UsageError> for Failure {
    fn from(e: cli::UsageError) -> Self {
        match e {
            cli::UsageError::Help => Failure::Help,
            cli::UsageError::Invalid(m) => Failure::Usage(m),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let global = match cli::parse(&args, GLOBAL_FLAGS, true) {
        Ok(g) => g,
        Err(e) => fail(None, &format!("{e}"), 1),
    };
    if global.is_set("v") || only_reports(global.positional.first().map(String::as_str)) {
        die_on_broken_pipe();
    }
    if global.is_set("v") {
        print!("{}", version_text());
        return;
    }
    let format = match global.value("log-format").unwrap_or("text") {
        "text" => logging::Format::Text,
        "json" => logging::Format::Json,
        other => fail(None, &format!("invalid log-format {other:?} (text or json)"), 1),
    };
    let logger: &'static logging::Logger =
        match logging::Logger::new(global.value("log"), format, global.is_set("debug")) {
            Ok(l) => Box::leak(Box::new(l)),
            Err(e) => fail(
                None,
                &format!("open log file {}: {e}", global.value("log").unwrap_or("")),
                1,
            ),
        };
    logging::install(logger);
    let Some((command, rest)) = global.positional.split_first() else {
        print!("{}", commands::USAGE);
        return;
    };
    if global.is_set("h") {
        print!("{}", commands::USAGE);
        return;
    }
    let rootless = match rootless_flag(global.value("rootless")) {
        Ok(r) => r,
        Err(m) => fail(Some(logger), &m, 1),
    };
    let g = Global {
        root: global.value("root").map_or_else(default_root, PathBuf::from),
        systemd_cgroup: global.is_set("systemd-cgroup"),
        rootless,
        namespace: global.value("namespace").map(str::to_string),
    };
    // `hezi CMD -h` for every command, also those that parse no flags of their own (image,
    // checkpoint); later `-h`s are found by the command's flag parser (Failure::Help).
    if rest.first().is_some_and(|a| commands::is_help_flag(a)) {
        return commands::print_help(command);
    }
    match commands::dispatch(&g, command, rest) {
        Ok(()) => {}
        Err(Failure::Help) => commands::print_help(command),
        Err(Failure::Exit(code)) => std::process::exit(code),
        Err(Failure::Usage(m)) | Err(Failure::Error(m)) => fail(Some(logger), &m, 1),
        Err(Failure::ErrorExit(m, code)) => fail(Some(logger), &m, code),
    }
}

/// Commands that only print a report: `hezi list | head` must end quietly, as runc does
/// (Go dies of the SIGPIPE of a write to a closed stdout), not panic with "failed printing to
/// stdout". The others keep Rust's ignored SIGPIPE: a write to the init's sync pipe or a
/// console socket whose peer died must fail with EPIPE and clean up, not kill the runtime
/// half-way through `create`.
fn only_reports(command: Option<&str>) -> bool {
    const REPORTS: &[&str] = &["state", "list", "ps", "features", "help", "events", "spec"];
    command.is_none_or(|c| REPORTS.contains(&c))
}

fn die_on_broken_pipe() {
    // SAFETY: SIG_DFL is a valid disposition and no handler of hezi's is replaced: Rust's
    // runtime set SIGPIPE to SIG_IGN, and nothing else touches it in a report command.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// `--version` in runc's shape: `NAME version X`, then `commit:` (when the build names one),
/// `spec:` (the OCI runtime spec version hezi implements), and the seccomp library.
fn version_text() -> String {
    let mut text = format!("hezi version {}\n", env!("CARGO_PKG_VERSION"));
    if let Some(commit) = option_env!("HEZI_GIT_COMMIT") {
        text.push_str(&format!("commit: {commit}\n"));
    }
    text.push_str(&format!("spec: {}\n", commands::SPEC_VERSION));
    text
}

/// Report an error the way runc does (to the log, and to stderr) and exit with `code`.
fn fail(logger: Option<&logging::Logger>, msg: &str, code: i32) -> ! {
    if let Some(l) = logger {
        if l.has_file() {
            l.write(tracing_core::Level::ERROR, msg);
        }
    }
    eprintln!("hezi: {msg}");
    std::process::exit(code);
}
