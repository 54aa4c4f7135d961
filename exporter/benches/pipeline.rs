//! Userspace decode + enrich throughput on recorded-shape events (one core).
//!
//! `cargo bench --bench pipeline`. The mix follows a busy host: fork, exec, connect, exit per process.
use std::hint::black_box;
use std::mem::size_of;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tripline::enrich::ingest::Ingest;
use tripline::enrich::ProcessTree;
use tripline::families::encode;
use tripline::telemetry::metrics::Metrics;
use tripline_common::{kind, ExecEvent, ExitEvent, ForkEvent, NetEvent};

const TICK: u64 = 10_000_000;

fn workload(processes: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for n in 0..processes {
        let pid = 10_000 + n;
        let start = u64::from(pid) * TICK;
        let mut parent = encode::header(kind::FORK, size_of::<ForkEvent>(), 900);
        parent.start_ns = 900 * TICK;
        out.push(encode::fork(parent, pid, start));
        let mut h = encode::header(kind::EXEC, size_of::<ExecEvent>(), pid);
        h.ppid = 900;
        h.start_ns = start;
        h.parent_start_ns = 900 * TICK;
        out.push(encode::exec(
            h,
            "/usr/bin/curl",
            &["curl", "-s", "https://example.invalid/api/v1/items?page=2"],
        ));
        let mut h = encode::header(kind::CONNECT, size_of::<NetEvent>(), pid);
        h.ppid = 900;
        h.start_ns = start;
        h.parent_start_ns = 900 * TICK;
        out.push(encode::net(
            h,
            "10.0.0.5:43000".parse().unwrap(),
            "10.0.0.9:443".parse().unwrap(),
            0,
        ));
        let mut h = encode::header(kind::EXIT, size_of::<ExitEvent>(), pid);
        h.ppid = 900;
        h.start_ns = start;
        out.push(encode::exit(h, 0));
    }
    out
}

fn bench(c: &mut Criterion) {
    let records = workload(2_000);
    let metrics = Metrics::default();
    let redactor = tripline::enrich::redact::Redactor::new(&Default::default(), &metrics).unwrap();
    let watch = tripline::enrich::filewatch::FileWatch::new(&["/etc".to_string()]).unwrap();
    let fresh_tree = || ProcessTree::new(65_536, PathBuf::from("/nonexistent-procfs"));
    let mut ingest = Ingest::new(fresh_tree(), redactor, watch, metrics.clone());
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("decode+enrich", |b| {
        b.iter(|| {
            ingest.tree = fresh_tree();
            for r in &records {
                black_box(ingest.record(r));
            }
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            for r in &records {
                let _ = black_box(tripline::families::decode(r));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
