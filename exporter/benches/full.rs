//! The whole userspace pipeline on one core, stage by stage, on a recorded-shape mix of real wire
//! records (`mix.rs`: exec/fork/exit, connect/accept/listen, file writes/renames; 4,000 processes).
//!
//! `cargo bench --bench full` — each group reports elements = records, so criterion's throughput is
//! events/s:
//! - `decode`: wire bytes → typed records;
//! - `decode+enrich`: the sensor stage (decode, redact, clock, process tree, file paths), from a fresh
//!   process tree each iteration (the redactor's regex caches stay warm, as in a running daemon);
//!   enrich alone is the difference;
//! - `detect`: the default policy with every baseline model in monitor mode and correlation on, on the
//!   enriched events (the steady state: the first iteration learns what is new, later ones deduplicate);
//! - `sinks/metrics`: the per-event metric updates the detection loop does (findings are counted there);
//! - `sinks/json`: building each event's record and its JSON line (what `--events.level all` costs);
//! - `end-to-end`: bytes → enrich → detect → metrics, as the detection loop runs it (each event and
//!   finding handed to the sinks, here with no log sink on: metrics only), and the same with every
//!   event rendered as JSON.
//!
//! Instruction counts (for a busy box, where wall time is noise): `FULL_BENCH_ONCE=<stage>` runs one
//! warm pass and one measured pass of a stage (`decode`, `enrich`, `detect`, `json`, `end-to-end`)
//! inside `measured_pass`, e.g.
//! `FULL_BENCH_ONCE=detect valgrind --tool=callgrind --collect-atstart=no
//! --toggle-collect='*measured_pass*' target/release/deps/full-<hash>`; divide by the events printed.
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use tripline::detect::baseline::Mode;
use tripline::detect::{DetectConfig, Engine, Output};
use tripline::enrich::filewatch::FileWatch;
use tripline::enrich::ingest::Ingest;
use tripline::enrich::redact::Redactor;
use tripline::enrich::ProcessTree;
use tripline::model::Event;
use tripline::sinks::render;
use tripline::telemetry::metrics::Metrics;

mod mix;

const PROCESSES: u32 = 4_000;

fn tree() -> ProcessTree {
    ProcessTree::new(65_536, PathBuf::from("/nonexistent-procfs"))
}

fn ingest(metrics: &Metrics) -> Ingest {
    Ingest::new(
        tree(),
        Redactor::new(&Default::default(), metrics).unwrap(),
        FileWatch::new(&["/etc".to_string()]).unwrap(),
        metrics.clone(),
    )
}

fn engine(metrics: &Metrics) -> Engine {
    let mut config = DetectConfig::default();
    config.baseline.mode = Mode::Monitor;
    Engine::new(&config, metrics.clone()).unwrap()
}

/// The sinks with no log sink on: what the detection loop hands events and findings to when only
/// metrics are exported.
fn metrics_only(metrics: &Metrics) -> tripline::sinks::Sinks {
    tripline::sinks::Sinks::new(&Default::default(), metrics).unwrap()
}

/// One event through the detection loop's steps (`detect::run`): to the sinks, through the engine,
/// its findings to the sinks.
fn detect_loop(eng: &mut Engine, out: &mut impl Output, ev: Arc<Event>, now: SystemTime) {
    out.event(&ev);
    for f in black_box(eng.process_at(&ev, now)) {
        out.finding(&f);
    }
}

/// An event's JSON line, rendered as the JSON-lines writer does: straight from the event, into buffers
/// kept from one event to the next.
fn json_line(ev: &Event) -> usize {
    thread_local! {
        static LINES: std::cell::RefCell<render::EventLines> = Default::default();
    }
    LINES.with_borrow_mut(|lines| black_box(lines.render(ev)).len())
}

