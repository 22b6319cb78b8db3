//! Bad input, table-driven: each case is a broken bundle or command line. Every one must fail
//! with a non-zero exit and an error that says what is wrong, and leave nothing behind: no state
//! directory, no mounts under the bundle, no process, no cgroup.

use std::path::{Path, PathBuf};

use hezi_e2e::{assert_nothing_left, process_with_cmdline, require, unique_id, Bundle, Hezi};
use serde_json::{json, Value};

/// How a case breaks its bundle.
enum Edit {
    /// Change the parsed config.json.
    Json(fn(&mut Value)),
    /// Replace config.json with this text.
    Raw(&'static str),
}

struct Case {
    name: &'static str,
    edit: Edit,
    /// Every one of these must appear in stderr.
    want: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "malformed config.json",
        edit: Edit::Raw("{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {,\n}\n"),
        want: &["config.json", "line 3 column"],
    },
    Case {
        name: "wrong type in config.json",
        edit: Edit::Raw("{\n  \"ociVersion\": 1\n}\n"),
        want: &["config.json", "line 2 column"],
    },
    Case {
        name: "unsupported ociVersion",
        edit: Edit::Json(|c| c["ociVersion"] = json!("2.0.0")),
        want: &["config.json", "unsupported ociVersion \"2.0.0\""],
    },
    Case {
        name: "missing rootfs",
        edit: Edit::Json(|c| c["root"]["path"] = json!("no-such-rootfs")),
        want: &["root.path no-such-rootfs", "No such file"],
    },
    Case {
        name: "missing executable",
        edit: Edit::Json(|c| c["process"]["args"] = json!(["/bin/no-such-program", "x"])),
        want: &[
            "\"/bin/no-such-program\"",
            "stat /bin/no-such-program: no such file or directory",
        ],
    },
    Case {
        name: "program without the execute bit",
        edit: Edit::Json(|c| c["process"]["args"] = json!(["/etc/passwd"])),
        want: &["exec: \"/etc/passwd\": permission denied"],
    },
    Case {
        name: "executable not in PATH",
        edit: Edit::Json(|c| c["process"]["args"] = json!(["no-such-program"])),
        want: &["\"no-such-program\"", "not found in $PATH"],
    },
    Case {
        name: "empty mount option",
        edit: Edit::Json(|c| {
            push_mount(
                c,
                json!({ "destination": "/x", "type": "tmpfs", "source": "tmpfs",
                                                     "options": ["nosuid", ""] }),
            )
        }),
        want: &["mount /x", "empty mount option"],
    },
    Case {
        name: "mount option the filesystem rejects",
        edit: Edit::Json(|c| {
            push_mount(
                c,
                json!({ "destination": "/x", "type": "tmpfs", "source": "tmpfs",
                                                     "options": ["mode=not-octal"] }),
            )
        }),
        want: &["mount tmpfs on /x", "EINVAL"],
    },
    Case {
        name: "idmap on a mount that is not a bind",
        edit: Edit::Json(|c| {
            push_mount(
                c,
                json!({ "destination": "/x", "type": "tmpfs", "source": "tmpfs",
                                                     "options": ["idmap"] }),
            )
        }),
        want: &["mount /x", "only bind mounts can be idmapped"],
    },
    Case {
        name: "tmpcopyup on a mount that is not tmpfs",
        edit: Edit::Json(|c| {
            push_mount(
                c,
                json!({ "destination": "/x", "type": "bind", "source": "/tmp",
                                                     "options": ["rbind", "tmpcopyup"] }),
            )
        }),
        want: &["mount /x", "tmpcopyup is only for tmpfs"],
    },
    Case {
        name: "unknown namespace",
        edit: Edit::Json(|c| c["linux"]["namespaces"] = json!([{ "type": "pid" }, { "type": "bogus" }])),
        want: &["config.json", "unknown variant `bogus`", "at line"],
    },
    Case {
        name: "duplicate namespace",
        edit: Edit::Json(|c| {
            c["linux"]["namespaces"] = json!([{ "type": "pid" }, { "type": "mount" }, { "type": "pid" }])
        }),
        want: &["config.json", "namespace pid is listed more than once"],
    },
    Case {
        name: "invalid rlimit type",
        edit: Edit::Json(|c| c["process"]["rlimits"] = json!([{ "type": "RLIMIT_BOGUS", "hard": 1, "soft": 1 }])),
        want: &["config.json", "unknown variant `RLIMIT_BOGUS`", "at line"],
    },
    Case {
        name: "relative cwd",
        edit: Edit::Json(|c| c["process"]["cwd"] = json!("tmp")),
        want: &["config.json", "process.cwd \"tmp\" must be an absolute path"],
    },
    Case {
        // A missing cwd is made, as runc does; one below a regular file cannot be.
        name: "cwd below a regular file",
        edit: Edit::Json(|c| c["process"]["cwd"] = json!("/bin/busybox/dir")),
        want: &["cwd /bin/busybox/dir"],
    },
    Case {
        name: "terminal without a console socket",
        edit: Edit::Json(|c| c["process"]["terminal"] = json!(true)),
        want: &["process.terminal", "--console-socket"],
    },
];

