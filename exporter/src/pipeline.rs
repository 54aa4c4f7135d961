//! The composition root: builds the stages, joins them and waits for shutdown.
//!
//! probes (ring-buffer reader task) → enrich::Ingest (decode, redact, enrich; same task) → bounded queue
//! (drops counted as `tripline_events_lost_total{stage="pipeline"}`) → detect (its own task) → sinks.
//! The HTTP server reads the registry (with each stage's collector) and detection's shared state.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

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
use crate::server::AppState;
use crate::sinks::Sinks;
use crate::telemetry::metrics::{Metrics, Stage};
use crate::telemetry::process::ProcessCollector;

pub async fn run(args: RunArgs, events_to_stdout: bool) -> anyhow::Result<()> {
    let signals = install_signals()?;
    // The same validation `check-config` runs; a corrupt baseline is moved aside here.
    let checked = crate::preflight::check(
        &args,
        events_to_stdout,
        crate::preflight::OnCorruptBaseline::MoveAside,
    )?;
    let config: Config = checked.config;

    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    registry.register_collector(Box::new(ProcessCollector));
    let web_metrics = crate::web::WebMetrics::new(&mut registry);
    let tamper_metrics = crate::tamper::TamperMetrics::new(&mut registry);
    // Tamper evidence (unclean previous end, rewritten counters, changed programs) → detection.
    let (tamper_tx, tamper_rx) = mpsc::channel::<crate::tamper::Tamper>(256);
    let marker = start_marker(&checked.state_directory, &tamper_tx)?;

    let watch = checked.watch;
    let (sensor, ring, probes) = start_sensor(&config, &args, &watch, &metrics, &mut registry)?;
    let ingest = build_ingest(&config, &metrics, watch)?;
    let engine = Engine::new(&config.detect, metrics.clone())?;
    let detect_shared = engine.shared();
    release_startup_memory();

    let ready = Arc::new(AtomicBool::new(true));
    let (tx, rx) = mpsc::channel::<Arc<Event>>(config.sensor.pipeline_queue);
    let (stop_tx, stop_rx) = watch::channel(false);
    let server_tasks = crate::web::spawn_servers(
        &args,
        AppState {
            registry: Arc::new(registry),
            probes,
            ready: ready.clone(),
            telemetry_path: args.telemetry_path.clone(),
            detect: Some(detect_shared),
        },
        checked.web,
        web_metrics,
        &stop_rx,
    )
    .await?;
    // Probes are attached and the listener is bound: tell systemd (Type=notify; a no-op elsewhere).
    crate::service::notify_ready();
    drop_privileges(args.keep_privileges).await?;

    // The sinks start their threads after the drop, so those threads hold no capability either.
    let mut sinks = Sinks::new(&config.sinks, &metrics)?;
    let tamper_task = spawn_tamper_checks(
        sensor.clone(),
        metrics.clone(),
        tamper_metrics.clone(),
        tamper_tx,
        marker,
        args.tamper_check_interval,
        stop_rx.clone(),
    );
    let sensor_task = spawn_reader(
        ring,
        ingest,
        tx,
        &metrics,
        &tamper_metrics,
        config.sensor.poll_interval,
        stop_rx,
    );
    let detect_task = tokio::spawn(async move {
        detect::run(engine, rx, &mut sinks, tamper_rx, tamper_metrics).await;
        sinks.shutdown();
    });

    shutdown_signal(signals).await;
    tracing::info!("shutting down: detaching probes, draining queues");
    crate::service::notify_stopping();
    let _ = stop_tx.send(true);
    let _ = sensor_task.await; // drops the queue's senders, which ends the detection loop
    let marker = tamper_task.await.ok().flatten();
    // Detaches the probes (in parallel: each detach waits for an RCU grace period in the kernel).
    drop(sensor);
    let _ = tokio::time::timeout(Duration::from_secs(10), detect_task).await;
    for t in server_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    ready.store(false, Ordering::Relaxed);
    // Last: a clean stop is not reported as tamper at the next start.
    if let Some(m) = marker {
        if let Err(e) = m.stopped(SystemTime::now()) {
            tracing::warn!(error = %e, "could not mark the clean stop");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// The clean-shutdown marker in the state directory; an unclean end of the previous run is sent to
/// detection as tamper evidence.
fn start_marker(
    state_directory: &std::path::Path,
    tamper_tx: &mpsc::Sender<crate::tamper::Tamper>,
) -> anyhow::Result<Option<crate::tamper::marker::Marker>> {
    let (marker, unclean) =
        crate::tamper::marker::Marker::start(state_directory, SystemTime::now())?;
    if let Some(unclean) = unclean {
        tracing::warn!(detail = %unclean.detail, "the previous run ended uncleanly");
        let _ = tamper_tx.try_send(unclean);
    }
    Ok(marker)
}

/// The enrichment stage: the process tree seeded from procfs (argv redacted like the events'), the
/// redactor and the file watch.
fn build_ingest(config: &Config, metrics: &Metrics, watch: FileWatch) -> anyhow::Result<Ingest> {
    let mut tree = ProcessTree::new(config.sensor.process_tree_max, config.sensor.procfs.clone());
    // argv read from procfs (processes older than tripline: parents, ancestors) is redacted too.
    let tree_redactor = Redactor::new(&config.sinks.redaction, metrics)?;
    tree.set_args_filter(Arc::new(move |args: &mut [String]| {
        tree_redactor.redact(args);
    }));
    tree.seed();
    tracing::info!(processes = tree.len(), "process tree seeded from procfs");
    let redactor = Redactor::new(&config.sinks.redaction, metrics)?;
    let mut ingest = Ingest::new(tree, redactor, watch, metrics.clone());
    ingest.update_gauges();
    Ok(ingest)
}

/// Probes attached, procfs seeded, sockets bound: nothing left needs a capability but CAP_SYS_PTRACE
/// (docs/configuration.md#privileges).
async fn drop_privileges(keep: bool) -> anyhow::Result<()> {
    if keep {
        tracing::warn!("--no-privileges.drop: keeping every capability");
        return Ok(());
    }
    crate::privilege::drop_all()
        .await
        .map_err(|e| anyhow::anyhow!("dropping capabilities failed: {e}"))?;
    let left = crate::privilege::threads_with_capabilities();
    if left.is_empty() {
        tracing::info!(
            "dropped every capability but CAP_SYS_PTRACE on every thread (no_new_privs set)"
        );
    } else {
        tracing::warn!(threads = ?left, "some threads still hold capabilities");
    }
    Ok(())
}

/// The ring-buffer reader task: each record through `Ingest` into the bounded detection queue (a full
/// queue is a counted pipeline loss); the queue-length gauge after each drain.
fn spawn_reader(
    ring: aya::maps::RingBuf<aya::maps::MapData>,
    mut ingest: Ingest,
    tx: mpsc::Sender<Arc<Event>>,
    metrics: &Metrics,
    tamper_metrics: &crate::tamper::TamperMetrics,
    poll_interval: Duration,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let lost = metrics.lost(Stage::pipeline);
    let queue_len = metrics.pipeline_queue_length.clone();
    let queue_tx = tx.clone();
    let last_event = tamper_metrics.last_event.clone();
    tokio::spawn(probes::reader::run(
        ring,
        poll_interval,
        stop,
        move |bytes| {
            last_event.set(crate::tamper::unix_now());
            if let Some(ev) = ingest.record(bytes) {
                if tx.try_send(Arc::new(ev)).is_err() {
                    lost.inc();
                }
            }
        },
        move || {
            queue_len.set((queue_tx.max_capacity() - queue_tx.capacity()) as i64);
        },
    ))
}

/// Loads and attaches the probes and registers their scrape-time collector.
#[allow(clippy::type_complexity)]
fn start_sensor(
    config: &Config,
    args: &RunArgs,
    watch: &FileWatch,
    metrics: &Metrics,
    registry: &mut Registry,
) -> anyhow::Result<(
    Arc<Mutex<Sensor>>,
    aya::maps::RingBuf<aya::maps::MapData>,
    Arc<Vec<probes::ProbeStatus>>,
)> {
    let mut sensor = Sensor::load(&SensorOptions {
        ring_buffer_bytes: config.sensor.ring_buffer_bytes,
        wakeup_bytes: config.sensor.wakeup_bytes,
        watch: watch.kernel_list(),
        btf_path: &args.btf,
        syscall_hooks: config.sensor.syscall_hooks,
    })?;
    sensor.report(metrics);
    let watched = config.sensor.watch_list();
    let n = sensor.set_inodes(&probes::inodes::build(&watched));
    tracing::info!(entries = n, "watched/sensitive inode map loaded");
    let probes = Arc::new(sensor.status.clone());
    let ring = sensor.ring.take().context("ring buffer already taken")?;
    let sensor = Arc::new(Mutex::new(sensor));
    spawn_inode_refresh(Arc::downgrade(&sensor), watched);
    registry
        .sub_registry_with_prefix("tripline")
        .register_collector(Box::new(SensorCollector::new(
            sensor.clone(),
            metrics.clone(),
        )));
    Ok((sensor, ring, probes))
}

/// Rebuilds the kernel's inode map every `probes::inodes::REFRESH` until the sensor is dropped.
fn spawn_inode_refresh(sensor: std::sync::Weak<Mutex<Sensor>>, watched: Vec<String>) {
    let _ = std::thread::Builder::new()
        .name("inode-refresh".into())
        .spawn(move || loop {
            // Threads started after the capability drop must not keep what the loader needed.
            if let Err(e) = crate::privilege::drop_this_thread() {
                tracing::warn!(error = %e, "inode refresh: could not drop capabilities; not refreshing");
                return;
            }
            std::thread::sleep(probes::inodes::REFRESH);
            let table = probes::inodes::build(&watched);
            let Some(sensor) = sensor.upgrade() else {
                return;
            };
            if let Ok(mut s) = sensor.lock() {
                s.add_inodes(&table);
            };
        });
}

/// Loading the probes parses the kernel's BTF (megabytes of short-lived allocations); glibc keeps the
/// freed heap mapped. Hand it back once, after start-up, so the idle RSS is what tripline holds.
fn release_startup_memory() {
    // SAFETY: malloc_trim has no preconditions; it only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Tamper checks: kernel counters read as monotonic, our own programs verified, the state marker's
/// heartbeat. Each new piece of evidence is sent to detection once. Returns the marker at stop.
fn spawn_tamper_checks(
    sensor: Arc<Mutex<Sensor>>,
    metrics: Metrics,
    tm: crate::tamper::TamperMetrics,
    tx: mpsc::Sender<crate::tamper::Tamper>,
    marker: Option<crate::tamper::marker::Marker>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Option<crate::tamper::marker::Marker>> {
    tokio::spawn(async move {
        let mut seen = std::collections::HashSet::new();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = tick.tick() => {}
            }
            if let Some(m) = &marker {
                if let Err(e) = m.heartbeat(SystemTime::now()) {
                    tracing::warn!(error = %e, "state marker heartbeat failed");
                }
            }
            let found = {
                let mut s = sensor.lock().unwrap_or_else(|e| e.into_inner());
                s.sync_counters(&metrics);
                let mut found = s.take_tamper();
                found.extend(s.verify_integrity());
                found
            };
            tm.last_check.set(crate::tamper::unix_now());
            for t in found {
                if seen.len() < 4096 && seen.insert((t.reason, t.detail.clone())) {
                    tracing::error!(reason = t.reason.as_str(), detail = %t.detail, "tamper detected");
                    // Bounded (256): a full queue loses the finding, counted as a pipeline loss (the
                    // evidence itself is already in tripline_tamper_detected_total).
                    if tx.try_send(t).is_err() {
                        metrics.lost(Stage::pipeline).inc();
                    }
                }
            }
        }
        marker
    })
}

type Signals = (tokio::signal::unix::Signal, tokio::signal::unix::Signal);

/// SIGTERM/SIGINT handlers, installed first thing: a stop that arrives while the stages start (the
/// listener already answers /readyz) is still a clean stop, not the default "killed by SIGTERM".
fn install_signals() -> anyhow::Result<Signals> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok((term, int))
}

async fn shutdown_signal((mut term, mut int): Signals) {
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
        _ = crate::sinks::jsonl::STDOUT_CLOSED.notified() => {},
    }
}
