//! One finding per novelty: the rule matches and new baseline keys of one process — and of the children
//! it starts — inside a short window become one finding listing every part. A process that runs a new
//! binary, connects out, forks and writes a file is one story, told once.
//!
//! Bounded: at most `MAX_OPEN` incidents are open; a new one beyond that closes the oldest early.
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use foldhash::HashMap;

use crate::model::{Event, Part};

const MAX_OPEN: usize = 4096;
const MAX_MEMBERS: usize = 65_536;

/// A process: (pid, start time in ns since boot).
type ProcKey = (u32, u64);

#[derive(Debug)]
struct Incident {
    opened: SystemTime,
    parts: Vec<Part>,
}

#[derive(Debug, Default)]
pub struct Correlator {
    window: Duration,
    next: u64,
    open: HashMap<u64, Incident>,
    /// Which open incident each process belongs to.
    members: HashMap<ProcKey, u64>,
    /// The earliest `opened` among the open incidents (`None` when none is open): `close_due` runs on
    /// every event and skips its scan while even the earliest is inside the window.
    earliest: Option<SystemTime>,
}

impl Correlator {
    pub fn new(window: Duration) -> Correlator {
        Correlator {
            window,
            ..Correlator::default()
        }
    }

    /// Adds the parts of one event; returns the incidents that closed (parts of each, in order).
    pub fn add(&mut self, ev: &Arc<Event>, parts: Vec<Part>, now: SystemTime) -> Vec<Vec<Part>> {
        let mut closed = self.close_due(now);
        if parts.is_empty() {
            return closed;
        }
        if self.window.is_zero() {
            closed.extend(parts.into_iter().map(|p| vec![p]));
            return closed;
        }
        let me = (ev.process.pid, ev.process.start_ns);
        // The service manager's (and kthreadd's) news is not the story of every service it starts.
        let parent = ev
            .parent
            .as_ref()
            .filter(|p| p.pid > 2)
            .map(|p| (p.pid, p.start_ns));
        let id = match self
            .members
            .get(&me)
            .or_else(|| parent.and_then(|p| self.members.get(&p)))
            .copied()
            .filter(|id| self.open.contains_key(id))
        {
            Some(id) => id,
            None => {
                if self.open.len() >= MAX_OPEN {
                    closed.extend(self.close_oldest());
                }
                self.next += 1;
                self.earliest = Some(self.earliest.map_or(now, |e| e.min(now)));
                self.open.insert(
                    self.next,
                    Incident {
                        opened: now,
                        parts: Vec::new(),
                    },
                );
                self.next
            }
        };
        if self.members.len() >= MAX_MEMBERS {
            let open = &self.open;
            self.members.retain(|_, id| open.contains_key(id));
        }
        self.members.insert(me, id);
        if let Some(i) = self.open.get_mut(&id) {
            i.parts.extend(parts);
        }
        closed
    }

    /// Joins a new child to its parent's open incident, so the child's findings are told with it.
    pub fn adopt(&mut self, parent: ProcKey, child: ProcKey) {
        if parent.0 <= 2 {
            return;
        }
        if let Some(id) = self.members.get(&parent).copied() {
            if self.open.contains_key(&id) && self.members.len() < MAX_MEMBERS {
                self.members.insert(child, id);
            }
        }
    }

    /// Incidents whose window has passed.
    pub fn close_due(&mut self, now: SystemTime) -> Vec<Vec<Part>> {
        let window = self.window;
        // Nothing is due while the earliest incident is inside the window (every later one is too).
        match self.earliest {
            None => return Vec::new(),
            Some(e) if now.duration_since(e).unwrap_or_default() < window => return Vec::new(),
            Some(_) => {}
        }
        let due: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, i)| now.duration_since(i.opened).unwrap_or_default() >= window)
            .map(|(id, _)| *id)
            .collect();
        self.take(due)
    }

    /// Every open incident (at shutdown).
    pub fn close_all(&mut self) -> Vec<Vec<Part>> {
        let all: Vec<u64> = self.open.keys().copied().collect();
        self.take(all)
    }

    fn close_oldest(&mut self) -> Vec<Vec<Part>> {
        let oldest = self
            .open
            .iter()
            .min_by_key(|(id, i)| (i.opened, **id))
            .map(|(id, _)| *id);
        self.take(oldest.into_iter().collect())
    }

    fn take(&mut self, mut ids: Vec<u64>) -> Vec<Vec<Part>> {
        ids.sort_unstable();
        let out: Vec<Vec<Part>> = ids
            .iter()
            .filter_map(|id| self.open.remove(id))
            .map(|i| i.parts)
            .collect();
        if !out.is_empty() {
            self.earliest = self.open.values().map(|i| i.opened).min();
            let open = &self.open;
            self.members.retain(|_, id| open.contains_key(id));
        }
        out
    }
}
