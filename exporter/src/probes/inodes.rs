//! The kernel's inode map (`INODES` in `exporter-ebpf/src/path.rs`): the identities (device, inode) the
//! file probes judge by, whatever name a file is reached through.
//!
//! * **Watched hard links**: regular files under the watched paths that have more than one name
//!   (`st_nlink > 1`) — a write through the other name is a write to the watched file. A file with a
//!   single name can only be reached through its watched path (or a bind mount, which the kernel walk
//!   resolves), so it needs no entry. Found by a bounded walk at start and on every refresh.
//! * **Sensitive files** ([`SENSITIVE`]): credential stores and kernel memory/keyring interfaces; *read*
//!   opens of these inodes are `sensitive_read` events.
//!
//! New identities are added every [`REFRESH`] (new keys, renamed-over shadow files, new hard links); the
//! refresh thread runs without capabilities, so it only adds (entries of files it can no longer see stay
//! until restart).
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::Glob;
use tripline_common::{inode_class, InodeKey, SensitiveClass};

/// How often the map is rebuilt.
pub const REFRESH: Duration = Duration::from_secs(30);
/// Most entries (the kernel map's size).
pub const MAX_ENTRIES: usize = 65536;
/// Most directory entries the watched-path walk visits per refresh, and how deep it goes.
const WALK_BUDGET: usize = 200_000;
const WALK_DEPTH: usize = 12;

/// Sensitive files by class: absolute patterns, `*` within one component.
pub const SENSITIVE: &[(SensitiveClass, &[&str])] = &[
    (
        SensitiveClass::AccountShadow,
        &[
            "/etc/shadow",
            "/etc/gshadow",
            "/etc/shadow-",
            "/etc/gshadow-",
            "/etc/security/opasswd",
        ],
    ),
    (
        SensitiveClass::Sudoers,
        &["/etc/sudoers", "/etc/sudoers.d/*"],
    ),
    (
        SensitiveClass::SshPrivateKey,
        &[
            "/root/.ssh/id_*",
            "/home/*/.ssh/id_*",
            "/root/.ssh/*.pem",
            "/home/*/.ssh/*.pem",
        ],
    ),
    (SensitiveClass::SshHostKey, &["/etc/ssh/ssh_host_*_key"]),
    (
        SensitiveClass::CloudCredentials,
        &[
            "/root/.aws/credentials",
            "/home/*/.aws/credentials",
            "/root/.config/gcloud/credentials.db",
            "/home/*/.config/gcloud/credentials.db",
            "/root/.config/gcloud/application_default_credentials.json",
            "/home/*/.config/gcloud/application_default_credentials.json",
            "/root/.azure/msal_token_cache.json",
            "/home/*/.azure/msal_token_cache.json",
            "/root/.docker/config.json",
            "/home/*/.docker/config.json",
        ],
    ),
    (
        SensitiveClass::KubeCredentials,
        &[
            "/root/.kube/config",
            "/home/*/.kube/config",
            "/etc/kubernetes/admin.conf",
            "/etc/kubernetes/kubelet.conf",
            "/var/lib/kubelet/kubeconfig",
        ],
    ),
    (
        SensitiveClass::KernelMemory,
        &["/proc/kcore", "/dev/mem", "/dev/kmem", "/dev/port"],
    ),
    (SensitiveClass::Keyring, &["/proc/keys", "/proc/key-users"]),
];

/// The kernel's encoding of a device number (`MKDEV`: major << 20 | minor) from `st_dev`.
pub fn kernel_dev(st_dev: u64) -> u32 {
    let major = libc::major(st_dev);
    let minor = libc::minor(st_dev);
    (major << 20) | (minor & 0xfffff)
}

pub fn key_of(m: &std::fs::Metadata) -> InodeKey {
    InodeKey {
        dev: kernel_dev(m.dev()),
        _pad: 0,
        ino: m.ino(),
    }
}

