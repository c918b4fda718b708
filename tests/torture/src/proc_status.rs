//! Figures from `/proc`: peak and current resident memory of this process, and the voluntary
//! context switches of the calling thread.

fn field(path: &str, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Peak resident memory of this process in KiB (`VmHWM`).
pub fn hwm_kib() -> Option<u64> {
    field("/proc/self/status", "VmHWM")
}

/// Resident memory of this process in KiB (`VmRSS`).
pub fn rss_kib() -> Option<u64> {
    field("/proc/self/status", "VmRSS")
}

/// Voluntary context switches of the calling thread: how often it blocked (a lock, I/O).
pub fn voluntary_ctxt_switches() -> Option<u64> {
    field("/proc/thread-self/status", "voluntary_ctxt_switches")
}

#[cfg(test)]
mod tests {
    #[test]
    fn figures_are_readable() {
        assert!(super::hwm_kib().unwrap() > 0);
        assert!(super::rss_kib().unwrap() > 0);
        assert!(super::voluntary_ctxt_switches().is_some());
    }
}
