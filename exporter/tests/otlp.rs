//! OTLP logs end to end: the real exporter with the kernel sensor sends to in-process receivers built
//! from the official opentelemetry-proto definitions (a tonic gRPC LogsService and an HTTP/protobuf
//! `POST /v1/logs`), and to collectors that are down or slow.
mod common;

use std::io::Read;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Exporter;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as PV;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;

type Store = Arc<Mutex<Vec<ExportLogsServiceRequest>>>;

#[derive(Clone)]
struct Receiver {
    store: Store,
    delay: Duration,
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        tokio::time::sleep(self.delay).await;
        self.store.lock().unwrap().push(req.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

/// A gRPC receiver on `port` (0 = any) in its own runtime thread; returns its port.
fn grpc_receiver(port: u16, store: Store, delay: Duration) -> (u16, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let svc = LogsServiceServer::new(Receiver { store, delay })
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    rt.spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await;
    });
    (port, rt)
}

/// A minimal HTTP/1.1 OTLP/HTTP protobuf receiver (`POST /v1/logs`, optionally gzip).
fn http_receiver(store: Store) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { break };
            let store = store.clone();
            std::thread::spawn(move || loop {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read(&mut b).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                s.read_exact(&mut body).unwrap();
                if head.contains("content-encoding: gzip") {
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(&body[..])
                        .read_to_end(&mut out)
                        .unwrap();
                    body = out;
                }
                assert!(
                    head.starts_with("post /v1/logs"),
                    "unexpected request: {head}"
                );
                assert!(
                    head.contains("content-type: application/x-protobuf"),
                    "{head}"
                );
                store
                    .lock()
                    .unwrap()
                    .push(ExportLogsServiceRequest::decode(&body[..]).unwrap());
                let resp = ExportLogsServiceResponse {
                    partial_success: None,
                }
                .encode_to_vec();
                let msg = format!("HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n", resp.len());
                use std::io::Write;
                if s.write_all(msg.as_bytes())
                    .and_then(|_| s.write_all(&resp))
                    .is_err()
                {
                    return;
                }
            });
        }
    });
    port
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a PV> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn records(store: &Store) -> Vec<(Vec<KeyValue>, LogRecord)> {
    let mut out = Vec::new();
    for req in store.lock().unwrap().iter() {
        for rl in &req.resource_logs {
            let res = rl
                .resource
                .as_ref()
                .map(|r| r.attributes.clone())
                .unwrap_or_default();
            for sl in &rl.scope_logs {
                for r in &sl.log_records {
                    out.push((res.clone(), r.clone()));
                }
            }
        }
    }
    out
}

