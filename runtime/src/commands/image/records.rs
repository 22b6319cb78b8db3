//! The image records of a namespace: `ls`, `rm`, `tag`, `label`, `inspect`, and `demo` (which
//! makes one).

use containerd_bridge::registry::human_size;
use containerd_bridge::{demo as bridge_demo, images, labels, reference};

use super::{err, names, store};
use crate::cli::{self, flag, opt};
use crate::{Failure, Global};

pub fn ls(g: &Global, args: &[String]) -> Result<(), Failure> {
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
                        "platform": plat, "created": i.created, "labels": i.labels,
                        "namespace": s.namespace(),
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
                println!(
                    "{:<48} {:<20} {:>10}  {plat}",
                    i.name,
                    &d.as_str()[..19],
                    human_size(size)
                );
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

pub fn rm(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image rm", args, &[])?;
    if a.positional.is_empty() {
        return Err(Failure::Usage(
            "image rm: requires at least 1 argument: the image".into(),
        ));
    }
    let s = store(g)?;
    for n in names(&a.positional)? {
        images::remove(&s, &n).map_err(err)?;
        println!("{n}");
    }
    Ok(())
}

pub fn tag(g: &Global, args: &[String]) -> Result<(), Failure> {
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

pub fn label(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image label", args, &[])?;
    let Some((name, changes)) = a.positional.split_first() else {
        return Err(Failure::Usage(
            "image label: requires at least 1 argument: the image, then KEY=VALUE or KEY= (remove)".into(),
        ));
    };
    let name = reference::normalize(name).map_err(err)?;
    let changes = labels::parse(changes).map_err(|e| Failure::Usage(format!("image label: {e}")))?;
    let rec = labels::label(&store(g)?, &name, &changes).map_err(err)?;
    println!("{}", labels::format(&rec.labels));
    Ok(())
}

pub fn inspect(g: &Global, args: &[String]) -> Result<(), Failure> {
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

pub fn demo(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image demo", args, &[opt(&["name"])])?;
    let rec = bridge_demo::demo(&store(g)?, a.value("name")).map_err(err)?;
    println!("{} {}", rec.name, rec.target.digest);
    Ok(())
}
