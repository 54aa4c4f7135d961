//! OTLP logs: every finding (and events by level) as an OpenTelemetry log record, exported by the
//! official `opentelemetry-otlp` exporter over gRPC or HTTP/protobuf.
//!
//! The pipeline never waits for the collector: records go into our own bounded queue (full → dropped and
//! counted), and one thread batches them into the exporter (which retries transient errors with backoff).
//! Results are counted per record: `tripline_otlp_records_total{signal="logs",result=exported|dropped|failed}`.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::{InstrumentationScope, Key, KeyValue};
use opentelemetry_otlp::{LogExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::logs::{LogBatch, LogExporter as _, SdkLogRecord, SdkLoggerProvider};
use opentelemetry_sdk::Resource;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use serde::Deserialize;

use super::EventLevel;
use crate::model::record::{Record, Value, View};
use crate::telemetry::metrics::{Metrics, OtlpLabels, OtlpResult, OtlpSignal};

#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    Deserialize,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    schemars::JsonSchema,
)]
pub enum OtlpProtocol {
    #[default]
    #[serde(rename = "grpc")]
    #[value(name = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpTls {
    /// PEM CA bundle to verify the collector (gRPC).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key for mutual TLS (gRPC).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// `sinks.otlp` in the configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Collector URL, e.g. `http://collector:4317` (gRPC) or `http://collector:4318/v1/logs`. Unset:
    /// OTLP is off unless `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` is set.
    pub endpoint: Option<String>,
    /// `grpc` or `http/protobuf`; unset: `OTEL_EXPORTER_OTLP_PROTOCOL`, else grpc.
    pub protocol: Option<OtlpProtocol>,
    /// Which events to send besides findings.
    pub events: EventLevel,
    /// Extra headers (authentication tokens). Merged with `OTEL_EXPORTER_OTLP_HEADERS`.
    pub headers: BTreeMap<String, String>,
    /// gzip the payload.
    pub gzip: bool,
    pub tls: OtlpTls,
    /// Per-export timeout.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Records waiting for export; beyond it records are dropped and counted.
    pub queue: usize,
    /// Records per export request.
    pub batch: usize,
    /// Longest wait before a partial batch is sent.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub flush_interval: Duration,
    /// How long shutdown may spend flushing.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub shutdown_timeout: Duration,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            endpoint: None,
            protocol: None,
            events: EventLevel::None,
            headers: BTreeMap::new(),
            gzip: true,
            tls: OtlpTls::default(),
            timeout: Duration::from_secs(10),
            queue: 8192,
            batch: 512,
            flush_interval: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

impl OtlpConfig {
    /// On when an endpoint is configured here or in the standard environment variables.
    pub fn enabled(&self) -> bool {
        self.endpoint.is_some()
            || std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || std::env::var_os("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT").is_some()
    }

    pub fn validate(&self) -> Result<(), (String, String)> {
        if let Some(e) = &self.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err((
                    "sinks.otlp.endpoint".into(),
                    format!("{e:?}: use http://host:port or https://host:port"),
                ));
            }
        }
        if self.queue == 0 || self.batch == 0 || self.batch > self.queue {
            return Err((
                "sinks.otlp.batch".into(),
                format!(
                    "batch {} and queue {}: need 1 <= batch <= queue",
                    self.batch, self.queue
                ),
            ));
        }
        for k in self.headers.keys() {
            if axum::http::HeaderName::from_bytes(k.as_bytes()).is_err() {
                return Err((
                    "sinks.otlp.headers".into(),
                    format!("{k:?} is not a valid header name"),
                ));
            }
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return Err((
                "sinks.otlp.tls".into(),
                "cert_file and key_file go together".into(),
            ));
        }
        Ok(())
    }

    fn protocol(&self) -> OtlpProtocol {
        self.protocol.unwrap_or_else(|| {
            match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
                Ok("http/protobuf") => OtlpProtocol::HttpProtobuf,
                _ => OtlpProtocol::Grpc,
            }
        })
    }
}

pub struct OtlpSink {
    tx: Option<SyncSender<Record<'static>>>,
    thread: Option<JoinHandle<()>>,
    pub events: EventLevel,
    dropped: Counter,
    queue_len: Gauge,
    shutdown_timeout: Duration,
}

struct Counters {
    exported: Counter,
    failed: Counter,
    queue_len: Gauge,
}

