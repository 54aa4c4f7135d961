//! Wires the stages: probes → decode → enrich → detect → sinks, plus the HTTP server.
//!
//! The sensor task reads the ring buffer, decodes and enriches (cheap, synchronous) and hands events to
//! a bounded queue; the detection task runs detectors and sinks. A full queue drops the event and counts
//! it (`tripline_events_lost_total{stage="pipeline"}`).
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{mpsc, watch};

use crate::cli::RunArgs;
use crate::config::Config;
use crate::decode;
use crate::detect::Engine;
use crate::enrich::filewatch::FileWatch;
use crate::enrich::ProcessTree;
use crate::event::Event;
use crate::probes::{Sensor, SensorOptions};
use crate::server::{self, AppState};
use crate::sinks::metrics::{DecodeLabels, Metrics, Stage};
use crate::sinks::redact::Redactor;
use crate::sinks::{process_metrics::ProcessCollector, EventLevel, Sinks};

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

/// Applies command-line overrides to the loaded configuration.
pub fn effective_config(args: &RunArgs, events_to_stdout: bool) -> anyhow::Result<Config> {
    let mut config = Config::load(args.config_file.as_deref())?;
    if let Some(rb) = args.ring_buffer_bytes {
        config.sensor.ring_buffer_bytes = rb;
        // Keep the wake-up threshold meaningful for a smaller ring.
        config.sensor.wakeup_bytes = config.sensor.wakeup_bytes.min(rb / 4);
    }
    if let Some(p) = &args.procfs {
        config.sensor.procfs = p.clone();
    }
    if let Some(out) = &args.events_output {
        config.sinks.jsonl.path = Some(out.clone());
    }
    if let Some(level) = args.events_level {
        config.sinks.jsonl.events = level;
    }
    if let Some(e) = &args.otlp_endpoint {
        config.sinks.otlp.endpoint = Some(e.clone());
    }
    if let Some(p) = args.otlp_protocol {
        config.sinks.otlp.protocol = Some(p);
    }
    if let Some(l) = args.otlp_events {
        config.sinks.otlp.events = l;
    }
    if let Some(p) = &args.policy_file {
        config.detect.policy_file = Some(p.clone());
    }
    if let Some(f) = &args.baseline_file {
        config.detect.baseline.file = Some(f.clone());
    }
    if let Some(m) = args.baseline_mode {
        config.detect.baseline.mode = m;
    }
    if let Some(d) = args.baseline_learn_for {
        config.detect.baseline.learn_for = d;
    }
    if let Some(d) = args.baseline_quiet_period {
        config.detect.baseline.quiet_period = d;
    }
    if events_to_stdout {
        config.sinks.jsonl.path = Some("-".into());
        config.sinks.jsonl.events = args.events_level.unwrap_or(EventLevel::All);
    }
    let origin = args
        .config_file
        .clone()
        .unwrap_or_else(|| "<command line>".into());
    config.validate(&origin)?;
    Ok(config)
}

/// Processes one ring-buffer record through decode, redaction and enrich.
pub fn ingest(
    bytes: &[u8],
    tree: &mut ProcessTree,
    clock: &Clock,
    metrics: &Metrics,
    redactor: &Redactor,
    watch: &FileWatch,
) -> Option<Event> {
    match decode::decode(bytes) {
        Ok(mut d) => {
            // Before the tree stores argv: no later stage ever sees the secret.
            redactor.redact(&mut d.args);
            let time = clock.wall(d.header.ktime_ns);
            let mut ev = tree.enrich(d, time);
            if !watch.resolve_and_match(&mut ev, tree.procfs()) {
                metrics.file_events_filtered.inc();
                return None;
            }
            Some(ev)
        }
        Err(e) => {
            metrics
                .decode_errors
                .get_or_create(&DecodeLabels {
                    kind: e.kind_label(),
                    reason: e.reason(),
                })
                .inc();
            metrics.lost(Stage::decode).inc();
            tracing::debug!(error = %e, "undecodable record");
            None
        }
    }
}

