//! The composition root: builds the stages, joins them and waits for shutdown.
//!
//! probes (ring-buffer reader task) → enrich::Ingest (decode, redact, enrich; same task) → bounded queue
//! (drops counted as `tripline_events_lost_total{stage="pipeline"}`) → detect (its own task) → sinks.
//! The HTTP server reads the registry (with each stage's collector) and detection's shared state.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};

use crate::cli::RunArgs;
use crate::config::Config;
use crate::detect::{self, Engine};
use crate::enrich::filewatch::FileWatch;
use crate::enrich::ingest::Ingest;
use crate::enrich::redact::Redactor;
use crate::enrich::ProcessTree;
use crate::model::Event;
use crate::probes::{self, Sensor, SensorCollector, SensorOptions};
use crate::server::{self, AppState};
use crate::sinks::Sinks;
use crate::telemetry::metrics::{Metrics, Stage};
use crate::telemetry::process::ProcessCollector;

pub async fn run(args: RunArgs, events_to_stdout: bool) -> anyhow::Result<()> {
    let config = Config::from_args(&args, events_to_stdout)?;

    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    registry.register_collector(Box::new(ProcessCollector));

    let (sensor, ring, probes, watch) = start_sensor(&config, &args, &metrics, &mut registry)?;

    // Enrich.
    let mut tree = ProcessTree::new(config.sensor.process_tree_max, config.sensor.procfs.clone());
    tree.seed();
    tracing::info!(processes = tree.len(), "process tree seeded from procfs");
    let redactor = Redactor::new(&config.sinks.redaction, &metrics)?;
    let mut ingest = Ingest::new(tree, redactor, watch, metrics.clone());
    ingest.update_gauges();
    release_startup_memory();

    // Detect and sinks.
    let engine = Engine::new(&config.detect, metrics.clone())?;
    let detect_shared = engine.shared();
    let mut sinks = Sinks::new(&config.sinks, &metrics)?;

    let ready = Arc::new(AtomicBool::new(true));
    let (tx, rx) = mpsc::channel::<Arc<Event>>(config.sensor.pipeline_queue);
    let (stop_tx, stop_rx) = watch::channel(false);

    let server_task = server::spawn(
        &args.listen_address,
        AppState {
            registry: Arc::new(registry),
            probes,
            ready: ready.clone(),
            telemetry_path: args.telemetry_path.clone(),
            detect: Some(detect_shared),
        },
        stop_rx.clone(),
    )
    .await?;

    let lost = metrics.lost(Stage::pipeline);
    let queue_len = metrics.pipeline_queue_length.clone();
    let queue_tx = tx.clone();
    let sensor_task = tokio::spawn(probes::reader::run(
        ring,
        config.sensor.poll_interval,
        stop_rx,
        move |bytes| {
            if let Some(ev) = ingest.record(bytes) {
                if tx.try_send(Arc::new(ev)).is_err() {
                    lost.inc();
                }
            }
        },
        move || {
            queue_len.set((queue_tx.max_capacity() - queue_tx.capacity()) as i64);
        },
    ));
    let detect_task = tokio::spawn(async move {
        detect::run(engine, rx, &mut sinks).await;
        sinks.shutdown();
    });

    shutdown_signal().await?;
    tracing::info!("shutting down: detaching probes, draining queues");
    let _ = stop_tx.send(true);
    let _ = sensor_task.await; // drops the queue's senders, which ends the detection loop
                               // Detaches the probes (in parallel: each detach waits for an RCU grace period in the kernel).
    drop(sensor);
    let _ = tokio::time::timeout(Duration::from_secs(10), detect_task).await;
    if let Some(t) = server_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    ready.store(false, Ordering::Relaxed);
    tracing::info!("stopped");
    Ok(())
}

/// Loads and attaches the probes and registers their scrape-time collector.
#[allow(clippy::type_complexity)]
fn start_sensor(
    config: &Config,
    args: &RunArgs,
    metrics: &Metrics,
    registry: &mut Registry,
) -> anyhow::Result<(
    Arc<Mutex<Sensor>>,
    aya::maps::RingBuf<aya::maps::MapData>,
    Arc<Vec<probes::ProbeStatus>>,
    FileWatch,
)> {
    let watch = FileWatch::new(&config.sensor.watch_list())
        .map_err(|e| anyhow::anyhow!("sensor.file_watch: {e}"))?;
    let mut sensor = Sensor::load(&SensorOptions {
        ring_buffer_bytes: config.sensor.ring_buffer_bytes,
        wakeup_bytes: config.sensor.wakeup_bytes,
        watch: watch.kernel_list(),
        btf_path: &args.btf,
    })?;
    sensor.report(metrics);
    let probes = Arc::new(sensor.status.clone());
    let ring = sensor.ring.take().context("ring buffer already taken")?;
    let sensor = Arc::new(Mutex::new(sensor));
    registry
        .sub_registry_with_prefix("tripline")
        .register_collector(Box::new(SensorCollector::new(
            sensor.clone(),
            metrics.clone(),
        )));
    Ok((sensor, ring, probes, watch))
}

/// Loading the probes parses the kernel's BTF (megabytes of short-lived allocations); glibc keeps the
/// freed heap mapped. Hand it back once, after start-up, so the idle RSS is what tripline holds.
fn release_startup_memory() {
    // SAFETY: malloc_trim has no preconditions; it only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    Ok(())
}