fn build_exporter(cfg: &OtlpConfig) -> anyhow::Result<LogExporter> {
    let exporter = match cfg.protocol() {
        OtlpProtocol::Grpc => {
            let mut b = LogExporter::builder()
                .with_tonic()
                .with_timeout(cfg.timeout);
            if let Some(e) = &cfg.endpoint {
                b = b.with_endpoint(e.clone());
            }
            if cfg.gzip {
                b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
            }
            if !cfg.headers.is_empty() {
                let mut h = axum::http::HeaderMap::new();
                for (k, v) in &cfg.headers {
                    h.insert(
                        axum::http::HeaderName::from_bytes(k.as_bytes())?,
                        v.parse()?,
                    );
                }
                b = b.with_metadata(
                    opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(h),
                );
            }
            if cfg.tls.ca_file.is_some() || cfg.tls.cert_file.is_some() {
                use opentelemetry_otlp::tonic_types::transport::{
                    Certificate, ClientTlsConfig, Identity,
                };
                let mut tls = ClientTlsConfig::new();
                if let Some(ca) = &cfg.tls.ca_file {
                    tls = tls.ca_certificate(Certificate::from_pem(std::fs::read(ca)?));
                }
                if let (Some(c), Some(k)) = (&cfg.tls.cert_file, &cfg.tls.key_file) {
                    tls = tls.identity(Identity::from_pem(std::fs::read(c)?, std::fs::read(k)?));
                }
                b = b.with_tls_config(tls);
            }
            b.build()?
        }
        OtlpProtocol::HttpProtobuf => {
            let mut b = LogExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(cfg.timeout);
            if let Some(e) = &cfg.endpoint {
                b = b.with_endpoint(e.clone());
            }
            if cfg.gzip {
                b = b.with_compression(opentelemetry_otlp::Compression::Gzip);
            }
            if !cfg.headers.is_empty() {
                b = b.with_headers(cfg.headers.clone().into_iter().collect());
            }
            b.build()?
        }
    };
    Ok(exporter)
}

/// service.name=tripline (unless OTEL_SERVICE_NAME says otherwise), version, host, OS; plus
/// OTEL_RESOURCE_ATTRIBUTES (read by the SDK's resource builder).
pub fn resource() -> Resource {
    let mut attrs = vec![
        KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        KeyValue::new("os.type", "linux"),
    ];
    if let Ok(h) = nix::unistd::gethostname() {
        attrs.push(KeyValue::new("host.name", h.to_string_lossy().into_owned()));
    }
    if let Ok(id) = std::fs::read_to_string("/etc/machine-id") {
        attrs.push(KeyValue::new("host.id", id.trim().to_string()));
    }
    if let Ok(u) = nix::sys::utsname::uname() {
        let release = u.release().to_string_lossy().into_owned();
        attrs.push(KeyValue::new("os.version", release.clone()));
        attrs.push(KeyValue::new(
            "os.description",
            format!("{} {release}", u.sysname().to_string_lossy()),
        ));
        attrs.push(KeyValue::new(
            "host.arch",
            u.machine().to_string_lossy().into_owned(),
        ));
    }
    let mut b = Resource::builder().with_attributes(attrs);
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        b = b.with_service_name("tripline");
    }
    b.build()
}

fn any_value(v: &Value<'_>) -> AnyValue {
    match v {
        // Shared strings go to OpenTelemetry without a copy.
        Value::Text(t) => AnyValue::String(t.shared().into()),
        v => match v.view() {
            View::Str(s) => AnyValue::String(s.to_string().into()),
            View::Time(t) => AnyValue::String(crate::model::record::rfc3339(t).into()),
            View::Int(i) => AnyValue::Int(i),
            View::Bool(b) => AnyValue::Boolean(b),
            View::Strs(a) => AnyValue::ListAny(Box::new(
                a.iter()
                    .map(|s| AnyValue::String(s.to_string().into()))
                    .collect(),
            )),
        },
    }
}

fn severity(n: i32) -> Severity {
    match n {
        21.. => Severity::Fatal,
        17..=20 => Severity::Error,
        13..=16 => Severity::Warn,
        _ => Severity::Info,
    }
}

