//! Watched paths for file-integrity events: the in-kernel prefix list, the exact userspace match, and
//! resolution of relative paths against the process's cwd or dirfd.
use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use tripline_common::{WatchList, WATCH_MAX, WATCH_PREFIX_LEN};

use crate::model::{Event, EventData};

/// The default watched set: system configuration, SSH keys, cron and systemd units, binaries, boot and
/// kernel modules (with the /bin, /sbin, /lib aliases of merged-/usr systems).
pub const DEFAULT_WATCH: &[&str] = &[
    "/etc",
    "/root/.ssh",
    "/home/*/.ssh",
    "/var/spool/cron",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/bin",
    "/sbin",
    "/boot",
    "/lib/modules",
    "/usr/lib/modules",
];

#[derive(Debug)]
pub struct FileWatch {
    literal: Vec<String>,
    globs: GlobSet,
    kernel: Vec<String>,
}

impl FileWatch {
    /// Validates and compiles the watch list. Errors say which entry and why.
    pub fn new(paths: &[String]) -> Result<FileWatch, String> {
        let mut literal = Vec::new();
        let mut b = GlobSetBuilder::new();
        let mut kernel: Vec<String> = Vec::new();
        for p in paths {
            if !p.starts_with('/') {
                return Err(format!("{p:?} is not absolute"));
            }
            let p = p.trim_end_matches('/');
            let p = if p.is_empty() { "/" } else { p };
            let prefix = match p.find(['*', '?', '[', '{']) {
                Some(i) => {
                    for pat in [p.to_string(), format!("{p}/**")] {
                        let g = GlobBuilder::new(&pat)
                            .literal_separator(true)
                            .build()
                            .map_err(|e| format!("{p:?}: {e}"))?;
                        b.add(g);
                    }
                    p[..i].to_string()
                }
                None => {
                    literal.push(p.to_string());
                    p.to_string()
                }
            };
            if prefix.len() >= WATCH_PREFIX_LEN {
                return Err(format!("{p:?}: the part before any wildcard must be shorter than {WATCH_PREFIX_LEN} bytes"));
            }
            // A prefix already covered by a shorter one adds nothing in the kernel.
            if !kernel.iter().any(|k| prefix.starts_with(k.as_str())) {
                kernel.retain(|k| !k.starts_with(prefix.as_str()));
                kernel.push(prefix);
            }
        }
        if kernel.len() > WATCH_MAX {
            return Err(format!(
                "{} distinct path prefixes; at most {WATCH_MAX} fit the in-kernel filter (merge entries under a common parent)",
                kernel.len()
            ));
        }
        let globs = b.build().map_err(|e| e.to_string())?;
        Ok(FileWatch {
            literal,
            globs,
            kernel,
        })
    }

    /// The prefixes the probes compare paths against.
    pub fn kernel_list(&self) -> WatchList {
        let mut w = WatchList {
            count: self.kernel.len() as u32,
            lens: [0; WATCH_MAX],
            prefixes: [[0; WATCH_PREFIX_LEN]; WATCH_MAX],
        };
        for (i, k) in self.kernel.iter().enumerate() {
            w.lens[i] = k.len() as u32;
            w.prefixes[i][..k.len()].copy_from_slice(k.as_bytes());
        }
        w
    }

    pub fn matches(&self, path: &str) -> bool {
        self.literal.iter().any(|l| {
            path == l
                || (path.starts_with(l.as_str()) && path.as_bytes().get(l.len()) == Some(&b'/'))
                || l == "/"
        }) || self.globs.is_match(path)
    }

    /// Resolves relative paths of a file event (procfs cwd or dirfd) and says whether it is watched.
    /// Unresolvable relative paths are kept, flagged `resolved = false`.
    pub fn resolve_and_match(&self, ev: &mut Event, procfs: &Path) -> bool {
        let pid = ev.process.pid;
        let EventData::File(f) = &mut ev.data else {
            return true;
        };
        let base = |dirfd: i32| -> Option<String> {
            let link = if dirfd == -100 {
                procfs.join(pid.to_string()).join("cwd")
            } else {
                procfs
                    .join(pid.to_string())
                    .join("fd")
                    .join(dirfd.to_string())
            };
            std::fs::read_link(link)
                .ok()
                .map(|p| p.display().to_string())
        };
        let mut resolved = true;
        // link/symlink: the first path may be a symlink's target text, which is not resolved.
        let first_is_text = ev.kind == crate::model::EventKind::FileLink;
        for (i, p) in std::iter::once(&mut f.path)
            .chain(f.new_path.as_mut())
            .enumerate()
        {
            if p.starts_with('/') || (i == 0 && first_is_text) {
                continue;
            }
            match base(f.dirfd) {
                Some(b) => *p = normalize(&format!("{b}/{p}")),
                None => resolved = false,
            }
        }
        f.resolved = resolved;
        !resolved || self.matches(&f.path) || f.new_path.as_deref().is_some_and(|p| self.matches(p))
    }
}

/// Removes `.` and `..` components (lexically; symlinks are not followed).
fn normalize(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(paths: &[&str]) -> FileWatch {
        FileWatch::new(&paths.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn matches_components_not_byte_prefixes() {
        let f = w(DEFAULT_WATCH);
        for p in [
            "/etc/passwd",
            "/etc",
            "/root/.ssh/authorized_keys",
            "/home/bob/.ssh/authorized_keys",
            "/usr/bin/ls",
            "/bin/x",
        ] {
            assert!(f.matches(p), "{p}");
        }
        for p in [
            "/etcetera/x",
            "/home/bob/notes",
            "/tmp/x",
            "/var/log/syslog",
            "/home/.ssh",
        ] {
            assert!(!f.matches(p), "{p}");
        }
    }

    #[test]
    fn kernel_prefixes_are_deduplicated_and_bounded() {
        let f = w(&["/etc", "/etc/ssh", "/home/*/.ssh", "/srv/app"]);
        let k = f.kernel_list();
        assert_eq!(k.count, 3);
        let got: Vec<String> = (0..3)
            .map(|i| String::from_utf8_lossy(&k.prefixes[i][..k.lens[i] as usize]).into_owned())
            .collect();
        assert_eq!(got, vec!["/etc", "/home/", "/srv/app"]);
        assert!(FileWatch::new(&["etc".into()])
            .unwrap_err()
            .contains("not absolute"));
        let many: Vec<String> = (0..20).map(|i| format!("/d{i}/x")).collect();
        assert!(FileWatch::new(&many).unwrap_err().contains("at most 16"));
        assert!(FileWatch::new(&[format!("/{}", "x".repeat(70))])
            .unwrap_err()
            .contains("shorter than"));
    }

    #[test]
    fn normalizes_dot_segments() {
        assert_eq!(normalize("/srv/app/../etc/./passwd"), "/srv/etc/passwd");
        assert_eq!(normalize("/a//b/"), "/a/b");
    }
}