/// Expands one pattern (`*`/`?` within components) to existing paths.
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("/")];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        if comp.contains(['*', '?', '[']) {
            let Ok(g) = Glob::new(comp) else {
                return Vec::new();
            };
            let m = g.compile_matcher();
            for dir in &out {
                if let Ok(rd) = std::fs::read_dir(dir) {
                    for e in rd.flatten() {
                        if m.is_match(e.file_name()) {
                            next.push(e.path());
                        }
                    }
                }
            }
        } else {
            for dir in &out {
                let p = dir.join(comp);
                if p.symlink_metadata().is_ok() {
                    next.push(p);
                }
            }
        }
        out = next;
        if out.is_empty() {
            break;
        }
    }
    out
}

/// The full table: watched hard links and sensitive files. `watch` is the watch list as configured.
pub fn build(watch: &[String]) -> HashMap<InodeKey, u32> {
    let mut map: HashMap<InodeKey, u32> = HashMap::new();
    for (class, patterns) in SENSITIVE {
        for p in *patterns {
            for path in expand(p) {
                // Public keys are not secrets.
                if path.extension().is_some_and(|e| e == "pub") {
                    continue;
                }
                if let Ok(m) = std::fs::metadata(&path) {
                    if m.is_file() || m.file_type().is_char_device() || path.starts_with("/proc") {
                        *map.entry(key_of(&m)).or_default() |=
                            u32::from(*class as u8) << inode_class::SENSITIVE_SHIFT;
                    }
                }
            }
        }
    }
    let mut budget = WALK_BUDGET;
    for w in watch {
        for root in expand(w) {
            walk(&root, 0, &mut budget, &mut map);
        }
    }
    if map.len() > MAX_ENTRIES {
        tracing::warn!(
            entries = map.len(),
            "inode table larger than the kernel map; extra hard links are not tracked"
        );
        let keep: Vec<_> = map.into_iter().take(MAX_ENTRIES).collect();
        map = keep.into_iter().collect();
    }
    map
}

use std::os::unix::fs::FileTypeExt;

fn walk(dir: &Path, depth: usize, budget: &mut usize, map: &mut HashMap<InodeKey, u32>) {
    let Ok(m) = dir.symlink_metadata() else {
        return;
    };
    if m.is_file() {
        if m.nlink() > 1 {
            *map.entry(key_of(&m)).or_default() |= inode_class::WATCHED;
        }
        return;
    }
    if !m.is_dir() || depth > WALK_DEPTH {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk(&e.path(), depth + 1, budget, map);
        } else if ft.is_file() {
            if let Ok(m) = e.metadata() {
                if m.nlink() > 1 {
                    *map.entry(key_of(&m)).or_default() |= inode_class::WATCHED;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_dev_encoding() {
        // st_dev 8:1 (0x801) -> MKDEV(8, 1) = 8 << 20 | 1.
        assert_eq!(kernel_dev(libc::makedev(8, 1)), (8 << 20) | 1);
        assert_eq!(kernel_dev(libc::makedev(259, 70000)), (259 << 20) | 70000);
    }

    #[test]
    fn finds_hard_links_under_watched_dirs_and_sensitive_files() {
        let d = std::env::temp_dir().join(format!("tripline-inodes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/single"), "x").unwrap();
        std::fs::write(d.join("sub/linked"), "x").unwrap();
        std::fs::hard_link(d.join("sub/linked"), d.join("other")).unwrap();
        let map = build(&[format!("{}/sub", d.display())]);
        let k = key_of(&std::fs::metadata(d.join("other")).unwrap());
        assert_eq!(map.get(&k).map(|v| v & inode_class::WATCHED), Some(1));
        let single = key_of(&std::fs::metadata(d.join("sub/single")).unwrap());
        assert!(!map.contains_key(&single));
        if let Ok(m) = std::fs::metadata("/etc/shadow") {
            let v = map.get(&key_of(&m)).copied().unwrap_or(0);
            assert_eq!(
                (v & inode_class::SENSITIVE_MASK) >> inode_class::SENSITIVE_SHIFT,
                SensitiveClass::AccountShadow as u32
            );
        }
        assert!(expand(&format!("{}/*/linked", d.display())).len() == 1);
        let _ = std::fs::remove_dir_all(&d);
    }
}
