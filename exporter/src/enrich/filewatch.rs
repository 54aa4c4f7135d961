//! Watched paths for file-integrity events: the in-kernel prefix list, the exact userspace match, and
//! resolution of relative paths against the process's cwd or dirfd.
//!
//! A watch entry is an absolute path, optionally with wildcards (`*`, `?`, `[..]`, `{a,b}`). Userspace
//! matches entries exactly (a path, or anything below it). The kernel only compares byte prefixes, so a
//! wildcard entry is turned into concrete prefixes at start: every wildcard component except the last
//! is expanded against the directories that exist (`/home/*/.ssh` → `/home/alice/.ssh`,
//! `/home/bob/.ssh`), and the last component contributes its literal part (`{.bashrc,.profile}` → `.bashrc`, `.profile`).
//! This keeps `/home/*/…` from streaming every write under `/home`. Directories created after start are
//! not in the kernel list until the next start (documented in docs/file-integrity.md). When the
//! prefixes do not fit the kernel table, the two with the longest common prefix are merged (repeatedly),
//! so the cost grows gradually (more events filtered in userspace) instead of failing.
use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use tripline_common::{WatchList, WATCH_MAX, WATCH_PREFIX_LEN};

use crate::model::{Event, EventData};

/// Per-user shell start-up and history files, as one brace alternative (used under /root and /home/*).
macro_rules! per_user_files {
    ($home:literal) => {
        concat!(
            $home,
            "/{.bashrc,.bash_profile,.bash_login,.bash_logout,.profile,.zshrc,.zshenv,.zprofile,",
            ".zlogin,.zlogout,.kshrc,.cshrc,.tcshrc,.pam_environment,.bash_history,.zsh_history,",
            ".sh_history,.ash_history,.history}"
        )
    };
}

/// The default watched set: system configuration (all of /etc: shell profiles, PAM, the loader's
/// preload and path config, init scripts, sudoers, cron, at, systemd, udev, module loading, MOTD), the
/// per-user start-up, history, SSH and systemd user-unit locations of root and every home under /home,
/// at and cron spools, systemd units and generators, binaries, PAM modules, udev rules, boot and kernel
/// modules (with the /bin, /sbin, /lib aliases of merged-/usr systems), and the system and security logs.
pub const DEFAULT_WATCH: &[&str] = &[
    "/etc",
    per_user_files!("/root"),
    "/root/.ssh",
    "/root/.config/systemd/user",
    per_user_files!("/home/*"),
    "/home/*/.ssh",
    "/home/*/.config/systemd/user",
    "/var/spool/cron",
    "/var/spool/at",
    "/lib/systemd",
    "/usr/lib/systemd",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/bin",
    "/sbin",
    "/boot",
    "/lib/modules",
    "/usr/lib/modules",
    "/lib/modules-load.d",
    "/usr/lib/modules-load.d",
    "/lib/*-linux-gnu*/security",
    "/usr/lib/*-linux-gnu*/security",
    "/lib64/security",
    "/usr/lib64/security",
    "/lib/udev/rules.d",
    "/usr/lib/udev/rules.d",
    // System and security logs (deleted, emptied or linked away to hide what happened).
    "/var/log/{auth.log,secure,syslog,messages,kern.log,wtmp,btmp,lastlog,faillog}",
    "/var/log/audit",
];

/// Directories one wildcard component may expand to before the entry falls back to its literal prefix.
const MAX_EXPANSION: usize = 256;

