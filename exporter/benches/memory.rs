//! Memory per entry, counted exactly by a counting allocator: the process tree with 50,000 processes
//! (fork + exec with a realistic argv each) and the baselines with 100,000 keys.
//! `cargo bench --bench memory` (prints; no timing).
use std::alloc::{GlobalAlloc, Layout, System};
use std::mem::size_of;
use std::path::PathBuf;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, SystemTime};

use tripline::detect::baseline::{Baselines, Mode, Model};
use tripline::enrich::filewatch::FileWatch;
use tripline::enrich::ingest::Ingest;
use tripline::enrich::redact::Redactor;
use tripline::enrich::ProcessTree;
use tripline::families::encode;
use tripline::telemetry::metrics::Metrics;
use tripline_common::{kind, ExecEvent, ForkEvent};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    const PROCS: u32 = 50_000;
    let metrics = Metrics::default();
    let mut ingest = Ingest::new(
        ProcessTree::new(65_536, PathBuf::from("/nonexistent-procfs")),
        Redactor::new(&Default::default(), &metrics).unwrap(),
        FileWatch::new(&["/etc".to_string()]).unwrap(),
        metrics.clone(),
    );
    let records: Vec<Vec<u8>> = (0..PROCS)
        .flat_map(|n| {
            let pid = 100_000 + n;
            let start = u64::from(pid) * 10_000_000;
            let mut f = encode::header(kind::FORK, size_of::<ForkEvent>(), 900);
            f.start_ns = 900 * 10_000_000;
            f.ktime_ns = 1_000_000_000 + u64::from(n);
            let mut e = encode::header(kind::EXEC, size_of::<ExecEvent>(), pid);
            e.ppid = 900;
            e.start_ns = start;
            e.parent_start_ns = 900 * 10_000_000;
            e.ktime_ns = f.ktime_ns;
            let arg = format!("/srv/app/jobs/job-{n}.yml");
            [
                encode::fork(f, pid, start),
                encode::exec(
                    e,
                    "/usr/bin/python3",
                    &[
                        "python3",
                        "/opt/app/worker.py",
                        "--config",
                        &arg,
                        "--verbose",
                    ],
                ),
            ]
        })
        .collect();
    let before = live();
    for r in &records {
        drop(ingest.record(r));
    }
    let tree = live() - before;
    println!(
        "process tree: {} processes, {:.1} MiB heap, {} bytes/process (argv of 5, ~90 bytes of strings)",
        ingest.tree.len(),
        tree as f64 / 1048576.0,
        tree / ingest.tree.len() as isize
    );
    drop(ingest);
    drop(records);

    let before = live();
    let mut b = Baselines::new(
        Default::default(),
        Mode::Learn,
        Duration::ZERO,
        Duration::ZERO,
        Model::ALL.iter().copied().collect(),
        SystemTime::now(),
    );
    for n in 0..100_000u32 {
        b.observe(
            Model::ProcessLineage,
            &format!("/usr/lib/app/bin/worker-{n} -> /usr/bin/helper-{}", n % 97),
            SystemTime::now(),
        );
    }
    let keys = live() - before;
    println!(
        "baselines: 100000 keys (~45 bytes each), {:.1} MiB heap, {} bytes/key",
        keys as f64 / 1048576.0,
        keys / 100_000
    );
    println!(
        "sizes: Event {} bytes, Process {} bytes (inline, before heap strings)",
        size_of::<tripline::model::Event>(),
        size_of::<tripline::model::Process>()
    );
}