fn wait_record(
    store: &Store,
    what: &str,
    pred: impl Fn(&LogRecord) -> bool,
) -> (Vec<KeyValue>, LogRecord) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(r) = records(store).into_iter().find(|(_, r)| pred(r)) {
            return r;
        }
        assert!(Instant::now() < deadline, "no OTLP record for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_secret_exec() -> i64 {
    let mut c = Command::new("/bin/echo")
        .args(["--password=hunter2", "x"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = i64::from(c.id());
    c.wait().unwrap();
    pid
}

fn assert_exec_record(store: &Store, pid: i64) {
    let (res, r) = wait_record(store, "exec of echo", |r| {
        r.event_name == "tripline.process.exec"
            && matches!(attr(&r.attributes, "process.pid"), Some(PV::IntValue(p)) if *p == pid)
    });
    assert_eq!(
        attr(&res, "service.name"),
        Some(&PV::StringValue("tripline".into()))
    );
    assert!(matches!(attr(&res, "service.version"), Some(PV::StringValue(v)) if !v.is_empty()));
    assert!(matches!(attr(&res, "host.name"), Some(PV::StringValue(_))));
    assert_eq!(
        attr(&res, "os.type"),
        Some(&PV::StringValue("linux".into()))
    );
    assert_eq!(r.severity_number, 9);
    assert_eq!(r.severity_text, "INFO");
    assert!(r.time_unix_nano > 0 && r.observed_time_unix_nano >= r.time_unix_nano);
    assert_eq!(
        attr(&r.attributes, "process.executable.path"),
        Some(&PV::StringValue(
            std::fs::canonicalize("/bin/echo")
                .unwrap()
                .display()
                .to_string()
        ))
    );
    assert_eq!(
        attr(&r.attributes, "tripline.exec.filename"),
        Some(&PV::StringValue("/bin/echo".into()))
    );
    assert!(matches!(
        attr(&r.attributes, "process.parent_pid"),
        Some(PV::IntValue(_))
    ));
    assert!(matches!(
        attr(&r.attributes, "process.user.id"),
        Some(PV::IntValue(0))
    ));
    assert!(matches!(
        attr(&r.attributes, "tripline.process.args_truncated"),
        Some(PV::BoolValue(false))
    ));
    let Some(PV::ArrayValue(args)) = attr(&r.attributes, "process.command_args") else {
        panic!("process.command_args must be an array of strings")
    };
    let args: Vec<&PV> = args
        .values
        .iter()
        .filter_map(|v| v.value.as_ref())
        .collect();
    assert_eq!(
        args,
        vec![
            &PV::StringValue("/bin/echo".into()),
            &PV::StringValue("--password=[REDACTED]".into()),
            &PV::StringValue("x".into())
        ]
    );
    assert!(
        !format!("{:?}", records(store)).contains("hunter2"),
        "the secret reached the collector"
    );
}

#[test]
fn grpc_exec_events_and_findings_with_schema_and_redaction() {
    let store: Store = Default::default();
    let (port, _rt) = grpc_receiver(0, store.clone(), Duration::ZERO);
    let ex = Exporter::start(&[
        "--otlp.endpoint",
        &format!("http://127.0.0.1:{port}"),
        "--otlp.events",
        "exec",
    ]);
    let pid = run_secret_exec();
    assert_exec_record(&store, pid);

    // A rule match: execution from /tmp.
    let dir = std::env::temp_dir().join(format!("tripline-otlp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let payload = dir.join("payload");
    std::fs::copy("/bin/true", &payload).unwrap();
    Command::new(&payload).status().unwrap();
    let (_, f) = wait_record(&store, "rule match", |r| {
        r.event_name == "tripline.rule.match"
            && attr(&r.attributes, "process.executable.path")
                == Some(&PV::StringValue(payload.display().to_string()))
    });
    assert_eq!(
        attr(&f.attributes, "security_rule.name"),
        Some(&PV::StringValue("exec_from_temp_or_memory".into()))
    );
    assert_eq!(f.severity_number, 17);
    assert_eq!(f.severity_text, "ERROR");
    assert!(matches!(
        attr(&f.attributes, "tripline.rule.techniques"),
        Some(PV::ArrayValue(_))
    ));
    let _ = std::fs::remove_dir_all(&dir);
    ex.wait_events_metric("both records counted as exported", || exported(&ex) >= 2.0);
}

/// Records the exporter counted as exported: it counts a batch when the collector's answer arrives,
/// which is after the receiver stored it.
fn exported(ex: &Exporter) -> f64 {
    ex.sample("tripline_otlp_records_total{signal=\"logs\",result=\"exported\"}")
}

#[test]
fn http_protobuf_exec_events() {
    let store: Store = Default::default();
    let port = http_receiver(store.clone());
    let _ex = Exporter::start(&[
        "--otlp.endpoint",
        &format!("http://127.0.0.1:{port}/v1/logs"),
        "--otlp.protocol",
        "http/protobuf",
        "--otlp.events",
        "exec",
    ]);
    let pid = run_secret_exec();
    assert_exec_record(&store, pid);
}

#[test]
fn collector_down_then_back_and_slow_collector_drops_are_counted() {
    // Down at start: the exporter serves metrics, export failures are counted.
    let port = common::free_port();
    let ex = Exporter::start(&[
        "--otlp.endpoint",
        &format!("http://127.0.0.1:{port}"),
        "--otlp.events",
        "all",
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while ex.sample("tripline_otlp_records_total{signal=\"logs\",result=\"failed\"}") == 0.0 {
        Command::new("/bin/true").status().unwrap();
        assert!(Instant::now() < deadline, "failures were never counted");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The collector comes back on the same port: records flow again.
    let store: Store = Default::default();
    let (_, _rt) = grpc_receiver(port, store.clone(), Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(60);
    while records(&store).is_empty() {
        Command::new("/bin/true").status().unwrap();
        assert!(
            Instant::now() < deadline,
            "records did not flow after the collector returned"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The receiver stores a batch before it answers; the exporter counts it when the answer arrives.
    ex.wait_events_metric("records counted as exported", || exported(&ex) > 0.0);
    drop(ex);

    // Slow collector and a small queue: drops are counted, memory stays bounded, metrics keep working.
    let store: Store = Default::default();
    let (slow, _rt2) = grpc_receiver(0, store.clone(), Duration::from_secs(3));
    let cfg = std::env::temp_dir().join(format!("tripline-otlp-slow-{}.yml", std::process::id()));
    std::fs::write(&cfg, format!(
        "sinks:\n  otlp:\n    endpoint: http://127.0.0.1:{slow}\n    events: all\n    queue: 64\n    batch: 16\n"
    )).unwrap();
    let ex = Exporter::start(&["--config.file", cfg.to_str().unwrap()]);
    for _ in 0..300 {
        Command::new("/bin/true").status().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while ex.sample("tripline_otlp_records_total{signal=\"logs\",result=\"dropped\"}") == 0.0 {
        assert!(
            Instant::now() < deadline,
            "a slow collector with a full queue must count drops"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ex.sample("tripline_otlp_queue_length") <= 64.0);
    let rss = ex.sample("process_resident_memory_bytes");
    assert!(
        rss > 0.0 && rss < 256.0 * 1024.0 * 1024.0,
        "RSS {rss} bytes"
    );
    let _ = std::fs::remove_file(&cfg);
}

/// Throughput measurement, not a pass/fail gate: `cargo test --test otlp -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_otlp_records_per_second() {
    let store: Store = Default::default();
    let (port, _rt) = grpc_receiver(0, store.clone(), Duration::ZERO);
    let ex = Exporter::start(&[
        "--otlp.endpoint",
        &format!("http://127.0.0.1:{port}"),
        "--otlp.events",
        "all",
    ]);
    let start_count = exported(&ex);
    let t = Instant::now();
    let mut children = Vec::new();
    for _ in 0..4 {
        children.push(std::thread::spawn(|| {
            for _ in 0..1500 {
                Command::new("/bin/true").status().unwrap();
            }
        }));
    }
    for c in children {
        c.join().unwrap();
    }
    // Drained when the queue is empty (each scrape is itself a connect event, so "exported stopped
    // rising" would never hold).
    let deadline = Instant::now() + Duration::from_secs(120);
    while ex.sample("tripline_otlp_queue_length") > 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let secs = t.elapsed().as_secs_f64();
    let n = exported(&ex) - start_count;
    let dropped = ex.sample("tripline_otlp_records_total{signal=\"logs\",result=\"dropped\"}");
    println!(
        "OTLP: {n} records exported in {secs:.1}s = {:.0} records/s (dropped {dropped})",
        n / secs
    );
}
