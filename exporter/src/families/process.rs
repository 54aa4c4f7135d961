//! Process family: exec, fork, exit (`exporter-ebpf/src/process.rs`), plus the identity attributes every
//! event carries (the process, its parent and ancestry).
use tripline_common::{
    flags, resolve, ExecEvent, ExitEvent, ForkEvent, ARGS_LEN, FILENAME_LEN, RESOLVED_BUF,
};

use super::{c_string, checked, checked_ref, split_args, DecodeError};
use crate::model::record::AttrSink;
use crate::model::{Event, EventData, EventKind};

/// What the kernel resolved at exec (`ExecEvent::exe`/`cwd`): canonical paths from the kernel's own
/// objects, so identity does not depend on reading `/proc/PID/exe` before the process is gone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecPaths {
    /// The executable, with " (deleted)" appended when it has no links left (as `/proc/PID/exe` shows
    /// it). `None` when the walk failed, or for a file without a path (memfd and other pseudo files,
    /// which resolve to `/`): procfs answers those.
    pub exe: Option<String>,
    /// The working directory at exec.
    pub cwd: Option<String>,
}

impl ExecPaths {
    fn decode(e: &ExecEvent) -> ExecPaths {
        let path = |buf: &[u8], len: u16, flags: u16| {
            let len = usize::from(len).min(RESOLVED_BUF);
            // A truncated path names another file: not an identity.
            (len > 1 && flags & resolve::KERNEL != 0 && flags & resolve::TRUNCATED == 0)
                .then(|| c_string(&buf[..len]))
        };
        let exe = path(&e.exe, e.exe_len, e.exe_flags)
            .filter(|p| p != "/")
            .map(|p| {
                if e.exe_flags & resolve::DELETED != 0 {
                    format!("{p} (deleted)")
                } else {
                    p
                }
            });
        ExecPaths {
            exe,
            cwd: path(&e.cwd, e.cwd_len, e.cwd_flags),
        }
    }
}

pub(super) fn decode(
    bytes: &[u8],
    kind: EventKind,
    args: &mut Vec<String>,
    paths: &mut ExecPaths,
) -> Result<EventData, DecodeError> {
    Ok(match kind {
        EventKind::Fork => {
            let e: ForkEvent = checked(bytes, kind)?;
            EventData::Fork {
                child_pid: e.child_pid,
                child_start_ns: e.child_start_ns,
            }
        }
        EventKind::Exit => {
            let e: ExitEvent = checked(bytes, kind)?;
            EventData::Exit {
                status: e.exit_code,
            }
        }
        _ => {
            let mut spare = std::mem::MaybeUninit::uninit();
            let e: &ExecEvent = checked_ref(bytes, kind, &mut spare)?;
            let flen = usize::from(e.filename_len).min(FILENAME_LEN);
            let alen = usize::from(e.args_len).min(ARGS_LEN);
            *args = split_args(&e.args[..alen]);
            *paths = ExecPaths::decode(e);
            EventData::Exec {
                filename: c_string(&e.filename[..flen]),
                filename_truncated: e.header.flags & flags::FILENAME_TRUNCATED != 0,
            }
        }
    })
}

/// Who acted: the process, its parent and ancestry. Every record starts with these.
pub(super) fn identity_attributes<'a>(ev: &'a Event, a: &mut impl AttrSink<'a>) {
    let p = &ev.process;
    a.push(("tripline.event.kind", ev.kind.as_str().into()));
    a.push(("process.pid", p.pid.into()));
    a.push(("thread.id", p.tid.into()));
    a.push(("process.parent_pid", p.ppid.into()));
    a.push(("process.executable.path", p.exe.as_str().into()));
    a.push(("process.executable.name", p.exe_name().into()));
    a.push(("process.command", p.comm.as_str().into()));
    a.push(("process.command_args", p.args[..].into()));
    a.push(("process.args_count", (p.args.len() as i64).into()));
    a.push(("tripline.process.args_truncated", p.args_truncated.into()));
    a.push(("process.user.id", p.euid.into()));
    a.push(("process.real_user.id", p.uid.into()));
    a.push(("tripline.process.group.id", p.egid.into()));
    a.push(("tripline.process.real_group.id", p.gid.into()));
    a.push(("process.creation.time", creation_time(ev).into()));
    a.push(("tripline.process.start_ns", (p.start_ns as i64).into()));
    a.push(("tripline.process.cgroup_id", (p.cgroup_id as i64).into()));
    if p.stdio_socket {
        a.push(("tripline.process.stdio_socket", true.into()));
    }
    if let Some(script) = &p.script {
        a.push(("tripline.process.script.path", script.as_str().into()));
    }
    if !p.exe_resolution.is_empty() && p.exe_resolution != "exact" {
        a.push((
            "tripline.process.executable.resolution",
            p.exe_resolution.into(),
        ));
    }
    if p.current_ppid != p.ppid && p.current_ppid != 0 {
        a.push(("tripline.process.current_parent_pid", p.current_ppid.into()));
    }
    if let Some(auid) = p.auid {
        a.push(("tripline.process.login_user.id", auid.into()));
    }
    if let Some(parent) = &ev.parent {
        a.push((
            "tripline.process.parent.executable.path",
            parent.exe.as_str().into(),
        ));
        if let Some(s) = &parent.script {
            a.push(("tripline.process.parent.script.path", s.as_str().into()));
        }
        a.push((
            "tripline.process.parent.command_args",
            parent.args[..].into(),
        ));
        a.push(("tripline.process.parent.user.id", parent.euid.into()));
    }
    a.push(("tripline.process.ancestors", ev.ancestors[..].into()));
}

