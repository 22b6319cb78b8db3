//! `list`: a table like runc's, ids only with `-q`, or JSON with `--format json`.

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
            let rows: Vec<[String; 6]> = states
                .iter()
                .map(|s| {
                    [
                        s.id.clone(),
                        s.pid.to_string(),
                        s.status.to_string(),
                        s.bundle.display().to_string(),
                        s.created.clone(),
                        s.owner.clone(),
                    ]
                })
                .collect();
            print_table(&["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], &rows);
        }
        other => return Err(Failure::Usage(format!("invalid format {other:?} (table or json)"))),
    }
    Ok(())
}

/// Columns padded to their widest cell plus one space, as Go's tabwriter does for runc.
fn print_table(header: &[&str; 6], rows: &[[String; 6]]) {
    let mut widths = header.map(str::len);
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