#[derive(Debug)]
pub struct FileWatch {
    literal: Vec<String>,
    globs: GlobSet,
    kernel: Vec<String>,
    /// What was given up to fit the kernel table (merged or unexpanded prefixes), for the start-up log.
    pub notes: Vec<String>,
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// The literal start of one path component: up to its first wildcard; for `{a,b}` alternatives, the
/// common start of every alternative (`{.bashrc,.profile}` → `.`). One prefix per alternative would be
/// exact, but the verifier's cost grows steeply with prefixes that share a long start (measured: 29
/// prefixes load in 3.5 s, 32 sharing `/home/user` in 60 s), so the kernel gets one prefix per home.
fn component_literals(c: &str) -> Vec<String> {
    let Some(i) = c.find(['*', '?', '[', '{']) else {
        return vec![c.to_string()];
    };
    let head = &c[..i];
    let end = c[i..].find('}');
    let common = match end {
        Some(end) if c.as_bytes()[i] == b'{' => {
            let lits: Vec<&str> = c[i + 1..i + end]
                .split(',')
                .map(|a| a.find(['*', '?', '[', '{']).map_or(a, |j| &a[..j]))
                .collect();
            let mut common = lits.first().copied().unwrap_or("");
            for l in &lits[1..] {
                common = &common[..common_len(common, l)];
            }
            common
        }
        _ => "",
    };
    vec![format!("{head}{common}")]
}

/// The concrete kernel prefixes of one entry, expanding wildcard components (all but the last) against
/// the directories under `root`. `Err` carries a note when the expansion had to stop early.
fn kernel_prefixes(entry: &str, root: &Path) -> (Vec<String>, Option<String>) {
    if !has_wildcard(entry) {
        // A facility that is not installed has no directory; it gets no kernel prefix (and costs none).
        if std::fs::symlink_metadata(root.join(entry.trim_start_matches('/'))).is_err() {
            return (Vec::new(), None);
        }
        return (vec![entry.to_string()], None);
    }
    let comps: Vec<&str> = entry.split('/').filter(|c| !c.is_empty()).collect();
    let mut bases: Vec<String> = vec![String::new()];
    for (n, c) in comps.iter().enumerate() {
        let last = n + 1 == comps.len();
        if last || !has_wildcard(c) {
            let lits = if last {
                component_literals(c)
            } else {
                vec![c.to_string()]
            };
            bases = bases
                .iter()
                .flat_map(|b| lits.iter().map(move |l| format!("{b}/{l}")))
                .collect();
            continue;
        }
        let Ok(g) = GlobBuilder::new(c).literal_separator(true).build() else {
            return (bases, None);
        };
        let m = g.compile_matcher();
        let mut next = Vec::new();
        for b in &bases {
            let dir = root.join(b.trim_start_matches('/'));
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<String> = rd
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|name| m.is_match(name))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|name| format!("{b}/{name}")));
        }
        if next.len() > MAX_EXPANSION {
            let fallback: Vec<String> = bases.iter().map(|b| format!("{b}/")).collect();
            return (
                fallback,
                Some(format!(
                    "{entry:?}: more than {MAX_EXPANSION} directories match; the kernel watches the whole parent"
                )),
            );
        }
        bases = next;
    }
    (bases, None)
}