/// When the process started, on the wall clock (rendered RFC 3339): the event's time less the
/// boot-clock time between the process's start and the event.
fn creation_time(ev: &Event) -> std::time::SystemTime {
    let age = std::time::Duration::from_nanos(ev.ktime_ns.saturating_sub(ev.process.start_ns));
    ev.time.checked_sub(age).unwrap_or(ev.time)
}

pub(super) fn attributes<'a>(ev: &'a Event, a: &mut impl AttrSink<'a>) {
    let p = &ev.process;
    match &ev.data {
        EventData::Exec {
            filename,
            filename_truncated,
        } => {
            a.push(("tripline.exec.filename", filename.as_str().into()));
            // A setuid/setgid binary: the effective ids differ from the real ones after exec.
            if p.uid != p.euid || p.gid != p.egid {
                a.push(("tripline.exec.setid", true.into()));
            }
            if *filename_truncated {
                a.push(("tripline.exec.filename_truncated", true.into()));
            }
        }
        EventData::Fork { child_pid, .. } => {
            a.push(("tripline.fork.child_pid", (*child_pid).into()))
        }
        EventData::Exit { status } => {
            a.push(("process.exit.code", i64::from((status >> 8) & 0xff).into()));
            let signal = status & 0x7f;
            if signal != 0 {
                a.push(("tripline.process.exit.signal", signal.into()));
            }
        }
        _ => {}
    }
}

pub(super) fn summary(ev: &Event, out: &mut String) {
    match &ev.data {
        EventData::Fork { child_pid, .. } => {
            out.push_str(" forked pid ");
            out.push_str(itoa::Buffer::new().format(*child_pid));
        }
        EventData::Exit { status } => {
            out.push_str(" exited with status ");
            out.push_str(itoa::Buffer::new().format(*status));
        }
        _ => {
            out.push_str(" executed ");
            out.push_str(&ev.process.exe);
            if let Some(script) = &ev.process.script {
                out.push_str(" running ");
                out.push_str(script);
            }
        }
    }
}

pub mod encode {
    use std::mem::size_of;

    use tripline_common::{
        flags, resolve, ExecEvent, ExitEvent, ForkEvent, Header, ARGS_LEN, FILENAME_LEN,
        RESOLVED_BUF, RESOLVED_PATH_MAX,
    };

    use crate::families::encode::bytes_of;

    /// An exec record without kernel-resolved paths (as when the offsets are missing).
    pub fn exec(h: Header, filename: &str, args: &[&str]) -> Vec<u8> {
        exec_resolved(h, filename, args, None, None)
    }

    /// An exec record with the kernel-resolved executable (`path`, `resolve::*` flags besides
    /// `KERNEL`) and working directory.
    pub fn exec_resolved(
        mut h: Header,
        filename: &str,
        args: &[&str],
        exe: Option<(&str, u16)>,
        cwd: Option<&str>,
    ) -> Vec<u8> {
        h.len = size_of::<ExecEvent>() as u32;
        let mut e = ExecEvent {
            header: h,
            filename_len: 0,
            args_len: 0,
            exe_len: 0,
            cwd_len: 0,
            exe_flags: 0,
            cwd_flags: 0,
            _pad: 0,
            filename: [0; FILENAME_LEN],
            args: [0; ARGS_LEN],
            exe: [0; RESOLVED_BUF],
            cwd: [0; RESOLVED_BUF],
        };
        let put = |buf: &mut [u8; RESOLVED_BUF], p: &str| {
            let n = p.len().min(RESOLVED_PATH_MAX);
            buf[..n].copy_from_slice(&p.as_bytes()[..n]);
            (n + 1) as u16
        };
        if let Some((p, f)) = exe {
            e.exe_len = put(&mut e.exe, p);
            e.exe_flags = f | resolve::KERNEL;
        }
        if let Some(p) = cwd {
            e.cwd_len = put(&mut e.cwd, p);
            e.cwd_flags = resolve::KERNEL;
        }
        let f = filename.as_bytes();
        let flen = f.len().min(FILENAME_LEN - 1);
        e.filename[..flen].copy_from_slice(&f[..flen]);
        e.filename_len = (flen + 1) as u16;
        let mut pos = 0;
        for a in args {
            let a = a.as_bytes();
            if pos + a.len() + 1 > ARGS_LEN {
                e.header.flags |= flags::ARGS_TRUNCATED;
                break;
            }
            e.args[pos..pos + a.len()].copy_from_slice(a);
            pos += a.len() + 1;
        }
        e.args_len = pos as u16;
        bytes_of(&e)
    }

