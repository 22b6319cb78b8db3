//! Looking after the store: `check` (is every blob there and right), `usage` (what an image
//! takes) and `prune` (what nothing uses).

use containerd_bridge::registry::human_size;
use containerd_bridge::snapshot::Snapshotter;
use containerd_bridge::{check as bridge_check, prune as bridge_prune, usage as bridge_usage};

use super::{err, image_dirs, names, store};
use crate::cli::{self, opt};
use crate::{Failure, Global};

/// Print rows as columns separated by at least one space (ctr's tabwriter layout).
fn table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(String::len).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<w$}", w = widths[c]))
            .collect();
        println!("{}", line.join(" ").trim_end());
    }
}

pub fn check(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image check", args, &[])?;
    let s = store(g)?;
    let recs = if a.positional.is_empty() {
        s.images().map_err(err)?
    } else {
        // Every name must exist before anything is printed.
        names(&a.positional)?
            .iter()
            .map(|n| s.image(n).map_err(err))
            .collect::<Result<Vec<_>, _>>()?
    };
    let snap = Snapshotter::new(&s).map_err(err)?;
    let mut rows = vec![["REF", "TYPE", "DIGEST", "STATUS", "SIZE", "UNPACKED"]
        .map(str::to_string)
        .to_vec()];
    let mut damaged = Vec::new();
    for rec in &recs {
        let c = bridge_check::check(&s, &snap, rec).map_err(err)?;
        let size = match c.required_size {
            Some(r) => format!("{}/{}", human_size(c.present_size), human_size(r)),
            None => format!("{}/?", human_size(c.present_size)),
        };
        rows.push(vec![
            c.name.clone(),
            c.media_type.clone(),
            c.digest.clone(),
            c.status.clone(),
            size,
            c.unpacked.to_string(),
        ]);
        if !c.ok() {
            damaged.push(c);
        }
    }
    table(&rows);
    if damaged.is_empty() {
        return Ok(());
    }
    for c in &damaged {
        for p in &c.problems {
            eprintln!("hezi: image {}: {p}", c.name);
        }
    }
    Err(Failure::Error(format!(
        "check: {} of {} images are incomplete or corrupt (pull or import them again)",
        damaged.len(),
        recs.len()
    )))
}

pub fn usage(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image usage", args, &[opt(&["format"])])?;
    let [name] = a.positional.as_slice() else {
        return Err(Failure::Usage(
            "image usage: requires exactly 1 argument: the image".into(),
        ));
    };
    let name = &names(std::slice::from_ref(name))?[0];
    let s = store(g)?;
    let rec = s.image(name).map_err(err)?;
    let snap = Snapshotter::new(&s).map_err(err)?;
    let u = bridge_usage::usage(&s, &snap, &rec).map_err(err)?;
    match a.value("format").unwrap_or("table") {
        "json" => {
            let snapshots: Vec<serde_json::Value> = u
                .snapshots
                .iter()
                .map(|s| serde_json::json!({ "key": s.key, "size": s.size, "inodes": s.inodes }))
                .collect();
            let v = serde_json::json!({
                "name": rec.name,
                "content": { "size": u.content_size, "blobs": u.content_blobs },
                "unpacked": { "size": u.unpacked_size(), "snapshots": snapshots },
            });
            let text = serde_json::to_string_pretty(&v).map_err(|e| Failure::Error(e.to_string()))?;
            println!("{text}");
        }
        "table" => {
            let mut rows = vec![["KEY", "SIZE", "INODES"].map(str::to_string).to_vec()];
            for sn in &u.snapshots {
                rows.push(vec![sn.key.clone(), human_size(sn.size), sn.inodes.to_string()]);
            }
            table(&rows);
            println!(
                "content: {} in {} blobs (compressed); unpacked: {} in {} snapshots",
                human_size(u.content_size),
                u.content_blobs,
                human_size(u.unpacked_size()),
                u.snapshots.len()
            );
        }
        other => {
            return Err(Failure::Usage(format!(
                "image usage: unknown --format {other:?} (table or json)"
            )))
        }
    }
    Ok(())
}

pub fn prune(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse_for("image prune", args, &[])?;
    if !a.positional.is_empty() {
        return Err(Failure::Usage("image prune: takes no arguments".into()));
    }
    let pruned = bridge_prune::prune(&store(g)?, &image_dirs(&g.root).bundles).map_err(err)?;
    pruned.lines.iter().for_each(|l| println!("{l}"));
    Ok(())
}
