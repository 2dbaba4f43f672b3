//! Resident memory and CPU time of a process, read from `/proc`.

/// Resident set size in MiB.
pub fn rss_mib(pid: u32) -> std::io::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    Ok(kib / 1024.0)
}

/// User plus system CPU seconds used so far.
pub fn cpu_seconds(pid: u32) -> std::io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime, in clock ticks (100 per second on Linux).
    Ok((ticks(11) + ticks(12)) / 100.0)
}

/// CPU seconds of `pid` and its direct children (nginx's master and its
/// workers).
pub fn tree_cpu_seconds(pid: u32) -> std::io::Result<f64> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))?;
    let mut total = cpu_seconds(pid)?;
    for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
        // A worker that exited since the list was read used no more CPU.
        total += cpu_seconds(child).unwrap_or(0.0);
    }
    Ok(total)
}
