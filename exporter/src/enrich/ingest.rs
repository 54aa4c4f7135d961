//! The sensor side of the pipeline, per ring-buffer record: decode (the record's family), redact argv,
//! stamp the wall-clock time, enrich from the process tree and resolve/filter file paths. Cheap and
//! synchronous; runs on the ring-buffer reader's task.
use std::time::{Duration, SystemTime};

use crate::enrich::filewatch::FileWatch;
use crate::enrich::redact::Redactor;
use crate::enrich::ProcessTree;
use crate::families;
use crate::model::Event;
use crate::telemetry::metrics::{DecodeLabels, KindLabel, Metrics, Stage};

/// Converts the kernel's boot-time clock to wall-clock time.
#[derive(Clone, Copy)]
pub struct Clock {
    /// Wall-clock ns at boot-time 0.
    offset_ns: i128,
}

fn clock_ns(id: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(id, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl Clock {
    pub fn now() -> Clock {
        Clock {
            offset_ns: clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME),
        }
    }

    pub fn wall(&self, boot_ns: u64) -> SystemTime {
        let ns = (self.offset_ns + i128::from(boot_ns)).max(0) as u128;
        SystemTime::UNIX_EPOCH + Duration::from_nanos(ns as u64)
    }
}

/// Everything one record goes through before it is an [`Event`].
pub struct Ingest {
    pub tree: ProcessTree,
    pub redactor: Redactor,
    pub watch: FileWatch,
    pub clock: Clock,
    metrics: Metrics,
    evictions_seen: u64,
}

impl Ingest {
    pub fn new(
        tree: ProcessTree,
        redactor: Redactor,
        watch: FileWatch,
        metrics: Metrics,
    ) -> Ingest {
        Ingest {
            tree,
            redactor,
            watch,
            clock: Clock::now(),
            metrics,
            evictions_seen: 0,
        }
    }

    /// One ring-buffer record to an event, or `None` (undecodable: counted; outside the watched paths:
    /// counted).
    pub fn record(&mut self, bytes: &[u8]) -> Option<Event> {
        match families::decode(bytes) {
            Ok(mut d) => {
                // Before the tree stores argv: no later stage ever sees the secret.
                self.redactor.redact(&mut d.args);
                let time = self.clock.wall(d.header.ktime_ns);
                let mut ev = self.tree.enrich(d, time);
                if !self.watch.resolve_and_match(&mut ev, self.tree.procfs()) {
                    self.metrics.file_events_filtered.inc();
                    return None;
                }
                Some(ev)
            }
            Err(e) => {
                self.metrics
                    .decode_errors
                    .get_or_create(&DecodeLabels {
                        kind: KindLabel(e.kind()),
                        reason: e.reason(),
                    })
                    .inc();
                self.metrics.lost(Stage::decode).inc();
                tracing::debug!(error = %e, "undecodable record");
                None
            }
        }
    }

    /// Moves the process-tree gauges forward (after each drain).
    pub fn update_gauges(&mut self) {
        self.metrics
            .process_tree_processes
            .set(self.tree.len() as i64);
        let ev = self.tree.evictions();
        self.metrics
            .process_tree_evictions
            .inc_by(ev - self.evictions_seen);
        self.evictions_seen = ev;
    }
}
