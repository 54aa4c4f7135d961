//! Tamper family: ptrace, BPF program loads, signals aimed at tripline, memfd_create, mount and umount,
//! and sockets duplicated onto stdin/stdout/stderr (`exporter-ebpf/src/tamper.rs`).
use super::Sys;
use crate::model::record::AttrSink;
use crate::model::{Event, EventKind};

/// `stdio_socket` events: the fd (0..2) the socket lands on, from `args[3]`.
fn stdio_target(x: &Sys) -> i64 {
    x.args[3] as i64
}

/// `stdio_socket` events: stdin and stdout are both sockets once the call succeeded (`args[2]` has a bit
/// per fd 0..2 that is then a socket).
pub fn stdin_and_stdout_on_sockets(x: &Sys) -> bool {
    x.succeeded() && x.args[2] & 0b11 == 0b11
}

pub(super) fn attributes<'a>(ev: &'a Event, x: &'a Sys, a: &mut impl AttrSink<'a>) {
    match ev.kind {
        EventKind::StdioSocket => {
            a.push(("tripline.stdio.fd", stdio_target(x).into()));
            let fds: Vec<String> = (0..3)
                .filter(|n| x.args[2] & (1 << n) != 0)
                .map(|n: u32| n.to_string())
                .collect();
            a.push(("tripline.stdio.socket_fds", fds.into()));
        }
        EventKind::Ptrace => {
            a.push(("tripline.ptrace.request", (x.args[0] as i64).into()));
            a.push((
                "tripline.ptrace.target_pid",
                (x.args[1] as i32 as i64).into(),
            ));
        }
        EventKind::BpfLoad => a.push(("tripline.bpf.command", (x.args[0] as i64).into())),
        EventKind::SignalSelf => {
            a.push((
                "tripline.signal.target_pid",
                (x.args[0] as i32 as i64).into(),
            ));
            let sig = if x.syscall == "tgkill" {
                x.args[2]
            } else {
                x.args[1]
            };
            a.push(("tripline.signal.number", (sig as i64).into()));
        }
        // memfd_create, mount, umount: the names they carry.
        _ => {
            if let Some(n) = &x.name {
                a.push(("tripline.syscall.target", n.as_str().into()));
            }
            if let Some(n) = &x.name2 {
                a.push(("tripline.syscall.source", n.as_str().into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use tripline_common::{kind, sysop, SysEvent};

    use super::super::attributes;
    use super::super::encode::{bare_event, header, sys};
    use crate::model::record::Value;

    /// A socket dup2'ed onto stdout while stdin already is one: both on sockets.
    #[test]
    fn stdio_socket_names_the_fd_and_the_socket_fds() {
        let h = header(kind::STDIO_SOCKET, size_of::<SysEvent>(), 4);
        let ev = bare_event(&sys(h, sysop::DUP2, [5, 1, 0b011, 1], None, 1));
        let Some(x) = ev.sys() else {
            panic!("a syscall event")
        };
        assert!(super::stdin_and_stdout_on_sockets(x));
        let a = attributes(&ev);
        let get = |k: &str| a.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("tripline.syscall.name"),
            Some(Value::Str("dup2".into()))
        );
        assert_eq!(get("tripline.stdio.fd"), Some(Value::Int(1)));
        // Only stdin so far, or a failed call: not both.
        let only_in = bare_event(&sys(h, sysop::DUP2, [5, 0, 0b001, 0], None, 0));
        let failed = bare_event(&sys(h, sysop::DUP2, [5, 1, 0b011, 1], None, -9));
        for ev in [only_in, failed] {
            assert!(!ev.sys().is_some_and(super::stdin_and_stdout_on_sockets));
        }
    }

    /// The `mount` kind walked through: wire → decode → attributes.
    #[test]
    fn mount_carries_target_and_source() {
        let h = header(kind::MOUNT, size_of::<SysEvent>(), 4);
        let mut bytes = sys(h, sysop::MOUNT, [0; 4], Some("/mnt/x"), 0);
        // name2 (the source) at its wire offset.
        let off = std::mem::offset_of!(SysEvent, name2);
        bytes[off..off + 5].copy_from_slice(b"/dev\0");
        let len_off = std::mem::offset_of!(SysEvent, name2_len);
        bytes[len_off..len_off + 2].copy_from_slice(&5u16.to_ne_bytes());
        let ev = bare_event(&bytes);
        let a = attributes(&ev);
        let get = |k: &str| a.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("tripline.syscall.name"),
            Some(Value::Str("mount".into()))
        );
        assert_eq!(
            get("tripline.syscall.target"),
            Some(Value::Str("/mnt/x".into()))
        );
        assert_eq!(
            get("tripline.syscall.source"),
            Some(Value::Str("/dev".into()))
        );
    }
}
