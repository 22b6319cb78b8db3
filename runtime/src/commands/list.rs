//! `list`: a table like runc's, ids only with `-q`, or JSON with `--format json`. Where a
//! container came from an image (`run`/`create --image`), the table gets an IMAGE column; the
//! JSON has it among the annotations.

use containerd_bridge::overrides::IMAGE_ANNOTATION;

use crate::cli::{self, flag, opt};
use crate::{Failure, Global};

pub fn list(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse(args, &[flag(&["q", "quiet"]), opt(&["f", "format"])], false)?;
    let rt = super::runtime(g)?;
    let states = rt.list()?;
    if a.is_set("q") {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(());
    }
    match a.value("f").unwrap_or("table") {
        "json" => {
            let text = serde_json::to_string(&states).map_err(|e| Failure::Error(e.to_string()))?;
            println!("{text}");
        }
        "table" => {
            let image = |s: &libcontainer::OciState| s.annotations.get(IMAGE_ANNOTATION).cloned();
            // Only then: a root of bundles alone keeps runc's columns.
            let with_images = states.iter().any(|s| image(s).is_some());
            let rows: Vec<Vec<String>> = states
                .iter()
                .map(|s| {
                    let mut row = vec![
                        s.id.clone(),
                        s.pid.to_string(),
                        s.status.to_string(),
                        s.bundle.display().to_string(),
                        s.created.clone(),
                        s.owner.clone(),
                    ];
                    if with_images {
                        row.push(image(s).unwrap_or_else(|| "-".into()));
                    }
                    row
                })
                .collect();
            let mut header = vec!["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
            if with_images {
                header.push("IMAGE");
            }
            print_table(&header, &rows);
        }
        other => return Err(Failure::Usage(format!("invalid format {other:?} (table or json)"))),
    }
    Ok(())
}

/// Columns padded to their widest cell plus one space, as Go's tabwriter does for runc.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[i] + 4));
            }
        }
        println!("{out}");
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