pub async fn run(args: RunArgs, events_to_stdout: bool) -> anyhow::Result<()> {
    let config = effective_config(&args, events_to_stdout)?;

    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    registry.register_collector(Box::new(ProcessCollector));

    let watch = FileWatch::new(&config.sensor.watch_list())
        .map_err(|e| anyhow::anyhow!("sensor.file_watch: {e}"))?;
    let mut sensor = Sensor::load(&SensorOptions {
        ring_buffer_bytes: config.sensor.ring_buffer_bytes,
        wakeup_bytes: config.sensor.wakeup_bytes,
        watch: watch.kernel_list(),
        btf_path: &args.btf,
    })?;
    sensor.report(&metrics);
    let probes = Arc::new(sensor.status.clone());
    let ring = sensor.ring.take().context("ring buffer already taken")?;
    let sensor = Arc::new(Mutex::new(sensor));

    let mut tree = ProcessTree::new(config.sensor.process_tree_max, config.sensor.procfs.clone());
    tree.seed();
    metrics.process_tree_processes.set(tree.len() as i64);
    tracing::info!(processes = tree.len(), "process tree seeded from procfs");

    let mut engine = Engine::new(&config.detect, metrics.clone())?;
    let detect_shared = engine.shared();
    let mut sinks = Sinks::new(&config.sinks, &metrics)?;

    let ready = Arc::new(AtomicBool::new(true));
    let (tx, mut rx) = mpsc::channel::<Arc<Event>>(config.sensor.pipeline_queue);
    let (stop_tx, mut stop_rx) = watch::channel(false);

    // HTTP.
    let queue_cap = config.sensor.pipeline_queue;
    let qtx = tx.clone();
    let qmetrics = metrics.clone();
    let state = AppState {
        registry: Arc::new(registry),
        metrics: metrics.clone(),
        sensor: Some(sensor.clone()),
        probes,
        ready: ready.clone(),
        telemetry_path: args.telemetry_path.clone(),
        detect: Some(detect_shared.clone()),
        before_scrape: Arc::new(move || {
            qmetrics
                .pipeline_queue_length
                .set((queue_cap - qtx.capacity()) as i64);
            let t = detect_shared
                .threat
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .score(SystemTime::now());
            qmetrics.threat_level.set(t);
        }),
    };
    let server_task = match server::bind(&args.listen_address).await? {
        Some(listener) => {
            tracing::info!(address = %listener.local_addr()?, path = %args.telemetry_path, "serving metrics");
            let app = server::router(state);
            let mut stop = stop_rx.clone();
            Some(tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop.changed().await;
                    })
                    .await;
            }))
        }
        None => None,
    };

    // Probes are attached and the listener is bound: tell systemd (Type=notify; a no-op elsewhere).
    crate::service::notify_ready();

    // Sensor: ring buffer → decode → enrich → queue.
    let clock = Clock::now();
    let redactor = Redactor::new(&config.sinks.redaction, &metrics)?;
    let poll_interval = config.sensor.poll_interval;
    let sensor_metrics = metrics.clone();
    let sensor_task = tokio::spawn(async move {
        // SAFETY: the RingBuf owns its map fd and is moved into the AsyncFd, so the fd stays open for as
        // long as it is registered.
        let mut fd = match unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) } {
            Ok(fd) => fd,
            Err(e) => {
                tracing::error!(error = %e, "cannot poll the ring buffer");
                return;
            }
        };
        let lost = sensor_metrics.lost(Stage::pipeline);
        let mut evictions_seen = 0;
        let mut tick = tokio::time::interval(poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut drain = |ring: &mut aya::maps::RingBuf<aya::maps::MapData>,
                         tree: &mut ProcessTree| {
            while let Some(item) = ring.next() {
                if let Some(ev) = ingest(&item, tree, &clock, &sensor_metrics, &redactor, &watch) {
                    if tx.try_send(Arc::new(ev)).is_err() {
                        lost.inc();
                    }
                }
            }
            sensor_metrics.process_tree_processes.set(tree.len() as i64);
            let ev = tree.evictions();
            sensor_metrics
                .process_tree_evictions
                .inc_by(ev - evictions_seen);
            evictions_seen = ev;
        };
        loop {
            tokio::select! {
                _ = stop_rx.changed() => break,
                _ = tick.tick() => drain(fd.get_mut(), &mut tree),
                guard = fd.readable_mut() => {
                    let Ok(mut guard) = guard else { break };
                    drain(guard.get_inner_mut(), &mut tree);
                    guard.clear_ready();
                }
            }
        }
        // Drain what is left so shutdown loses nothing already in the ring.
        drain(fd.get_mut(), &mut tree);
    });

    // Detection and sinks.
    let detect_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                ev = rx.recv() => {
                    let Some(ev) = ev else { break };
                    sinks.event(&ev);
                    for finding in engine.process(&ev) {
                        sinks.finding(&finding);
                    }
                }
                _ = tick.tick() => engine.tick(SystemTime::now()),
            }
        }
        if let Err(e) = engine.persist() {
            tracing::error!(error = %e, "could not persist the baseline at shutdown");
        }
        sinks.shutdown();
    });

    shutdown_signal().await;
    tracing::info!("shutting down: detaching probes, draining queues");
    crate::service::notify_stopping();
    let _ = stop_tx.send(true);
    let _ = sensor_task.await; // drops the sender held by the sensor task
    drop(sensor); // detaches the probes
    let _ = tokio::time::timeout(Duration::from_secs(10), detect_task).await;
    if let Some(t) = server_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    ready.store(false, Ordering::Relaxed);
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
