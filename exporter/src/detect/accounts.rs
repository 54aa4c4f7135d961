//! Account and group changes: when the user or group databases are written, they are read again and
//! diffed against the previous snapshot, and each difference becomes a typed [`AccountChange`] that
//! policy rules (`account_change:`) turn into findings.
//!
//! The snapshot keeps names, uids, gids, homes, shells and group members; of `/etc/shadow` only a hash
//! of each password field and whether it is empty (never the password hash itself). It is bounded:
//! a database larger than [`MAX_FILE_BYTES`] or with more than [`MAX_ENTRIES`] entries is not diffed
//! (logged once). A write is judged when its event arrives (a rename of `passwd+` over `passwd`, as the
//! shadow tools do, is complete by then); when that finds nothing (an in-place write still under way),
//! the databases are read again on the next ticks.
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::account::{AccountChange, AccountChangeKind};
use crate::model::Event;

pub const MAX_FILE_BYTES: u64 = 16 << 20;
pub const MAX_ENTRIES: usize = 100_000;
/// Ticks (about a second each) an unexplained write is re-checked.
const RECHECKS: u8 = 3;
/// A database modified this long after the pending write was modified by someone else.
const LATER_WRITER: std::time::Duration = std::time::Duration::from_millis(300);

/// The databases whose writes are diffed (gshadow triggers a re-read; its members mirror /etc/group).
pub const DATABASES: &[&str] = &["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"];

/// Groups whose new members are reported as `privileged_group_added`.
pub const PRIVILEGED_GROUPS: &[&str] = &[
    "root", "sudo", "wheel", "admin", "adm", "disk", "shadow", "docker", "lxd",
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct User {
    uid: u32,
    gid: u32,
    home: String,
    shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    gid: u32,
    members: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Secret {
    hash: u64,
    empty: bool,
}

#[derive(Debug, Default)]
struct Snapshot {
    users: Option<BTreeMap<String, User>>,
    groups: Option<BTreeMap<String, Group>>,
    shadow: Option<BTreeMap<String, Secret>>,
}

#[derive(Debug)]
pub struct AccountWatch {
    root: PathBuf,
    snap: Snapshot,
    /// The last write that explained nothing yet, and how many re-checks are left.
    pending: Option<(Arc<Event>, u8)>,
    warned: BTreeSet<&'static str>,
}

/// Whether the event writes, renames, links or removes one of the account databases (a read — tripline's
/// own snapshot, another agent's — changes nothing and never triggers a re-check).
pub fn touches_databases(ev: &Event) -> bool {
    crate::model::File::changes_file(ev.kind)
        && ev.file().is_some_and(|f| {
            f.succeeded() && f.changed_paths(ev.kind).any(|p| DATABASES.contains(&p))
        })
}

fn read_bounded(path: &Path) -> Result<String, &'static str> {
    let meta = std::fs::metadata(path).map_err(|_| "unreadable")?;
    if meta.len() > MAX_FILE_BYTES {
        return Err("too large");
    }
    std::fs::read_to_string(path).map_err(|_| "unreadable")
}

fn fields(text: &str, min: usize) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(move |f| f.len() >= min && !f[0].is_empty())
}

fn parse_users(text: &str) -> BTreeMap<String, User> {
    fields(text, 7)
        .filter_map(|f| {
            Some((
                f[0].to_string(),
                User {
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                    home: f[5].to_string(),
                    shell: f[6].to_string(),
                },
            ))
        })
        .collect()
}

fn parse_groups(text: &str) -> BTreeMap<String, Group> {
    fields(text, 4)
        .filter_map(|f| {
            Some((
                f[0].to_string(),
                Group {
                    gid: f[2].parse().ok()?,
                    members: f[3]
                        .split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .map(String::from)
                        .collect(),
                },
            ))
        })
        .collect()
}

fn parse_shadow(text: &str) -> BTreeMap<String, Secret> {
    fields(text, 2)
        .map(|f| {
            let mut h = DefaultHasher::new();
            f[1].hash(&mut h);
            (
                f[0].to_string(),
                Secret {
                    hash: h.finish(),
                    empty: f[1].is_empty(),
                },
            )
        })
        .collect()
}

fn change(
    kind: AccountChangeKind,
    name: &str,
    old: Option<String>,
    new: Option<String>,
) -> AccountChange {
    AccountChange {
        kind,
        name: name.to_string(),
        group: None,
        old,
        new,
    }
}

impl AccountWatch {
    /// Reads the databases under `root` (`/` on a host; a test directory in tests).
    pub fn new(root: &Path) -> AccountWatch {
        let mut w = AccountWatch {
            root: root.to_path_buf(),
            snap: Snapshot::default(),
            pending: None,
            warned: BTreeSet::new(),
        };
        w.snap = w.read();
        w
    }

