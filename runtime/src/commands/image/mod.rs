//! `hezi image ...`: ctr's `images` commands on hezi's store under `<--root>/.images` (see
//! containerd-bridge), in containerd's namespaces (`hezi -n NS image ...`, or
//! `CONTAINERD_NAMESPACE`). `hezi run --image` uses the same store through
//! `containerd_bridge::bundle`. One file per group of commands: moving images in and out
//! (transfer), the records (records), looking after the store (maintenance), and mounts.

mod interrupt;
mod maintenance;
mod mount;
mod records;
mod transfer;

use containerd_bridge::manifest::Platform;
use containerd_bridge::store::Store;
use containerd_bridge::{bundle, namespace, platform};

use crate::cli;
use crate::{Failure, Global};

pub const USAGE: &str = "\
usage: hezi image COMMAND
       hezi [-n NAMESPACE] image COMMAND   (or hezi image -n NAMESPACE COMMAND)

commands:
   pull REF [--plain-http] [--platform P] [--all-platforms] [--user USER:PASSWORD]
                    pull from a registry (credentials also from HEZI_REGISTRY_AUTH=user:password);
                    --all-platforms fetches every manifest of an index and records the host's
   push REF [LOCAL] [--plain-http] [--user USER:PASSWORD]
                    push an image (LOCAL, else REF) to a registry: blobs it lacks, then the
                    manifests, then the index if every platform of it is here
   import FILE [--name REF] [--platform OS/ARCH[/VARIANT]]
                    import an OCI image-layout archive or a docker-archive (docker save)
   export FILE REF... [--all-platforms]
                    write images as an OCI image-layout archive (ctr, skopeo and podman load read it)
   ls [--format json] [-q]
                    list images (json shows labels)
   rm REF...        remove images, and the blobs and snapshots only they used
   tag SRC DST [--force]
                    name SRC's image DST too (--force replaces an existing DST)
   label REF [KEY=VALUE | KEY=]...
                    set (or with KEY= remove) labels on an image; prints them
   inspect REF      the image's record, labels, manifest, config and layers as JSON
   mount REF DIR [--rw]
                    mount the image's snapshot on the empty directory DIR, read-only unless
                    --rw (whose writes go with the unmount)
   unmount DIR      unmount what image mount put on DIR and remove its snapshot
   check [REF...]   is every blob of each image here, with the right digest (ctr's columns)
   usage REF [--format json]
                    the image's compressed content and unpacked snapshots, with sizes
   prune            remove blobs and snapshots no image and no container uses; prints them
   demo [--name REF]
                    build the demo image (busybox) as hezi.local/demo:latest

Each command takes -h/--help. The store lives in <--root>/.images; images are per namespace
(default: default, or $CONTAINERD_NAMESPACE), blobs and snapshots shared. HEZI_SNAPSHOTTER=native
forces copying snapshots.
";

fn err(e: containerd_bridge::Error) -> Failure {
    Failure::Error(e.to_string())
}

/// Where hezi keeps images and the bundles `run --image` makes from them: beside the containers
/// in the state root, under dot names, which no container id can take (ids cannot start with a
/// dot).
pub fn image_dirs(root: &std::path::Path) -> bundle::Dirs {
    bundle::Dirs {
        images: root.join(".images"),
        bundles: root.join(".bundles"),
    }
}

/// The namespace image records are read and written in: `-n/--namespace`, else
/// `CONTAINERD_NAMESPACE`, else `default` (as ctr chooses it).
pub fn namespace(g: &Global) -> Result<String, Failure> {
    namespace::choose(g.namespace.as_deref()).map_err(|e| Failure::Usage(e.to_string()))
}

fn store(g: &Global) -> Result<Store, Failure> {
    let ns = namespace(g)?;
    Store::open(&image_dirs(&g.root).images)
        .and_then(|s| s.in_namespace(&ns))
        .map_err(err)
}

fn platform_of(a: &cli::Args) -> Result<Platform, Failure> {
    match a.value("platform") {
        Some(p) => platform::parse(p).map_err(err),
        None => Ok(platform::host()),
    }
}

/// Normalise every positional argument as an image name.
fn names(args: &[String]) -> Result<Vec<String>, Failure> {
    args.iter()
        .map(|r| containerd_bridge::reference::normalize(r).map_err(err))
        .collect()
}

/// `-n NS` / `--namespace NS` (or `=NS`) in front of the subcommand: taken off `args` into `g`.
fn leading_namespace(g: &Global, args: &[String]) -> Result<(Option<String>, usize), Failure> {
    let Some(first) = args.first() else {
        return Ok((None, 0));
    };
    for name in ["-n", "--namespace", "-namespace"] {
        if first == name {
            return match args.get(1) {
                Some(v) => Ok((Some(v.clone()), 2)),
                None => Err(Failure::Usage(format!("image: flag needs an argument: {name}"))),
            };
        }
        if let Some(v) = first.strip_prefix(&format!("{name}=")) {
            return Ok((Some(v.to_string()), 1));
        }
    }
    Ok((g.namespace.clone(), 0))
}

pub fn image(g: &Global, args: &[String]) -> Result<(), Failure> {
    let (ns, skip) = leading_namespace(g, args)?;
    let g = &Global {
        root: g.root.clone(),
        systemd_cgroup: g.systemd_cgroup,
        rootless: g.rootless,
        namespace: ns,
    };
    let Some((sub, rest)) = args[skip..].split_first() else {
        print!("{USAGE}");
        return Ok(());
    };
    let done = match sub.as_str() {
        "import" | "pull" | "push" => {
            interrupt::watch()?;
            let r = match sub.as_str() {
                "import" => transfer::import(g, rest),
                "pull" => transfer::pull(g, rest),
                _ => transfer::push(g, rest),
            };
            interrupt::outcome(&format!("image {sub}"), r)
        }
        "export" => transfer::export(g, rest),
        "ls" | "list" => records::ls(g, rest),
        "rm" | "remove" => records::rm(g, rest),
        "tag" => records::tag(g, rest),
        "label" => records::label(g, rest),
        "inspect" => records::inspect(g, rest),
        "demo" => records::demo(g, rest),
        "mount" => mount::mount(g, rest),
        "unmount" | "umount" => mount::unmount(g, rest),
        "check" => maintenance::check(g, rest),
        "usage" => maintenance::usage(g, rest),
        "prune" => maintenance::prune(g, rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(Failure::Usage(format!("image: no such command {other:?}\n{USAGE}"))),
    };
    // `hezi image SUB -h`: the usage, which gives every subcommand's flags.
    match done {
        Err(Failure::Help) => {
            print!("{USAGE}");
            Ok(())
        }
        r => r,
    }
}