/// The identical schema as JSON lines, as an OTLP log record.
pub fn to_log_record(
    provider_logger: &opentelemetry_sdk::logs::SdkLogger,
    r: &Record<'_>,
) -> SdkLogRecord {
    let mut lr = provider_logger.create_log_record();
    lr.set_event_name(r.event_name);
    lr.set_timestamp(r.time);
    lr.set_observed_timestamp(SystemTime::now());
    lr.set_severity_number(severity(r.severity_number));
    lr.set_severity_text(r.severity_text);
    lr.set_body(AnyValue::String(r.body.clone().into()));
    for (k, v) in &r.attributes {
        lr.add_attribute(Key::from_static_str(k), any_value(v));
    }
    lr
}

impl OtlpSink {
    pub fn start(cfg: &OtlpConfig, metrics: &Metrics) -> anyhow::Result<OtlpSink> {
        let mut exporter = build_exporter(cfg)?;
        exporter.set_resource(&resource());
        let (tx, rx) = sync_channel::<Record<'static>>(cfg.queue);
        let label = |result| {
            metrics
                .otlp_records
                .get_or_create(&OtlpLabels {
                    signal: OtlpSignal::logs,
                    result,
                })
                .clone()
        };
        let counters = Counters {
            exported: label(OtlpResult::exported),
            failed: label(OtlpResult::failed),
            queue_len: metrics.otlp_queue_length.clone(),
        };
        let protocol = cfg.protocol();
        let (batch, flush) = (cfg.batch, cfg.flush_interval);
        tracing::info!(
            endpoint = cfg.endpoint.as_deref().unwrap_or("from OTEL_EXPORTER_OTLP_*"),
            protocol = %crate::logging::value_name(&protocol),
            events = %crate::logging::value_name(&cfg.events),
            "OTLP log export on"
        );
        let thread = std::thread::Builder::new()
            .name("otlp".into())
            .spawn(move || {
                // gRPC (tonic) needs a tokio runtime; the blocking HTTP client must not run inside one.
                let rt = match protocol {
                    OtlpProtocol::Grpc => tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok(),
                    OtlpProtocol::HttpProtobuf => None,
                };
                export_loop(rx, exporter, counters, batch, flush, rt);
            })?;
        Ok(OtlpSink {
            tx: Some(tx),
            thread: Some(thread),
            events: cfg.events,
            dropped: label(OtlpResult::dropped),
            queue_len: metrics.otlp_queue_length.clone(),
            shutdown_timeout: cfg.shutdown_timeout,
        })
    }

    /// Queues a record (made owned: it outlives the event it was rendered from); never blocks. A full
    /// queue drops the record and counts it.
    pub fn send(&self, r: Record<'_>) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(r.into_owned()) {
            Ok(()) => {
                self.queue_len.inc();
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.inc();
            }
        }
    }

    /// Flushes what is queued, waiting at most `shutdown_timeout`.
    pub fn shutdown(mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + self.shutdown_timeout;
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                tracing::warn!(
                    "OTLP flush did not finish within the shutdown timeout; the rest is dropped"
                );
            }
        }
    }
}

fn export_loop(
    rx: Receiver<Record<'static>>,
    exporter: LogExporter,
    c: Counters,
    batch: usize,
    flush: Duration,
    rt: Option<tokio::runtime::Runtime>,
) {
    let provider = SdkLoggerProvider::builder().build();
    let logger = provider.logger("tripline");
    let scope = InstrumentationScope::builder("tripline")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let mut pending: Vec<SdkLogRecord> = Vec::with_capacity(batch);
    let mut closed = false;
    while !closed {
        let deadline = Instant::now() + flush;
        while pending.len() < batch {
            let wait = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(r) => {
                    c.queue_len.dec();
                    pending.push(to_log_record(&logger, &r));
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if pending.is_empty() {
            continue;
        }
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            pending.iter().map(|r| (r, &scope)).collect();
        let fut = exporter.export(LogBatch::new(&refs));
        let result = match &rt {
            Some(rt) => rt.block_on(fut),
            None => futures_executor::block_on(fut),
        };
        let n = pending.len() as u64;
        match result {
            Ok(()) => {
                c.exported.inc_by(n);
            }
            Err(e) => {
                c.failed.inc_by(n);
                tracing::warn!(error = %e, records = n, "OTLP export failed");
            }
        }
        pending.clear();
    }
    let _ = provider.shutdown();
}
