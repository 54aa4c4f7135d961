//! Reading processes from procfs: the seed of the process tree at start, and a late look-up for a
//! process that started before tripline.
use std::path::Path;

/// One process as procfs shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// Start time in clock ticks since boot (field 22 of /proc/pid/stat).
    pub start_ticks: u64,
    pub comm: String,
    pub exe: String,
    pub args: Vec<String>,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub auid: Option<u32>,
}

pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Parses `/proc/pid/stat`: comm is in parentheses and may contain spaces and parentheses.
pub fn parse_stat(text: &str) -> Option<(String, u32, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); ppid is field 4, starttime field 22.
    let ppid = rest.get(1)?.parse().ok()?;
    let start = rest.get(19)?.parse().ok()?;
    Some((comm, ppid, start))
}

fn parse_ids(status: &str, key: &str) -> Option<(u32, u32)> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let mut it = line[key.len()..]
        .split_whitespace()
        .map(|v| v.parse::<u32>());
    Some((it.next()?.ok()?, it.next()?.ok()?))
}

pub fn read_process(procfs: &Path, pid: u32) -> Option<ProcInfo> {
    let dir = procfs.join(pid.to_string());
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let (comm, ppid, start_ticks) = parse_stat(&stat)?;
    let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
    let (uid, euid) = parse_ids(&status, "Uid:").unwrap_or((0, 0));
    let (gid, egid) = parse_ids(&status, "Gid:").unwrap_or((0, 0));
    let exe = std::fs::read_link(dir.join("exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let args = std::fs::read(dir.join("cmdline"))
        .map(|b| crate::families::split_args(&b))
        .unwrap_or_default();
    let auid = std::fs::read_to_string(dir.join("loginuid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|&a| a != u32::MAX);
    Some(ProcInfo {
        pid,
        ppid,
        start_ticks,
        comm,
        exe,
        args,
        uid,
        euid,
        gid,
        egid,
        auid,
    })
}

/// Every process in procfs (thread-group leaders only: /proc lists those).
pub fn snapshot(procfs: &Path) -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir(procfs) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| read_process(procfs, pid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let s = "1234 (my (weird) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 18446744073709551615";
        let (comm, ppid, start) = parse_stat(s).unwrap();
        assert_eq!(comm, "my (weird) prog");
        assert_eq!(ppid, 1);
        assert_eq!(start, 98765);
    }

    #[test]
    fn reads_self() {
        let me = read_process(Path::new("/proc"), std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(me.exe.starts_with('/'));
        assert!(!me.args.is_empty());
    }
}
