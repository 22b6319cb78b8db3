//! The few /proc reads the runtime needs, parsed by hand to keep start-up small.

use nix::unistd::Pid;

/// A process as /proc/PID/stat describes it.
pub struct ProcStat {
    /// One-letter state: R, S, D, Z, T, ...
    pub state: char,
    /// Start time in clock ticks since boot (field 22).
    pub start_time: u64,
}

/// Read /proc/PID/stat; None if the process does not exist.
pub fn stat(pid: Pid) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    // comm (field 2) is in parentheses and may itself hold spaces and ')'; fields resume after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3) come fields 4..; start time is field 22, so skip 18 more.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// Whether `pid` is still the process that started at `start_time` and has not exited (a zombie
/// counts as exited: nobody may reap it soon when its parent is a non-reaping pid 1).
pub fn is_alive(pid: Pid, start_time: u64) -> bool {
    match stat(pid) {
        Some(s) => s.start_time == start_time && s.state != 'Z' && s.state != 'X',
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comm_with_spaces_and_parens() {
        let line = "42 (we) ird) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.start_time, 123456);
    }

    #[test]
    fn own_process_is_alive() {
        let me = Pid::this();
        let s = stat(me).unwrap();
        assert!(is_alive(me, s.start_time));
        assert!(!is_alive(me, s.start_time + 1));
    }
}