    fn load<T>(
        &mut self,
        file: &'static str,
        parse: fn(&str) -> BTreeMap<String, T>,
    ) -> Option<BTreeMap<String, T>> {
        let path = self.root.join(file.trim_start_matches('/'));
        let parsed = read_bounded(&path).map(|t| parse(&t)).and_then(|m| {
            if m.len() > MAX_ENTRIES {
                Err("too many entries")
            } else {
                Ok(m)
            }
        });
        match parsed {
            Ok(m) => Some(m),
            Err(why) => {
                if self.warned.insert(file) {
                    tracing::warn!(file, why, "account database not diffed");
                }
                None
            }
        }
    }

    fn read(&mut self) -> Snapshot {
        Snapshot {
            users: self.load("/etc/passwd", parse_users),
            groups: self.load("/etc/group", parse_groups),
            shadow: self.load("/etc/shadow", parse_shadow),
        }
    }

    /// Reads the databases again; returns what changed since the last read and keeps the new snapshot.
    // Long on purpose: one pass per database (users, groups, shadow) comparing old and new entries field by field.
    pub fn diff(&mut self) -> Vec<AccountChange> {
        let new = self.read();
        let old = std::mem::replace(&mut self.snap, new);
        let mut out = Vec::new();
        use AccountChangeKind as K;
        if let (Some(o), Some(n)) = (&old.users, &self.snap.users) {
            for (name, u) in n {
                match o.get(name) {
                    None => {
                        out.push(change(
                            K::account_added,
                            name,
                            None,
                            Some(format!("uid {}", u.uid)),
                        ));
                        if u.uid == 0 {
                            out.push(change(K::uid0_account, name, None, Some("0".into())));
                        }
                        if u.gid == 0 && u.uid != 0 {
                            out.push(change(K::gid0_account, name, None, Some("0".into())));
                        }
                    }
                    Some(p) => {
                        if p.uid != u.uid {
                            out.push(change(
                                K::uid_changed,
                                name,
                                Some(p.uid.to_string()),
                                Some(u.uid.to_string()),
                            ));
                            if u.uid == 0 {
                                out.push(change(
                                    K::uid0_account,
                                    name,
                                    Some(p.uid.to_string()),
                                    Some("0".into()),
                                ));
                            }
                        }
                        if p.gid != u.gid && u.gid == 0 && u.uid != 0 {
                            out.push(change(
                                K::gid0_account,
                                name,
                                Some(p.gid.to_string()),
                                Some("0".into()),
                            ));
                        }
                        if p.shell != u.shell {
                            out.push(change(
                                K::shell_changed,
                                name,
                                Some(p.shell.clone()),
                                Some(u.shell.clone()),
                            ));
                        }
                        if p.home != u.home {
                            out.push(change(
                                K::home_changed,
                                name,
                                Some(p.home.clone()),
                                Some(u.home.clone()),
                            ));
                        }
                    }
                }
            }
            for name in o.keys().filter(|k| !n.contains_key(*k)) {
                out.push(change(K::account_removed, name, None, None));
            }
        }
        if let (Some(o), Some(n)) = (&old.groups, &self.snap.groups) {
            for (g, grp) in n {
                let before = o.get(g);
                if before.is_none() {
                    out.push(change(
                        K::group_added,
                        g,
                        None,
                        Some(format!("gid {}", grp.gid)),
                    ));
                }
                // A privileged group is one by name or by gid 0.
                if !(PRIVILEGED_GROUPS.contains(&g.as_str()) || grp.gid == 0) {
                    continue;
                }
                for m in &grp.members {
                    if before.is_none_or(|b| !b.members.contains(m)) {
                        out.push(AccountChange {
                            group: Some(g.clone()),
                            ..change(K::privileged_group_added, m, None, None)
                        });
                    }
                }
            }
            for g in o.keys().filter(|k| !n.contains_key(*k)) {
                out.push(change(K::group_removed, g, None, None));
            }
        }
        if let (Some(o), Some(n)) = (&old.shadow, &self.snap.shadow) {
            for (name, s) in n {
                // New accounts are reported as added; their first password is part of that.
                let Some(p) = o.get(name) else { continue };
                if s.empty && !p.empty {
                    out.push(change(K::password_removed, name, None, None));
                } else if s.hash != p.hash {
                    out.push(change(K::password_changed, name, None, None));
                }
            }
        }
        out
    }

    /// Called for every event that touches the databases: the changes it made, or none yet (then the
    /// event is kept and the databases are read again on the next ticks).
    pub fn on_write(&mut self, ev: &Arc<Event>) -> Vec<AccountChange> {
        let changes = self.diff();
        if changes.is_empty() {
            self.pending = Some((ev.clone(), RECHECKS));
        } else {
            self.pending = None;
        }
        changes
    }

