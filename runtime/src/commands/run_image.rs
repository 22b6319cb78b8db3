//! `--image REF` on `run` and `create`: the bundle is made from hezi's image store
//! (containerd_bridge::bundle), with ctr's flags that change the spec an image gives. A
//! bundle's config.json is the user's own, so those flags need `--image`. The bundle goes
//! again with the container: at the end of `run`, or in `delete`.

use std::path::PathBuf;

use containerd_bridge::overrides::{Flags, Overrides};
use libcontainer::CreateOptions;

use crate::cli::{self, flag, opt, Flag};
use crate::{Failure, Global};

/// ctr's flags that change the spec an image gives (containerd_bridge::overrides). The long
/// name comes first: the parser keys a flag by it, and errors name it.
pub const IMAGE_FLAGS: &[Flag] = &[
    opt(&["env"]),
    opt(&["env-file"]),
    opt(&["cwd"]),
    opt(&["hostname"]),
    flag(&["net-host"]),
    flag(&["read-only"]),
    opt(&["mount"]),
    opt(&["user", "u"]),
    opt(&["label"]),
    opt(&["memory-limit"]),
    opt(&["cpus"]),
    flag(&["privileged"]),
    flag(&["seccomp"]),
    opt(&["cap-add"]),
    opt(&["cap-drop"]),
    flag(&["tty", "t"]),
];

/// `--image` itself.
pub const IMAGE: Flag = opt(&["image"]);

/// A copy of `flags` (Flag is not Clone: its fields are, and the parser takes a slice).
pub fn copy(flags: &[Flag]) -> impl Iterator<Item = Flag> + '_ {
    flags.iter().map(|f| Flag {
        names: f.names,
        takes_value: f.takes_value,
    })
}

/// Whether flag `f` was given (a boolean one: set to true).
fn given(a: &cli::Args, f: &Flag) -> bool {
    if f.takes_value {
        !a.values(f.names[0]).is_empty()
    } else {
        a.is_set(f.names[0])
    }
}

fn overrides(a: &cli::Args) -> Result<Overrides, Failure> {
    let all = |n: &str| a.values(n).to_vec();
    let one = |n: &str| a.value(n).map(str::to_string);
    Overrides::new(Flags {
        env: all("env"),
        env_file: a.value("env-file").map(PathBuf::from),
        cwd: one("cwd"),
        hostname: one("hostname"),
        net_host: a.is_set("net-host"),
        read_only: a.is_set("read-only"),
        mounts: all("mount"),
        user: one("user"),
        labels: all("label"),
        memory_limit: one("memory-limit"),
        cpus: one("cpus"),
        privileged: a.is_set("privileged"),
        seccomp: a.is_set("seccomp"),
        cap_add: all("cap-add"),
        cap_drop: all("cap-drop"),
        tty: a.is_set("tty"),
    })
    .map_err(|e| Failure::Usage(e.to_string()))
}

/// With `--image REF`, make the bundle of container `id` (its command from the positional
/// arguments after the id) and point `opts` at it; returns whether it did. Without, refuse the
/// flags that need an image. On error nothing is made.
pub fn prepare(g: &Global, a: &cli::Args, id: &str, opts: &mut CreateOptions) -> Result<bool, Failure> {
    let Some(image) = a.value("image") else {
        if let Some(f) = IMAGE_FLAGS.iter().find(|f| given(a, f)) {
            return Err(Failure::Usage(format!(
                "--{} needs --image (a bundle's config.json says it)",
                f.names[0]
            )));
        }
        return Ok(false);
    };
    if a.value("b").is_some() {
        return Err(Failure::Usage("--image and --bundle cannot be used together".into()));
    }
    let over = overrides(a)?;
    let ns = super::image::namespace(g)?;
    opts.bundle = containerd_bridge::bundle::prepare(
        &super::image::image_dirs(&g.root),
        &ns,
        image,
        id,
        &a.positional[1..],
        &over,
    )
    .map_err(|e| Failure::Error(format!("image {image}: {e}")))?;
    Ok(true)
}

/// Remove the bundle `prepare` made for `id` (its rootfs mount and snapshot); a failure is only
/// logged, as the caller is already on an error or exit path.
pub fn remove_bundle(g: &Global, id: &str) {
    let removed = super::image::namespace(g)
        .map_err(|_| "invalid namespace".to_string())
        .and_then(|ns| {
            containerd_bridge::bundle::remove(&super::image::image_dirs(&g.root), &ns, id).map_err(|e| e.to_string())
        });
    if let Err(e) = removed {
        tracing::warn!("remove the image bundle of {id}: {e}");
    }
}
