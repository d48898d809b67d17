//! CPU time and memory of processes and threads, read from Linux `/proc`.
//!
//! Pure reading and parsing: nothing here changes the process it looks at. Every reader
//! returns `None` where `/proc` is missing or unreadable (another OS, a process that has
//! exited), so the harness reports "unknown" instead of failing.

use std::fs;

/// CPU time and memory of one process (or of a set of its threads) at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// User + system CPU time, in milliseconds.
    pub cpu_ms: f64,
    /// Resident set size now, in KiB.
    pub rss_kb: u64,
    /// Peak resident set size (`VmHWM`), in KiB.
    pub hwm_kb: u64,
}

fn ms_per_tick() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        1000.0 / ticks as f64
    } else {
        10.0
    }
}

/// `(comm, utime + stime in ticks)` from the text of a `/proc/.../stat` file.
pub fn parse_stat(text: &str) -> Option<(&str, u64)> {
    // The command name is in parentheses and may itself contain spaces and parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?;
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// `(VmRSS, VmHWM)` in KiB from the text of a `/proc/.../status` file.
pub fn parse_status_memory(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|it| it.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU and memory of the whole process `pid` (every thread, living or exited).
pub fn process(pid: u32) -> Option<Usage> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, ticks) = parse_stat(&stat)?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (rss_kb, hwm_kb) = parse_status_memory(&status)?;
    Some(Usage {
        cpu_ms: ticks as f64 * ms_per_tick(),
        rss_kb,
        hwm_kb,
    })
}

/// CPU of every process named `comm` (e.g. `postgres`: the server and its backends), summed;
/// `None` when none is found. A process that exited in between takes its CPU with it.
pub fn named(comm: &str) -> Option<f64> {
    let mut ticks = 0;
    let mut found = false;
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|it| it.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((name, t)) = parse_stat(&stat)
            && name == comm
        {
            ticks += t;
            found = true;
        }
    }
    found.then(|| ticks as f64 * ms_per_tick())
}

/// CPU of the living threads of this process whose name starts with one of `prefixes`,
/// with the memory of the whole process (threads share it).
pub fn own_threads(prefixes: &[&str]) -> Option<Usage> {
    let pid = std::process::id();
    let mut ticks = 0;
    for entry in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((comm, t)) = parse_stat(&stat)
            && prefixes.iter().any(|it| comm.starts_with(it))
        {
            ticks += t;
        }
    }
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (rss_kb, hwm_kb) = parse_status_memory(&status)?;
    Some(Usage {
        cpu_ms: ticks as f64 * ms_per_tick(),
        rss_kb,
        hwm_kb,
    })
}

/// CPU time the whole machine spent busy (everything but idle and iowait), in milliseconds
/// summed over cores.
pub fn machine_busy_ms() -> Option<f64> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    machine_busy_ticks(&text).map(|it| it as f64 * ms_per_tick())
}

fn machine_busy_ticks(text: &str) -> Option<u64> {
    let line = text.lines().find(|it| it.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|it| it.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already
    // counted in user, so only the first eight are added.
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some(total.saturating_sub(idle))
}

/// Raises this process's open-file limit to at least `want` (up to what the kernel allows),
/// so thousands of sockets fit; a child process inherits it. Returns the limit in force.
pub fn raise_nofile_limit(want: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if wide(limit.rlim_cur) >= want {
        return wide(limit.rlim_cur);
    }
    // Root may raise the hard limit too; anyone may raise the soft limit up to the hard one.
    let raised = libc::rlimit {
        rlim_cur: want as libc::rlim_t,
        rlim_max: limit.rlim_max.max(want as libc::rlim_t),
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return want;
    }
    let soft = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) } == 0 {
        return wide(limit.rlim_max);
    }
    wide(limit.rlim_cur)
}

/// `rlim_t` is 64 bits on 64-bit Linux but narrower on some 32-bit targets.
#[allow(clippy::unnecessary_cast)]
fn wide(value: libc::rlim_t) -> u64 {
    value as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_even_with_odd_command_names() {
        let cases: &[(&str, Option<(&str, u64)>)] = &[
            (
                "1234 (smshub) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0",
                Some(("smshub", 175)),
            ),
            (
                "77 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 3 4 0 0",
                Some(("a (b) c", 7)),
            ),
            ("garbage", None),
            ("1 (x) S 1 2", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_stat(text), *expected, "{text}");
        }
    }

    #[test]
    fn memory_fields_are_read_from_status() {
        let text = "Name:\tsmshub\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t3\n";
        assert_eq!(parse_status_memory(text), Some((10240, 20480)));
        assert_eq!(parse_status_memory("Name:\tx\n"), None);
    }

    #[test]
    fn machine_busy_time_leaves_out_idle_and_iowait() {
        let text = "cpu  100 5 50 1000 20 1 2 3 7 0\ncpu0 1 2 3 4\n";
        assert_eq!(machine_busy_ticks(text), Some(161));
    }
}