fn bench(c: &mut Criterion) {
    let records = mix::records(PROCESSES);
    let metrics = Metrics::default();
    let events: Vec<Arc<Event>> = {
        let mut i = ingest(&metrics);
        records
            .iter()
            .filter_map(|r| i.record(r))
            .map(Arc::new)
            .collect()
    };
    eprintln!(
        "mix: {} records, {} events after enrich (file filter), {} processes",
        records.len(),
        events.len(),
        PROCESSES
    );
    let mut g = c.benchmark_group("full");
    g.sample_size(20);

    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| {
            for r in &records {
                let _ = black_box(tripline::families::decode(r));
            }
        })
    });
    // A fresh process tree each iteration (the mix's processes are new), the rest as a running
    // daemon's: the redactor's regex caches warm.
    let mut warm = ingest(&metrics);
    records.iter().for_each(|r| drop(warm.record(r)));
    g.bench_function("decode+enrich", |b| {
        b.iter_batched_ref(
            tree,
            |t| {
                std::mem::swap(&mut warm.tree, t);
                for r in &records {
                    black_box(warm.record(r));
                }
            },
            BatchSize::LargeInput,
        )
    });

    g.throughput(Throughput::Elements(events.len() as u64));
    let mut eng = engine(&metrics);
    g.bench_function("detect", |b| {
        b.iter(|| {
            for e in &events {
                black_box(eng.process(e));
            }
        })
    });
    g.bench_function("sinks/metrics", |b| {
        // What the loop does per event besides detection: the queue-length gauge and the event counter
        // live at scrape time; per event only findings are counted (inside detect). Measured as the
        // loop's per-event Output call with no log sink on.
        let mut sinks = tripline::sinks::Sinks::new(&Default::default(), &metrics).unwrap();
        b.iter(|| {
            for e in &events {
                sinks.event(black_box(e));
            }
        })
    });
    g.bench_function("sinks/json", |b| {
        b.iter(|| {
            for e in &events {
                black_box(json_line(e));
            }
        })
    });

    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("end-to-end", |b| {
        let mut eng = engine(&metrics);
        let mut out = metrics_only(&metrics);
        b.iter_batched_ref(
            tree,
            |t| {
                std::mem::swap(&mut warm.tree, t);
                let now = SystemTime::now();
                for r in &records {
                    if let Some(ev) = warm.record(r) {
                        detect_loop(&mut eng, &mut out, Arc::new(ev), now);
                    }
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("end-to-end+json", |b| {
        let mut eng = engine(&metrics);
        let mut out = metrics_only(&metrics);
        b.iter_batched_ref(
            tree,
            |t| {
                std::mem::swap(&mut warm.tree, t);
                let now = SystemTime::now();
                for r in &records {
                    if let Some(ev) = warm.record(r) {
                        let ev = Arc::new(ev);
                        black_box(json_line(&ev));
                        detect_loop(&mut eng, &mut out, ev, now);
                    }
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// The measured pass (callgrind toggles collection on this function only).
#[inline(never)]
fn measured_pass(
    stage: &str,
    records: &[Vec<u8>],
    events: &[Arc<Event>],
    i: &mut Ingest,
    eng: &mut Engine,
) -> usize {
    pass(stage, records, events, i, eng)
}

/// One pass of `stage` over the mix.
#[inline(never)]
fn pass(
    stage: &str,
    records: &[Vec<u8>],
    events: &[Arc<Event>],
    i: &mut Ingest,
    eng: &mut Engine,
) -> usize {
    let now = SystemTime::now();
    match stage {
        "decode" => records
            .iter()
            .filter(|r| black_box(tripline::families::decode(r)).is_ok())
            .count(),
        "enrich" => records.iter().filter_map(|r| i.record(r)).count(),
        "detect" => {
            let mut n = 0;
            for e in events {
                black_box(eng.process_at(e, now));
                n += 1;
            }
            n
        }
        "json" => events
            .iter()
            .filter(|e| black_box(json_line(e)) > 0)
            .count(),
        "end-to-end" => {
            let mut out = metrics_only(&Metrics::default());
            records
                .iter()
                .filter_map(|r| i.record(r))
                .map(|ev| detect_loop(eng, &mut out, Arc::new(ev), now))
                .count()
        }
        other => panic!("unknown stage {other}"),
    }
}

fn once(stage: &str) {
    let records = mix::records(PROCESSES);
    let metrics = Metrics::default();
    let events: Vec<Arc<Event>> = {
        let mut i = ingest(&metrics);
        records
            .iter()
            .filter_map(|r| i.record(r))
            .map(Arc::new)
            .collect()
    };
    let mut eng = engine(&metrics);
    let mut i = ingest(&metrics);
    // Warm: the detector has seen the mix once (steady state), caches are filled; the process tree
    // starts empty again (the mix's processes are new).
    pass(stage, &records, &events, &mut i, &mut eng);
    i.tree = tree();
    let n = measured_pass(stage, &records, &events, &mut i, &mut eng);
    println!("{stage}: {n} items in the measured pass");
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(stage) = std::env::var("FULL_BENCH_ONCE") {
        once(&stage);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