fn push_mount(c: &mut Value, m: Value) {
    c["mounts"].as_array_mut().expect("mounts").push(m);
}

/// Cgroup directories of `id` that exist: `<hierarchy>/hezi/<id>` in every v1 hierarchy (and the
/// v2 unified one mounted among them), and `/sys/fs/cgroup/hezi/<id>` on a pure v2 host.
fn cgroups_of(id: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.join("hezi").join(id)];
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        dirs.push(e.path().join("hezi").join(id));
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

fn assert_clean(h: &Hezi, id: &str, b: &Bundle, what: &str) {
    assert_nothing_left(h, id, b, None);
    // The init's command line is `hezi ... <id>`: a leftover init still carries the id.
    assert_eq!(process_with_cmdline(id), None, "{what}: a process of {id} is alive");
    assert_eq!(cgroups_of(id), Vec::<PathBuf>::new(), "{what}: cgroups left");
}

#[test]
fn broken_bundles_fail_clearly_and_leave_nothing() {
    require!();
    let h = Hezi::new();
    for case in CASES {
        let mut b = Bundle::busybox(&["sleep", "1401"]);
        match case.edit {
            Edit::Json(f) => {
                f(&mut b.config);
                b.write();
            }
            Edit::Raw(text) => std::fs::write(b.path().join("config.json"), text).unwrap(),
        }
        let id = unique_id("bad");
        // `create`, not `run`: run in the foreground makes its own console.
        let out = h.cmd(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: exit status; stderr {err}", case.name);
        for w in case.want {
            assert!(err.contains(w), "{}: stderr lacks {w:?}: {err}", case.name);
        }
        assert_clean(&h, &id, &b, case.name);
    }
}

#[test]
fn bad_command_lines_fail_clearly_and_leave_nothing() {
    require!();
    let h = Hezi::new();
    let b = Bundle::busybox(&["sleep", "1402"]);
    b.write();
    let bundle = b.path().to_str().unwrap();
    for id in ["../x", ".", "..", "a/b", "-a"] {
        let out = h.cmd(&["create", "--bundle", bundle, "--", id]);
        assert_eq!(out.status.code(), Some(1), "id {id:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid container id"), "id {id:?}: {err}");
    }
    assert!(h.ids().is_empty());

    let id = unique_id("badsig");
    h.create(&b, &id);
    // "0" is no bad signal: `kill ID 0` checks that the container runs (lifecycle.rs).
    for sig in ["SIGBOGUS", "65", "", "KILLX"] {
        let out = h.cmd(&["kill", &id, sig]);
        assert_eq!(out.status.code(), Some(1), "signal {sig:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid signal"), "signal {sig:?}: {err}");
    }
    assert_eq!(h.status(&id), "created", "a bad signal changed nothing");
    h.ok(&["delete", "-f", &id]);
    assert_nothing_left(&h, &id, &b, Some("sleep 1402"));
    assert_eq!(cgroups_of(&id), Vec::<PathBuf>::new());

    let out = h.cmd(&["kill", "no-such-container", "KILL"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}
