//! io_uring family: ring set-up and the first use of each opcode by a process
//! (`exporter-ebpf/src/io_uring.rs`). File writes and opens through a ring are file-family events
//! (`tripline.file.operation = io_uring`).
use tripline_common::io_uring_op;

use super::Sys;
use crate::model::record::AttrSink;
use crate::model::{Event, EventKind};

/// The opcode name of an `io_uring_op` event.
pub fn opcode(x: &Sys) -> &'static str {
    io_uring_op::name(x.args[0] as u8)
}

pub(super) fn attributes<'a>(ev: &'a Event, x: &'a Sys, a: &mut impl AttrSink<'a>) {
    match ev.kind {
        EventKind::IoUringSetup => {
            a.push(("tripline.io_uring.fd", (x.args[0] as i32 as i64).into()));
            a.push(("tripline.io_uring.sq_entries", (x.args[1] as i64).into()));
            a.push(("tripline.io_uring.setup_flags", (x.args[2] as i64).into()));
        }
        _ => {
            a.push(("tripline.io_uring.opcode", opcode(x).into()));
            a.push(("tripline.io_uring.opcode_id", (x.args[0] as i64).into()));
            a.push(("tripline.io_uring.sq_thread", (x.args[2] != 0).into()));
        }
    }
}

pub(super) fn summary(ev: &Event, x: &Sys, out: &mut String) {
    use std::fmt::Write;
    // Writing into a String cannot fail.
    let _ = match ev.kind {
        EventKind::IoUringSetup => write!(out, " created an io_uring ({} entries)", x.args[1]),
        _ => write!(out, " submitted io_uring {}", opcode(x)),
    };
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use tripline_common::{kind, SysEvent};

    use super::super::encode::{bare_event, header, sys};
    use super::super::{attributes, summary};
    use crate::model::record::Value;
    use crate::model::Event;

    fn event(k: u16, args: [u64; 4]) -> Event {
        bare_event(&sys(header(k, size_of::<SysEvent>(), 4), 0, args, None, 0))
    }

    #[test]
    fn opcode_event_names_the_opcode() {
        let ev = event(kind::IO_URING_OP, [23, 0, 0, 0]);
        let a = attributes(&ev);
        assert!(a
            .iter()
            .any(|(k, v)| *k == "tripline.io_uring.opcode" && *v == Value::from("WRITE")));
        assert!(
            summary(&ev).ends_with("submitted io_uring WRITE"),
            "{}",
            summary(&ev)
        );
        let ev = event(kind::IO_URING_SETUP, [5, 8, 0, 0]);
        assert!(attributes(&ev)
            .iter()
            .any(|(k, v)| *k == "tripline.io_uring.sq_entries" && *v == Value::from(8i64)));
    }
}