/// Length of the common byte prefix of two strings.
fn common_len(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

/// Adds `p` unless a shorter prefix covers it; removes prefixes `p` covers.
fn add_prefix(kernel: &mut Vec<String>, p: String) {
    if kernel.iter().any(|k| p.starts_with(k.as_str())) {
        return;
    }
    kernel.retain(|k| !k.starts_with(p.as_str()));
    kernel.push(p);
}

impl FileWatch {
    /// Validates and compiles the watch list against the live filesystem. Errors say which entry and why.
    pub fn new(paths: &[String]) -> Result<FileWatch, String> {
        let w = FileWatch::new_in(paths, Path::new("/"))?;
        for n in &w.notes {
            tracing::info!(note = %n, "file watch: kernel prefix table");
        }
        tracing::debug!(prefixes = ?w.kernel, "file watch: kernel prefixes");
        Ok(w)
    }

    /// As [`FileWatch::new`], expanding wildcards against the tree under `root` (tests).
    // Long on purpose: validates each watch entry and expands its wildcards per home directory in one pass.
    pub fn new_in(paths: &[String], root: &Path) -> Result<FileWatch, String> {
        let mut literal = Vec::new();
        let mut b = GlobSetBuilder::new();
        let mut kernel: Vec<String> = Vec::new();
        let mut notes = Vec::new();
        for p in paths {
            if !p.starts_with('/') {
                return Err(format!("{p:?} is not absolute"));
            }
            let p = p.trim_end_matches('/');
            let p = if p.is_empty() { "/" } else { p };
            if has_wildcard(p) {
                for pat in [p.to_string(), format!("{p}/**")] {
                    let g = GlobBuilder::new(&pat)
                        .literal_separator(true)
                        .build()
                        .map_err(|e| format!("{p:?}: {e}"))?;
                    b.add(g);
                }
            } else {
                literal.push(p.to_string());
            }
            let (prefixes, note) = kernel_prefixes(p, root);
            notes.extend(note);
            for mut prefix in prefixes {
                // Longer than the table's slots (a deep application directory, or an expansion): a
                // shorter prefix still covers it, and userspace matches the whole entry.
                if prefix.len() >= WATCH_PREFIX_LEN {
                    let mut n = WATCH_PREFIX_LEN - 1;
                    while !prefix.is_char_boundary(n) {
                        n -= 1;
                    }
                    notes.push(format!(
                        "{p:?}: the kernel compares its first {n} bytes ({:?}); the rest is matched in userspace",
                        &prefix[..n]
                    ));
                    prefix.truncate(n);
                }
                add_prefix(&mut kernel, prefix);
            }
        }
        // Too many for the kernel table: merge the two with the longest common prefix until they fit.
        while kernel.len() > WATCH_MAX {
            // Longest common prefix first (always between neighbours in sorted order); among equals,
            // the one that covers the most entries.
            kernel.sort();
            let lcp: Vec<usize> = kernel
                .windows(2)
                .map(|w| common_len(&w[0], &w[1]))
                .collect();
            let top = lcp.iter().copied().max().unwrap_or(0);
            let mut best = (0, 0, 0, 0);
            for (i, n) in lcp.iter().enumerate().filter(|(_, n)| **n == top) {
                let covered = kernel
                    .iter()
                    .filter(|k| k.as_bytes().starts_with(&kernel[i].as_bytes()[..*n]))
                    .count();
                if covered > best.1 {
                    best = (*n, covered, i, i + 1);
                }
            }
            let (n, _, i, j) = best;
            if n <= 1 {
                return Err(format!(
                    "{} distinct path prefixes with nothing in common; at most {WATCH_MAX} fit the in-kernel filter (merge entries under a common parent)",
                    kernel.len()
                ));
            }
            let merged = kernel[i][..n].to_string();
            notes.push(format!(
                "kernel prefixes {:?} and {:?} merged into {merged:?} (the table holds {WATCH_MAX})",
                kernel[i], kernel[j]
            ));
            add_prefix(&mut kernel, merged);
        }
        let globs = b.build().map_err(|e| e.to_string())?;
        Ok(FileWatch {
            literal,
            globs,
            kernel,
            notes,
        })
    }

    /// The prefixes the probes compare paths against.
    pub fn kernel_prefixes(&self) -> &[String] {
        &self.kernel
    }

    /// The prefixes the probes compare paths against.
    pub fn kernel_list(&self) -> WatchList {
        WatchList::new(self.kernel.iter().map(|k| k.as_bytes()))
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
        // Module loads are kept by the kernel whatever the file (or with none: init_module); the path,
        // when there is one, is the kernel's.
        if ev.kind == crate::model::EventKind::ModuleLoad {
            return true;
        }
        let base = |dirfd: i32| -> Option<String> {
            let link = if dirfd == -100 {
                super::proc_path(procfs, pid, "cwd")
            } else {
                super::proc_path(procfs, pid, &format!("fd/{dirfd}"))
            };
            std::fs::read_link(link)
                .ok()
                .map(|p| p.display().to_string())
        };
        let mut resolved = true;
        // link/symlink: the first path may be a symlink's target text, which is not resolved.
        let first_is_text = ev.kind == crate::model::EventKind::FileLink;
        let root = super::proc_path(procfs, pid, "root");
        for (i, p) in std::iter::once(&mut f.path)
            .chain(f.new_path.as_mut())
            .enumerate()
        {
            if i == 0 && (first_is_text || f.detail.kernel_resolved) {
                continue;
            }
            if p.starts_with('/') {
                // `/etc/./x`, `/etc//x`, `/usr/bin/../../etc/x`: lexically the same file. (A spelling
                // that leaves the watched prefixes, `/tmp/../etc/x`, is judged on the kernel's path.)
                if p.contains("/./")
                    || p.contains("/../")
                    || p.contains("//")
                    || p.ends_with("/.")
                    || p.ends_with("/..")
                {
                    *p = normalize(p);
                }
            } else {
                match base(f.dirfd) {
                    Some(b) => *p = normalize(&format!("{b}/{p}")),
                    None => {
                        resolved = false;
                        continue;
                    }
                }
            }
            if f.detail.unjudged {
                *p = canonical_parent(&root, p);
            }
        }
        f.resolved = resolved || f.detail.kernel_resolved;
        // Kept by the kernel for what the file is, not where: always reported.
        if f.detail.by_inode
            || f.detail.setid_mode
            || f.detail.capability
            || f.detail.sensitive.is_some()
            || ev.kind == crate::model::EventKind::SensitiveRead
        {
            return true;
        }
        !f.resolved
            || self.matches(&f.path)
            || f.new_path.as_deref().is_some_and(|p| self.matches(p))
    }
}

/// `/proc/self/root/etc/./x` → `/etc/x`: the parent directory canonicalised (symlinks followed) in the
/// process's root, the last component kept as is (it may be a symlink or already gone). Falls back to
/// the lexical form when the parent no longer exists.
fn canonical_parent(root: &Path, p: &str) -> String {
    let lexical = strip_proc_root(&normalize(p));
    let (parent, name) = match lexical.rsplit_once('/') {
        Some((a, b)) => (if a.is_empty() { "/" } else { a }, b),
        None => return lexical,
    };
    let in_root = root.join(parent.trim_start_matches('/'));
    match std::fs::canonicalize(&in_root) {
        Ok(c) => {
            let c = c.display().to_string();
            // Canonicalised through /proc/PID/root: strip that root again.
            let root_real = std::fs::canonicalize(root)
                .map(|r| r.display().to_string())
                .unwrap_or_default();
            let inner = if root_real.len() > 1 {
                c.strip_prefix(&root_real).unwrap_or(&c).to_string()
            } else {
                c
            };
            let inner = if inner.is_empty() {
                "/".to_string()
            } else {
                inner
            };
            if name.is_empty() {
                inner
            } else if inner == "/" {
                format!("/{name}")
            } else {
                format!("{inner}/{name}")
            }
        }
        Err(_) => lexical,
    }
}

/// `/proc/self/root/x`, `/proc/thread-self/root/x`, `/proc/PID/root/x` → `/x` (the same root for the
/// caller, the usual case outside containers).
fn strip_proc_root(p: &str) -> String {
    let Some(rest) = p.strip_prefix("/proc/") else {
        return p.to_string();
    };
    let (who, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let is_proc = who == "self" || who == "thread-self" || who.bytes().all(|b| b.is_ascii_digit());
    match tail.strip_prefix("root") {
        Some(t) if is_proc && (t.is_empty() || t.starts_with('/')) => {
            if t.is_empty() {
                "/".into()
            } else {
                strip_proc_root(t)
            }
        }
        _ => p.to_string(),
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
            "/var/log/nginx/access.log",
            "/var/log/syslog.1",
            "/home/.ssh",
        ] {
            assert!(!f.matches(p), "{p}");
        }
    }

    fn kernel(f: &FileWatch) -> Vec<String> {
        let k = f.kernel_list();
        (0..k.count as usize)
            .map(|i| String::from_utf8_lossy(&k.prefixes[i][..k.lens[i] as usize]).into_owned())
            .collect()
    }

    fn tree(dirs: &[&str]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for d in dirs {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        t
    }

    #[test]
    fn proc_root_spellings_are_stripped() {
        assert_eq!(strip_proc_root("/proc/self/root/etc/x"), "/etc/x");
        assert_eq!(strip_proc_root("/proc/123/root/proc/self/root/etc"), "/etc");
        assert_eq!(strip_proc_root("/proc/self/status"), "/proc/self/status");
        assert_eq!(
            canonical_parent(Path::new("/"), "/tmp/../etc/./hosts"),
            "/etc/hosts"
        );
    }

    #[test]
    fn kernel_prefixes_are_deduplicated_and_bounded() {
        let t = tree(&[
            "home/alice",
            "home/bob",
            "home/.hidden",
            "etc/ssh",
            "srv/app",
        ]);
        let f = FileWatch::new_in(
            &[
                "/etc",
                "/etc/ssh",
                "/home/*/.ssh",
                "/srv/app",
                "/not/installed",
            ]
            .map(String::from),
            t.path(),
        )
        .unwrap();
        assert_eq!(
            kernel(&f),
            vec![
                "/etc",
                "/home/.hidden/.ssh",
                "/home/alice/.ssh",
                "/home/bob/.ssh",
                "/srv/app"
            ]
        );
        assert!(FileWatch::new(&["etc".into()])
            .unwrap_err()
            .contains("not absolute"));
        // Nothing in common at all: an error that says how many fit.
        let many: Vec<String> = (0x21u8..0x7f)
            .filter(|b| !b"/*?[{\\".contains(b))
            .take(WATCH_MAX + 1)
            .map(|b| format!("/{}x", b as char))
            .collect();
        assert_eq!(many.len(), WATCH_MAX + 1);
        let t = tree(&many.iter().map(|m| &m[1..]).collect::<Vec<_>>());
        assert!(FileWatch::new_in(&many, t.path())
            .unwrap_err()
            .contains(&format!("at most {WATCH_MAX}")));
    }

    /// An entry longer than a kernel slot (deep application directories, long CI work trees) is
    /// accepted: the kernel compares a cut prefix and userspace matches the whole entry.
    #[test]
    fn entries_longer_than_a_kernel_slot_are_cut_for_the_kernel_only() {
        let deep = format!("srv/{}/app", "d".repeat(70));
        let t = tree(&[&deep]);
        let entry = format!("/{deep}");
        let f = FileWatch::new_in(std::slice::from_ref(&entry), t.path()).unwrap();
        let k = kernel(&f);
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].len(), WATCH_PREFIX_LEN - 1);
        assert!(entry.starts_with(&k[0]));
        assert!(
            f.notes.iter().any(|n| n.contains("matched in userspace")),
            "{:?}",
            f.notes
        );
        assert!(f.matches(&format!("{entry}/config.yml")));
        assert!(f.matches(&entry));
        // Shares the kernel's cut prefix, but is not the watched directory.
        assert!(!f.matches(&format!("/srv/{}/other/x", "d".repeat(70))));
        assert!(!f.matches(&format!("{entry}x/y")));
    }

    #[test]
    fn per_user_patterns_expand_per_home_without_watching_all_of_home() {
        let t = tree(&[
            "home/alice",
            "home/bob",
            "root",
            "etc",
            "usr/bin",
            "usr/lib/x86_64-linux-gnu/security",
            "usr/lib/udev/rules.d",
            "usr/lib/systemd",
        ]);
        std::fs::write(t.path().join("home/notes.txt"), "a file, not a home").unwrap();
        let f = FileWatch::new_in(
            &DEFAULT_WATCH
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            t.path(),
        )
        .unwrap();
        let k = kernel(&f);
        assert!(k.len() <= WATCH_MAX, "{k:?}");
        assert!(!k.iter().any(|p| p == "/home/" || p == "/home"), "{k:?}");
        // Every per-user location of alice is covered by some kernel prefix, and matched exactly.
        for p in [
            "/home/alice/.bashrc",
            "/home/alice/.bash_history",
            "/home/alice/.ssh/authorized_keys",
            "/home/alice/.config/systemd/user/x.service",
            "/root/.profile",
            "/root/.ssh/config",
            "/etc/ld.so.preload",
            "/etc/pam.d/sshd",
            "/usr/lib/x86_64-linux-gnu/security/pam_unix.so",
            "/usr/lib/udev/rules.d/99-x.rules",
            "/var/spool/at/a0001",
            "/usr/lib/systemd/system-generators/x",
        ] {
            assert!(f.matches(p), "{p} not matched");
        }
        for p in [
            "/home/alice/.bashrc",
            "/home/bob/.zshrc",
            "/home/alice/.ssh/authorized_keys",
            "/root/.bash_history",
        ] {
            assert!(
                k.iter().any(|pre| p.starts_with(pre.as_str())),
                "{p} not in kernel {k:?}"
            );
        }
        for p in [
            "/home/alice/notes.txt",
            "/home/alice/.cache/x",
            "/home/alice/.bashrc.d/x",
            "/root/project/x",
        ] {
            assert!(!f.matches(p), "{p} matched");
        }
        assert!(!k
            .iter()
            .any(|pre| "/home/alice/notes.txt".starts_with(pre.as_str())));
    }

    #[test]
    fn too_many_homes_merge_gradually() {
        let mut homes: Vec<String> = (0..40).map(|i| format!("home/user{i:02}")).collect();
        homes.extend(["var/spool/cron", "etc", "usr/bin", "usr/sbin"].map(String::from));
        let t = tree(&homes.iter().map(String::as_str).collect::<Vec<_>>());
        let f = FileWatch::new_in(
            &DEFAULT_WATCH
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            t.path(),
        )
        .unwrap();
        let k = kernel(&f);
        assert!(k.len() <= WATCH_MAX, "{k:?}");
        // Homes merge before unrelated system directories do.
        assert!(k.iter().any(|p| p == "/var/spool/cron"), "{k:?}");
        assert!(!f.notes.is_empty());
        assert!(f.matches("/home/user07/.profile"));
        assert!(k
            .iter()
            .any(|p| "/home/user07/.profile".starts_with(p.as_str())));
    }

    #[test]
    fn brace_alternatives_share_one_prefix() {
        assert_eq!(component_literals("{.bashrc,.profile}"), vec!["."]);
        assert_eq!(component_literals("rc*.d"), vec!["rc"]);
        assert_eq!(component_literals("x{ab,ac*}"), vec!["xa"]);
        assert_eq!(component_literals("plain"), vec!["plain"]);
    }

    #[test]
    fn normalizes_dot_segments() {
        assert_eq!(normalize("/srv/app/../etc/./passwd"), "/srv/etc/passwd");
        assert_eq!(normalize("/a//b/"), "/a/b");
    }
}
