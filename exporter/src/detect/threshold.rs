//! Counting windows for rules with a `threshold:` (scans, brute force): per rule and process, the matching
//! events (or distinct values of one field) inside a sliding window. Bounded: beyond `MAX_WINDOWS` open
//! windows the oldest state is dropped wholesale (a burst of new processes can delay, never fake, a match).
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use foldhash::HashMap;

use super::policy::{DistinctField, Threshold};
use crate::model::Event;

const MAX_WINDOWS: usize = 16_384;

#[derive(Debug, Default)]
pub struct Windows {
    /// (rule index, pid, process start) → (kernel time, value) of matching events, oldest first.
    open: HashMap<(usize, u32, u64), VecDeque<(u64, u64)>>,
    seq: u64,
}

impl Windows {
    /// Records `ev` for rule `idx`; true when the threshold is reached (the window then starts over).
    pub fn reached(&mut self, idx: usize, t: &Threshold, ev: &Event) -> bool {
        let value = match t.distinct {
            None => {
                self.seq += 1;
                self.seq
            }
            Some(field) => match distinct_value(field, ev) {
                Some(v) => v,
                None => return false,
            },
        };
        if self.open.len() >= MAX_WINDOWS {
            self.open.clear();
        }
        let key = (idx, ev.process.pid, ev.process.start_ns);
        let w = self.open.entry(key).or_default();
        let within = t.within.as_nanos() as u64;
        while w
            .front()
            .is_some_and(|(at, _)| ev.ktime_ns.saturating_sub(*at) > within)
        {
            w.pop_front();
        }
        if t.distinct.is_some() && w.iter().any(|(_, v)| *v == value) {
            return false;
        }
        w.push_back((ev.ktime_ns, value));
        if w.len() >= t.count {
            self.open.remove(&key);
            return true;
        }
        false
    }
}

fn distinct_value(field: DistinctField, ev: &Event) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match field {
        DistinctField::PeerPort => return ev.net().map(|n| u64::from(n.peer.port())),
        DistinctField::LocalPort => return ev.net().map(|n| u64::from(n.local.port())),
        DistinctField::PeerAddress => ev.net()?.peer.ip().hash(&mut h),
        DistinctField::FilePath => ev.file()?.path.hash(&mut h),
    }
    Some(h.finish())
}
