//! `ps [--format table|json] ID [ps options]`: json is the list of pids in the container's
//! cgroup; table runs the host's `ps` (default `-ef`) and keeps its header and the lines whose
//! PID column is one of them, as runc does.

use std::process::Command;

use crate::cli::{self, opt};
use crate::{Failure, Global};

pub fn ps(g: &Global, args: &[String]) -> Result<(), Failure> {
    // Everything after the id goes to ps as is (`hezi ps ID -o pid,comm`).
    let a = cli::parse(args, &[opt(&["f", "format"])], true)?;
    let id = a.id("ps")?;
    let format = a.value("f").unwrap_or("table");
    if !matches!(format, "table" | "json") {
        return Err(Failure::Usage(format!("invalid format {format:?} (table or json)")));
    }
    let pids = super::runtime(g)?.pids(id)?;
    if format == "json" {
        let text = serde_json::to_string(&pids).map_err(|e| Failure::Error(e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    let ps_args: Vec<&str> = match &a.positional[1..] {
        [] => vec!["-ef"],
        rest => rest.iter().map(String::as_str).collect(),
    };
    let out = Command::new("ps")
        .args(&ps_args)
        .output()
        .map_err(|e| Failure::Error(format!("run ps {}: {e}", ps_args.join(" "))))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(Failure::Error(format!(
            "ps {}: {}: {}{}",
            ps_args.join(" "),
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    print!("{}", filter(&text, &pids)?);
    Ok(())
}

/// The header and the lines of `ps` output whose PID column holds one of `pids`.
fn filter(text: &str, pids: &[i32]) -> Result<String, Failure> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|f| f == "PID")
        .ok_or_else(|| Failure::Error(format!("ps output has no PID column: {header:?}")))?;
    let mut out = format!("{header}\n");
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let field = line.split_whitespace().nth(col).unwrap_or_default();
        let pid: i32 = field
            .parse()
            .map_err(|_| Failure::Error(format!("unable to parse pid {field:?} in ps line {line:?}")))?;
        if pids.contains(&pid) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_container_lines() {
        let text = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                    root           1       0  0 10:00 ?        00:00:01 /sbin/init\n\
                    root          42       1  0 10:01 ?        00:00:00 sleep 100\n\
                    root          43      42  0 10:01 ?        00:00:00 sh -c x\n";
        let out = filter(text, &[42, 43]).ok().expect("filtered");
        assert_eq!(out.lines().count(), 3);
        assert!(out.starts_with("UID"));
        assert!(!out.contains("/sbin/init"));
        // `-o pid,comm`: the PID column is the first.
        assert_eq!(
            filter("    PID COMMAND\n      7 sh\n      8 ps\n", &[7])
                .ok()
                .expect("filtered"),
            "    PID COMMAND\n      7 sh\n"
        );
        assert!(filter("USER COMMAND\nroot sh\n", &[1]).is_err());
    }
}
