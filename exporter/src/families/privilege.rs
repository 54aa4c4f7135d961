//! Privilege family: the setuid family of syscalls (`exporter-ebpf/src/privilege.rs`): the requested ids,
//! the caller's identity before the call and the result.
use super::Sys;
use crate::model::record::AttrSink;
use crate::model::Event;

/// The effective uid after a successful setuid-family call, given the one before (`new_euid` policy
/// field, `tripline.privilege.new_user.id`).
pub(super) fn new_euid(x: &Sys, before: u32) -> Option<u32> {
    let id = |i: usize| -> Option<u32> {
        let v = x.args[i] as u32;
        (v != u32::MAX).then_some(v)
    };
    match x.syscall {
        "setuid" => id(0),
        "setreuid" | "setresuid" => id(1).or(Some(before)),
        _ => None,
    }
}

pub(super) fn attributes<'a>(ev: &'a Event, x: &'a Sys, a: &mut impl AttrSink<'a>) {
    let names: &[&'static str] = match x.syscall {
        "setuid" | "setgid" => &["tripline.privilege.requested.id"],
        "setreuid" | "setregid" => &[
            "tripline.privilege.requested.real_id",
            "tripline.privilege.requested.effective_id",
        ],
        _ => &[
            "tripline.privilege.requested.real_id",
            "tripline.privilege.requested.effective_id",
            "tripline.privilege.requested.saved_id",
        ],
    };
    for (i, n) in names.iter().enumerate() {
        // -1 means "unchanged".
        let id = x.args[i] as u32;
        a.push((n, if id == u32::MAX { -1i64 } else { i64::from(id) }.into()));
    }
    if let Some(e) = new_euid(x, ev.process.euid).filter(|_| x.succeeded()) {
        a.push(("tripline.privilege.new_user.id", e.into()));
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use tripline_common::{kind, sysop, SysEvent};

    use super::super::encode::{header, sys};
    use super::super::{decode, EventData};

    #[test]
    fn setresuid_round_trip_and_new_euid() {
        let h = header(kind::PRIV_CHANGE, size_of::<SysEvent>(), 4);
        let EventData::Sys(x) = decode(&sys(
            h,
            sysop::SETRESUID,
            [u64::from(u32::MAX), 0, u64::from(u32::MAX), 0],
            None,
            0,
        ))
        .unwrap()
        .data
        else {
            panic!()
        };
        assert_eq!(x.syscall, "setresuid");
        assert_eq!(x.new_euid(1000), Some(0));
    }
}
