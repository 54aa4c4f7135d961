//! File family: writes, unlink, rename, chmod, chown, link and symlink on watched paths
//! (`exporter-ebpf/src/file.rs`). Relative paths are resolved in `enrich::filewatch`.
use tripline_common::{FileEvent, PATH_LEN};

use super::{c_string, checked, DecodeError};
use crate::model::record::{errno_name, Attrs};
use crate::model::{Event, EventData, EventKind};

/// A file change. Paths are absolute when `resolved`; otherwise as the process passed them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub path: String,
    /// rename/link: the new name; symlink: the link created (`path` is then the link's target text).
    pub new_path: Option<String>,
    pub flags: u32,
    pub mode: u32,
    /// chown: the requested owner and group (`None` = unchanged).
    pub owner_uid: Option<u32>,
    pub owner_gid: Option<u32>,
    pub dirfd: i32,
    /// A relative path could be resolved against the process's cwd or dirfd.
    pub resolved: bool,
    /// 0 (or the fd) on success, `-errno` on failure.
    pub result: i64,
}

impl File {
    pub fn succeeded(&self) -> bool {
        self.result >= 0
    }

    /// The paths the operation changed (what a `file_path` policy condition tests): for a rename both
    /// names; for a link only the new name (linking or symlinking *to* a file does not change it; its
    /// `path` is the source or the symlink's target text); otherwise the path.
    pub fn changed_paths(&self, kind: EventKind) -> impl Iterator<Item = &str> {
        let source =
            (kind != EventKind::FileLink || self.new_path.is_none()).then_some(self.path.as_str());
        source.into_iter().chain(self.new_path.as_deref())
    }
}

pub(super) fn decode(bytes: &[u8], kind: EventKind) -> Result<EventData, DecodeError> {
    let e: FileEvent = checked(bytes, kind)?;
    let path = c_string(&e.path[..usize::from(e.path_len).min(PATH_LEN)]);
    let new_path =
        (e.path2_len > 0).then(|| c_string(&e.path2[..usize::from(e.path2_len).min(PATH_LEN)]));
    Ok(EventData::File(File {
        resolved: path.starts_with('/') && new_path.as_ref().is_none_or(|p| p.starts_with('/')),
        path,
        new_path,
        flags: e.flags,
        mode: e.mode,
        owner_uid: (e.uid_arg != u32::MAX).then_some(e.uid_arg),
        owner_gid: (e.gid_arg != u32::MAX).then_some(e.gid_arg),
        dirfd: e.dirfd,
        result: e.result,
    }))
}

pub(super) fn attributes(f: &File, a: &mut Attrs) {
    a.push(("file.path", f.path.clone().into()));
    if let Some(p) = &f.new_path {
        a.push(("tripline.file.new_path", p.clone().into()));
    }
    a.push(("tripline.file.path_resolved", f.resolved.into()));
    a.push(("tripline.file.flags", f.flags.into()));
    if f.mode != 0 {
        a.push(("file.mode", format!("{:04o}", f.mode & 0o7777).into()));
    }
    if let Some(u) = f.owner_uid {
        a.push(("file.owner.id", u.to_string().into()));
    }
    if let Some(g) = f.owner_gid {
        a.push(("file.group.id", g.to_string().into()));
    }
    a.push(("tripline.file.result", f.result.into()));
    if f.result < 0 {
        a.push(("error.type", errno_name(-f.result).into()));
    }
}

pub(super) fn summary(ev: &Event, f: &File, who: &str) -> String {
    let verb = match ev.kind {
        EventKind::FileUnlink => "deleted",
        EventKind::FileRename => "renamed",
        EventKind::FileChmod => "changed the mode of",
        EventKind::FileChown => "changed the owner of",
        EventKind::FileLink => "linked",
        _ => "opened for writing",
    };
    let to = f
        .new_path
        .as_ref()
        .map(|p| format!(" -> {p}"))
        .unwrap_or_default();
    let failed = if f.result < 0 {
        format!(" (failed: {})", errno_name(-f.result))
    } else {
        String::new()
    };
    format!("{who} {verb} {}{to}{failed}", f.path)
}

pub fn encode(
    mut h: tripline_common::Header,
    path: &str,
    path2: Option<&str>,
    mode: u32,
    result: i64,
) -> Vec<u8> {
    h.len = std::mem::size_of::<FileEvent>() as u32;
    let mut e = FileEvent {
        header: h,
        flags: 0o1101,
        mode,
        uid_arg: u32::MAX,
        gid_arg: u32::MAX,
        dirfd: -100,
        path_len: 0,
        path2_len: 0,
        result,
        path: [0; PATH_LEN],
        path2: [0; PATH_LEN],
    };
    let p = path.as_bytes();
    e.path[..p.len()].copy_from_slice(p);
    e.path_len = (p.len() + 1) as u16;
    if let Some(p2) = path2 {
        e.path2[..p2.len()].copy_from_slice(p2.as_bytes());
        e.path2_len = (p2.len() + 1) as u16;
    }
    super::encode::bytes_of(&e)
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use tripline_common::kind;

    use super::super::decode;
    use super::super::encode::header;
    use super::*;

    #[test]
    fn file_round_trip() {
        let h = header(kind::FILE_RENAME, size_of::<FileEvent>(), 9);
        let d = decode(&encode(h, "/etc/passwd+", Some("/etc/passwd"), 0o644, 0)).unwrap();
        assert_eq!(d.kind, EventKind::FileRename);
        let EventData::File(f) = d.data else {
            panic!("not a file event")
        };
        assert_eq!(f.path, "/etc/passwd+");
        assert_eq!(f.new_path.as_deref(), Some("/etc/passwd"));
        assert_eq!(
            (f.mode, f.result, f.resolved, f.owner_uid),
            (0o644, 0, true, None)
        );
        let h = header(kind::FILE_WRITE, size_of::<FileEvent>(), 9);
        let EventData::File(f) = decode(&encode(h, "notes.txt", None, 0, -13)).unwrap().data else {
            panic!()
        };
        assert!(!f.resolved && !f.succeeded());
    }
}