    pub fn fork(mut h: Header, child_pid: u32, child_start_ns: u64) -> Vec<u8> {
        h.len = size_of::<ForkEvent>() as u32;
        bytes_of(&ForkEvent {
            header: h,
            child_pid,
            _pad: 0,
            child_start_ns,
        })
    }

    pub fn exit(mut h: Header, exit_code: u32) -> Vec<u8> {
        h.len = size_of::<ExitEvent>() as u32;
        bytes_of(&ExitEvent {
            header: h,
            exit_code,
            _pad: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use tripline_common::kind;

    use super::super::decode;
    use super::super::encode::header;
    use super::encode::*;
    use super::*;

    #[test]
    fn exec_round_trip() {
        let h = header(kind::EXEC, size_of::<ExecEvent>(), 42);
        let d = decode(&exec(h, "/bin/true", &["/bin/true", "a b", ""])).unwrap();
        assert_eq!(d.kind, EventKind::Exec);
        assert_eq!(d.header.pid, 42);
        assert_eq!(d.args, vec!["/bin/true", "a b", ""]);
        assert_eq!(
            d.data,
            EventData::Exec {
                filename: "/bin/true".into(),
                filename_truncated: false
            }
        );
    }

    #[test]
    fn exec_kernel_paths_round_trip() {
        let h = header(kind::EXEC, size_of::<ExecEvent>(), 42);
        let d = decode(&exec_resolved(
            h,
            "./x",
            &["./x"],
            Some(("/tmp/d/x", 0)),
            Some("/tmp/d"),
        ))
        .unwrap();
        assert_eq!(d.exec_paths.exe.as_deref(), Some("/tmp/d/x"));
        assert_eq!(d.exec_paths.cwd.as_deref(), Some("/tmp/d"));
        // Deleted: marked as /proc/PID/exe marks it. A pseudo file (memfd) has no path: procfs answers.
        let deleted = exec_resolved(h, "/tmp/x", &[], Some(("/tmp/x", resolve::DELETED)), None);
        assert_eq!(
            decode(&deleted).unwrap().exec_paths.exe.as_deref(),
            Some("/tmp/x (deleted)")
        );
        let memfd = exec_resolved(h, "/dev/fd/3", &[], Some(("/", 0)), None);
        assert_eq!(decode(&memfd).unwrap().exec_paths, ExecPaths::default());
        // A cut path names another file: not used.
        let cut = exec_resolved(
            h,
            "/x",
            &[],
            Some(("/a/long/path", resolve::TRUNCATED)),
            None,
        );
        assert_eq!(decode(&cut).unwrap().exec_paths.exe, None);
    }

    #[test]
    fn exec_truncated_args_flagged() {
        let h = header(kind::EXEC, size_of::<ExecEvent>(), 1);
        let long = "x".repeat(1000);
        let args: Vec<&str> = std::iter::repeat_n(long.as_str(), 10).collect();
        let d = decode(&exec(h, "/bin/echo", &args)).unwrap();
        assert_eq!(d.args.len(), 4);
        assert!(d.header.flags & flags::ARGS_TRUNCATED != 0);
    }

    #[test]
    fn fork_exit_round_trip() {
        let d = decode(&fork(header(kind::FORK, size_of::<ForkEvent>(), 7), 8, 99)).unwrap();
        assert_eq!(
            d.data,
            EventData::Fork {
                child_pid: 8,
                child_start_ns: 99
            }
        );
        let d = decode(&exit(header(kind::EXIT, size_of::<ExitEvent>(), 7), 256)).unwrap();
        assert_eq!(d.data, EventData::Exit { status: 256 });
    }
}