    /// Called about once a second: changes explained by the pending write, with that write's event.
    pub fn recheck(&mut self) -> Option<(Arc<Event>, Vec<AccountChange>)> {
        let (ev, left) = self.pending.take()?;
        // Changed well after the pending write: a later writer's event is still on its way and will
        // claim the change itself (attributing it to the pending write would name the wrong process).
        let newest = DATABASES
            .iter()
            .filter_map(|f| std::fs::metadata(self.root.join(f.trim_start_matches('/'))).ok())
            .filter_map(|m| m.modified().ok())
            .max();
        if newest.is_some_and(|m| m > ev.time + LATER_WRITER) {
            if left > 1 {
                self.pending = Some((ev, left - 1));
            }
            return None;
        }
        let changes = self.diff();
        if changes.is_empty() {
            if left > 1 {
                self.pending = Some((ev, left - 1));
            }
            return None;
        }
        Some((ev, changes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
        alice:x:1000:1000::/home/alice:/bin/bash\n";
    const GROUP: &str = "root:x:0:\nsudo:x:27:alice\nwww-data:x:33:\nalice:x:1000:\n";
    const SHADOW: &str =
        "root:$y$j9T$abc:19000:0:99999:7:::\nalice:$y$j9T$def:19000:0:99999:7:::\n\
        daemon:*:19000:0:99999:7:::\nwww-data:*:19000:0:99999:7:::\n";

    fn root() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        write(&t, "passwd", PASSWD);
        write(&t, "group", GROUP);
        write(&t, "shadow", SHADOW);
        t
    }

    fn write(t: &tempfile::TempDir, f: &str, text: &str) {
        std::fs::write(t.path().join("etc").join(f), text).unwrap();
    }

    fn kinds(c: &[AccountChange]) -> Vec<(&'static str, String)> {
        c.iter()
            .map(|c| {
                (
                    c.kind.as_str(),
                    c.group
                        .clone()
                        .map_or(c.name.clone(), |g| format!("{}@{g}", c.name)),
                )
            })
            .collect()
    }

    #[test]
    fn no_change_no_finding() {
        let t = root();
        let mut w = AccountWatch::new(t.path());
        assert!(w.diff().is_empty());
    }

    #[test]
    fn added_uid0_backdoor_and_removed() {
        let t = root();
        let mut w = AccountWatch::new(t.path());
        write(
            &t,
            "passwd",
            &format!("{PASSWD}toor:x:0:0::/root:/bin/sh\n"),
        );
        assert_eq!(
            kinds(&w.diff()),
            vec![
                ("account_added", "toor".into()),
                ("uid0_account", "toor".into())
            ]
        );
        write(&t, "passwd", PASSWD);
        assert_eq!(kinds(&w.diff()), vec![("account_removed", "toor".into())]);
    }

    #[test]
    fn service_account_gets_a_shell_uid0_gid0_and_sudo() {
        let t = root();
        let mut w = AccountWatch::new(t.path());
        write(
            &t,
            "passwd",
            &PASSWD
                .replace(
                    "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin",
                    "www-data:x:33:0:www-data:/var/www:/bin/bash",
                )
                .replace("daemon:x:1:1", "daemon:x:0:1"),
        );
        write(
            &t,
            "group",
            &GROUP.replace("sudo:x:27:alice", "sudo:x:27:alice,www-data"),
        );
        let got = kinds(&w.diff());
        assert_eq!(
            got,
            vec![
                ("uid_changed", "daemon".into()),
                ("uid0_account", "daemon".into()),
                ("gid0_account", "www-data".into()),
                ("shell_changed", "www-data".into()),
                ("privileged_group_added", "www-data@sudo".into()),
            ]
        );
    }

    #[test]
    fn password_changed_or_removed_without_keeping_the_hash() {
        let t = root();
        let mut w = AccountWatch::new(t.path());
        write(
            &t,
            "shadow",
            &SHADOW
                .replace("$y$j9T$def", "$y$j9T$new")
                .replace("$y$j9T$abc", ""),
        );
        assert_eq!(
            kinds(&w.diff()),
            vec![
                ("password_changed", "alice".into()),
                ("password_removed", "root".into())
            ]
        );
        assert!(
            !format!("{:?}", w.snap).contains("j9T"),
            "hashes are not kept"
        );
    }

    #[test]
    fn new_group_and_new_privileged_group() {
        let t = root();
        let mut w = AccountWatch::new(t.path());
        write(
            &t,
            "group",
            &format!("{GROUP}wheel:x:10:mallory\nops:x:2000:\n"),
        );
        assert_eq!(
            kinds(&w.diff()),
            vec![
                ("group_added", "ops".into()),
                ("group_added", "wheel".into()),
                ("privileged_group_added", "mallory@wheel".into()),
            ]
        );
    }

    #[test]
    fn oversized_or_missing_databases_are_not_diffed() {
        let t = root();
        let mut w = AccountWatch::new(t.path());
        std::fs::remove_file(t.path().join("etc/passwd")).unwrap();
        assert!(w.diff().is_empty());
        let big: String = (0..MAX_ENTRIES + 1)
            .map(|i| format!("u{i}:x:{i}:{i}::/h:/bin/sh\n"))
            .collect();
        write(&t, "passwd", &big);
        assert!(w.diff().is_empty(), "too many entries: not diffed");
        assert!(w.snap.users.is_none());
    }
}
