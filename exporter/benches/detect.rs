//! Detector throughput (default policy, every baseline model on). Memory per key: `benches/memory.rs`.
//! `cargo bench --bench detect`.
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tripline::detect::baseline::Mode;
use tripline::detect::{DetectConfig, Engine};
use tripline::model::{Event, EventData, EventKind, Net, Parent, Process, Transport};
use tripline::telemetry::metrics::Metrics;

fn event(n: u32, kind: EventKind) -> Arc<Event> {
    let exe = format!("/usr/bin/tool{}", n % 200);
    let data = match kind {
        EventKind::Exec => EventData::Exec {
            filename: exe.clone(),
            filename_truncated: false,
        },
        _ => EventData::Net(Net {
            transport: Transport::Tcp,
            local: "10.0.0.2:40000".parse::<SocketAddr>().unwrap(),
            peer: format!("10.0.1.{}:{}", n % 250, 1000 + n % 500)
                .parse()
                .unwrap(),
            result: 0,
        }),
    };
    Arc::new(Event {
        kind,
        ktime_ns: u64::from(n),
        time: SystemTime::now(),
        process: Process {
            pid: 1000 + n,
            tid: 1000 + n,
            ppid: 900,
            exe: exe.into(),
            args: vec!["tool".to_string(), "-x".to_string()].into(),
            ..Process::default()
        },
        parent: Some(Parent {
            pid: 900,
            exe: "/usr/bin/bash".into(),
            ..Parent::default()
        }),
        ancestors: ["/usr/bin/bash".into(), "/usr/lib/systemd/systemd".into()].into(),
        data,
        wire_flags: 0,
    })
}

fn bench(c: &mut Criterion) {
    let events: Vec<Arc<Event>> = (0..10_000)
        .map(|n| {
            event(
                n,
                if n % 2 == 0 {
                    EventKind::Exec
                } else {
                    EventKind::Connect
                },
            )
        })
        .collect();
    let mut config = DetectConfig::default();
    config.baseline.mode = Mode::Monitor;
    let mut engine = Engine::new(&config, Metrics::default()).unwrap();
    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("default policy + all models (monitor)", |b| {
        b.iter(|| {
            for e in &events {
                black_box(engine.process(e));
            }
        })
    });
    g.finish();
    // Memory per baseline key: `cargo bench --bench memory` (exact heap, counting allocator).
}

criterion_group!(benches, bench);
criterion_main!(benches);
