//! `hezi image import|pull|ls|rm|tag|inspect|export|demo`: the image store under `<--root>/.images` (see
//! containerd-bridge). `hezi run --image` uses it through `containerd_bridge::bundle`.

use containerd_bridge::manifest::Platform;
use containerd_bridge::store::Store;
use containerd_bridge::{bundle, demo, images, import, platform, reference};

use crate::cli::{self, flag, opt};
use crate::{Failure, Global};

pub const USAGE: &str = "\
usage: hezi image COMMAND

commands:
   import FILE [--name REF] [--platform OS/ARCH[/VARIANT]]
                    import an OCI image-layout archive or a docker-archive (docker save)
   pull REF [--plain-http] [--platform P]
                    pull from a registry (credentials: HEZI_REGISTRY_AUTH=user:password)
   ls [--format json] [-q]
                    list images
   rm REF...        remove images, and the blobs and snapshots only they used
   tag SRC DST [--force]
                    name SRC's image DST too (--force replaces an existing DST)
   inspect REF      the image's record, manifest, config and layers as JSON
   export FILE REF...
                    write images as an OCI image-layout archive (ctr, skopeo and podman load read it)
   demo [--name REF]
                    build the demo image (busybox) as hezi.local/demo:latest

The store lives in <--root>/.images; HEZI_SNAPSHOTTER=native forces copying snapshots.
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

fn store(g: &Global) -> Result<Store, Failure> {
    Store::open(&image_dirs(&g.root).images).map_err(err)
}

fn platform_of(a: &cli::Args) -> Result<Platform, Failure> {
    match a.value("platform") {
        Some(p) => platform::parse(p).map_err(err),
        None => Ok(platform::host()),
    }
}

pub fn image(g: &Global, args: &[String]) -> Result<(), Failure> {
    let Some((sub, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(());
    };
    let done = match sub.as_str() {
        "import" => import_cmd(g, rest),
        "pull" => pull_cmd(g, rest),
        "ls" | "list" => ls(g, rest),
        "rm" | "remove" => rm(g, rest),
        "tag" => tag(g, rest),
        "inspect" => inspect(g, rest),
        "export" => export(g, rest),
        "demo" => demo_cmd(g, rest),
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

fn import_cmd(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image import", args, &[opt(&["name"]), opt(&["platform"])])?;
    let [file] = a.positional.as_slice() else {
        return Err(Failure::Usage(
            "image import: requires exactly 1 argument: the archive".into(),
        ));
    };
    let opts = import::Options {
        name: a.value("name").map(str::to_string),
        platform: platform_of(&a)?,
    };
    for rec in import::import(&store(g)?, std::path::Path::new(file), &opts).map_err(err)? {
        println!("{} {}", rec.name, rec.target.digest);
    }
    Ok(())
}

fn pull_cmd(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image pull", args, &[flag(&["plain-http"]), opt(&["platform"])])?;
    let [name] = a.positional.as_slice() else {
        return Err(Failure::Usage(
            "image pull: requires exactly 1 argument: the image".into(),
        ));
    };
    let opts = containerd_bridge::registry::PullOptions {
        plain_http: a.is_set("plain-http"),
        platform: platform_of(&a)?,
        auth: containerd_bridge::registry::Credentials::from_env().map_err(err)?,
        all_platforms: false,
    };
    let rec = containerd_bridge::registry::pull(&store(g)?, name, &opts).map_err(err)?;
    println!("{} {}", rec.name, rec.index.as_ref().unwrap_or(&rec.target.digest));
    Ok(())
}

fn ls(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image ls", args, &[opt(&["format"]), flag(&["q", "quiet"])])?;
    let s = store(g)?;
    let list = s.images().map_err(err)?;
    if a.is_set("q") {
        list.iter().for_each(|i| println!("{}", i.name));
        return Ok(());
    }
    let mut rows = Vec::new();
    for i in &list {
        let size: u64 = s
            .manifest(&i.target.digest)
            .map(|m| m.layers.iter().map(|l| l.size).sum())
            .unwrap_or(0);
        let plat = s
            .config(&i.config)
            .map(|c| {
                let mut p = format!("{}/{}", c.os, c.architecture);
                if let Some(v) = c.variant {
                    p = format!("{p}/{v}");
                }
                p
            })
            .unwrap_or_default();
        rows.push((i, size, plat));
    }
    match a.value("format").unwrap_or("table") {
        "json" => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|(i, size, plat)| {
                    serde_json::json!({
                        "name": i.name, "digest": i.index.as_ref().unwrap_or(&i.target.digest),
                        "manifest": i.target.digest, "config": i.config, "size": size,
                        "platform": plat, "created": i.created,
                    })
                })
                .collect();
            let text = serde_json::to_string_pretty(&v).map_err(|e| Failure::Error(e.to_string()))?;
            println!("{text}");
        }
        "table" => {
            println!("{:<48} {:<20} {:>10}  PLATFORM", "NAME", "DIGEST", "SIZE");
            for (i, size, plat) in rows {
                let d = i.index.as_ref().unwrap_or(&i.target.digest);
                println!("{:<48} {:<20} {:>10}  {plat}", i.name, &d.as_str()[..19], human(size));
            }
        }
        other => {
            return Err(Failure::Usage(format!(
                "image ls: unknown --format {other:?} (table or json)"
            )))
        }
    }
    Ok(())
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn rm(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image rm", args, &[])?;
    if a.positional.is_empty() {
        return Err(Failure::Usage(
            "image rm: requires at least 1 argument: the image".into(),
        ));
    }
    let s = store(g)?;
    for name in &a.positional {
        let n = reference::normalize(name).map_err(err)?;
        images::remove(&s, &n).map_err(err)?;
        println!("{n}");
    }
    Ok(())
}

fn tag(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image tag", args, &[flag(&["force", "f"])])?;
    let [src, dst] = a.positional.as_slice() else {
        return Err(Failure::Usage(
            "image tag: requires exactly 2 arguments: the image and its new name".into(),
        ));
    };
    let src = reference::normalize(src).map_err(err)?;
    let dst = reference::normalize(dst).map_err(err)?;
    let rec = images::tag(&store(g)?, &src, &dst, a.is_set("force")).map_err(err)?;
    println!("{}", rec.name);
    Ok(())
}

fn inspect(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image inspect", args, &[])?;
    let [name] = a.positional.as_slice() else {
        return Err(Failure::Usage(
            "image inspect: requires exactly 1 argument: the image".into(),
        ));
    };
    let name = reference::normalize(name).map_err(err)?;
    let v = images::inspect(&store(g)?, &name).map_err(err)?;
    let text = serde_json::to_string_pretty(&v).map_err(|e| Failure::Error(e.to_string()))?;
    println!("{text}");
    Ok(())
}

fn export(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image export", args, &[])?;
    let Some((file, refs)) = a.positional.split_first().filter(|(_, r)| !r.is_empty()) else {
        return Err(Failure::Usage(
            "image export: requires at least 2 arguments: the archive and an image".into(),
        ));
    };
    let names = refs
        .iter()
        .map(|r| reference::normalize(r).map_err(err))
        .collect::<Result<Vec<_>, _>>()?;
    containerd_bridge::export::export(&store(g)?, &names, std::path::Path::new(file), false).map_err(err)?;
    names.iter().for_each(|n| println!("{n}"));
    Ok(())
}

fn demo_cmd(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image demo", args, &[opt(&["name"])])?;
    let rec = demo::demo(&store(g)?, a.value("name")).map_err(err)?;
    println!("{} {}", rec.name, rec.target.digest);
    Ok(())
}
