//! HTTP security with real TLS (rcgen-made certificates) and curl against the real exporter: client
//! certificates required, basic auth, the API on its own listener or off, header-read and idle
//! timeouts, and the connection limit.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_string()
    }
}

fn make_ca(cn: &str) -> (rcgen::Certificate, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, cn);
    let k = KeyPair::generate().unwrap();
    (p.self_signed(&k).unwrap(), k)
}

fn leaf(
    names: &[&str],
    cn: &str,
    usage: ExtendedKeyUsagePurpose,
    issuer: &(rcgen::Certificate, KeyPair),
) -> (String, String) {
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![usage];
    let k = KeyPair::generate().unwrap();
    let c = p.signed_by(&k, &issuer.0, &issuer.1).unwrap();
    (c.pem(), k.serialize_pem())
}

fn pki(name: &str) -> Pki {
    let dir = std::env::temp_dir().join(format!("tripline-web-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ca = make_ca("tripline test ca");
    let other = make_ca("someone else's ca");
    let (sc, sk) = leaf(
        &["localhost", "127.0.0.1"],
        "localhost",
        ExtendedKeyUsagePurpose::ServerAuth,
        &ca,
    );
    let (cc, ck) = leaf(&[], "prometheus", ExtendedKeyUsagePurpose::ClientAuth, &ca);
    let (oc, ok) = leaf(&[], "intruder", ExtendedKeyUsagePurpose::ClientAuth, &other);
    for (f, text) in [
        ("ca.crt", ca.0.pem()),
        ("server.crt", sc),
        ("server.key", sk),
        ("client.crt", cc),
        ("client.key", ck),
        ("other.crt", oc),
        ("other.key", ok),
    ] {
        std::fs::write(dir.join(f), text).unwrap();
    }
    Pki { dir }
}

/// A running exporter whose readiness is checked with curl (it may speak TLS).
struct Running {
    child: Child,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str], ready: impl Fn(u16) -> bool) -> Running {
    common::require_root();
    let port = common::free_port();
    let child = Command::new(common::BIN)
        .args(args)
        .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
        .arg("--state.directory")
        .arg(std::env::temp_dir().join(format!("tripline-web-state-{}-{port}", std::process::id())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut r = Running { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(port) {
        if let Some(s) = r.child.try_wait().unwrap() {
            panic!("tripline exited early: {s}");
        }
        assert!(Instant::now() < deadline, "tripline not ready in 60s");
        std::thread::sleep(Duration::from_millis(200));
    }
    r
}

/// curl's (exit code, HTTP status).
fn curl(port: u16, path: &str, extra: &[&str]) -> (i32, String) {
    let o = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(extra)
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .expect("curl");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

fn curl_body(port: u16, path: &str, extra: &[&str]) -> String {
    let o = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10"])
        .args(extra)
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .expect("curl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn mutual_tls_and_basic_auth_protect_metrics_and_api() {
    let pki = pki("mtls");
    let hash = bcrypt::hash("s3cret pass", 4).unwrap();
    let web = pki.dir.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\nbasic_auth_users:\n  prom: '{hash}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        ),
    )
    .unwrap();
    let (ca, cc, ck) = (
        pki.path("ca.crt"),
        pki.path("client.crt"),
        pki.path("client.key"),
    );
    let good: Vec<&str> = vec![
        "--cacert",
        &ca,
        "--cert",
        &cc,
        "--key",
        &ck,
        "-u",
        "prom:s3cret pass",
    ];
    let ex = start(&["--web.config.file", web.to_str().unwrap()], |port| {
        curl(port, "/readyz", &good).1 == "200"
    });
    let port = ex.port;

    // Right certificate and password: metrics and API answer, with the configured header.
    assert_eq!(curl(port, "/metrics", &good), (0, "200".into()));
    assert_eq!(curl(port, "/api/v1/status", &good), (0, "200".into()));
    assert_eq!(curl(port, "/api/v1/findings", &good), (0, "200".into()));
    let head = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null"])
        .args(&good)
        .arg(format!("https://localhost:{port}/metrics"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&head.stdout)
        .to_ascii_lowercase()
        .contains("x-frame-options: deny"));

    // No client certificate: the handshake is refused (curl fails before any HTTP status).
    let (code, status) = curl(
        port,
        "/metrics",
        &["--cacert", &ca, "-u", "prom:s3cret pass"],
    );
    assert_ne!(code, 0, "a client without a certificate got through");
    assert_eq!(status, "000");
    // A certificate from another CA: refused too.
    let (oc, ok) = (pki.path("other.crt"), pki.path("other.key"));
    let (code, status) = curl(
        port,
        "/metrics",
        &[
            "--cacert",
            &ca,
            "--cert",
            &oc,
            "--key",
            &ok,
            "-u",
            "prom:s3cret pass",
        ],
    );
    assert_ne!(code, 0);
    assert_eq!(status, "000");
    // Plain HTTP on the TLS port gets nothing useful.
    assert!(common::http_get(port, "/metrics").map_or(true, |(c, _)| c != 200));

    // Right certificate, wrong or missing password, unknown user: 401 on metrics and API.
    let cert: Vec<&str> = vec!["--cacert", &ca, "--cert", &cc, "--key", &ck];
    for (path, auth) in [
        ("/metrics", Some("prom:wrong")),
        ("/metrics", None),
        ("/metrics", Some("root:s3cret pass")),
        ("/api/v1/findings", Some("prom:wrong")),
        ("/api/v1/baseline", None),
    ] {
        let mut args = cert.clone();
        if let Some(a) = auth {
            args.extend(["-u", a]);
        }
        assert_eq!(
            curl(port, path, &args),
            (0, "401".into()),
            "{path} {auth:?}"
        );
    }
    // The configured headers are on refusals too.
    let head = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null"])
        .args(&cert)
        .arg(format!("https://localhost:{port}/metrics"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).to_ascii_lowercase();
    assert!(
        head.starts_with("http/1.1 401") && head.contains("x-frame-options: deny"),
        "{head}"
    );
    assert!(head.contains("www-authenticate: basic"), "{head}");

    let m = curl_body(port, "/metrics", &good);
    assert!(
        common::sample(&m, "tripline_http_rejected_total{reason=\"tls_handshake\"}") >= 2.0,
        "{m}"
    );
    assert!(common::sample(&m, "tripline_http_rejected_total{reason=\"unauthorized\"}") >= 5.0);
    let _ = std::fs::remove_dir_all(&pki.dir);
}

#[test]
fn verify_if_given_lets_certless_clients_use_basic_auth() {
    let pki = pki("ifgiven");
    let web = pki.dir.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n  min_version: TLS13\n",
            pki.path("server.crt"),
            pki.path("server.key")
        ),
    )
    .unwrap();
    let ca = pki.path("ca.crt");
    let ex = start(&["--web.config.file", web.to_str().unwrap()], |port| {
        curl(port, "/readyz", &["--cacert", &ca]).1 == "200"
    });
    assert_eq!(
        curl(ex.port, "/metrics", &["--cacert", &ca]),
        (0, "200".into())
    );
    // TLS 1.2 is below min_version.
    let (code, _) = curl(ex.port, "/metrics", &["--cacert", &ca, "--tls-max", "1.2"]);
    assert_ne!(code, 0);
    let (oc, ok) = (pki.path("other.crt"), pki.path("other.key"));
    let (code, _) = curl(
        ex.port,
        "/metrics",
        &["--cacert", &ca, "--cert", &oc, "--key", &ok],
    );
    assert_ne!(code, 0, "an untrusted certificate, when given, is refused");
    let _ = std::fs::remove_dir_all(&pki.dir);
}

fn raise_nofile() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointers.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
    }
    assert!(
        r.rlim_cur >= 4096,
        "need 4096 open files for 1,000 connections"
    );
}

fn http_ready(port: u16) -> bool {
    common::http_get(port, "/readyz").is_ok_and(|(c, _)| c == 200)
}

/// 1,000 idle connections (450 were held forever on main) are closed by the idle timeout, and
/// `/metrics` answers throughout.
#[test]
fn idle_connections_are_closed_while_metrics_keep_answering() {
    raise_nofile();
    let ex = start(
        &["--web.idle-timeout", "10s", "--web.max-connections", "1100"],
        http_ready,
    );
    let port = ex.port;
    let mut idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // Half of them send part of a request, half nothing at all.
    for s in idle.iter_mut().step_by(2) {
        s.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    }
    let start_t = Instant::now();
    let mut scrapes = 0;
    let mut most_open: f64 = 0.0;
    while start_t.elapsed() < Duration::from_secs(3) {
        let (code, body) = common::http_get(port, "/metrics").expect("scrape during the flood");
        assert_eq!(code, 200);
        most_open = most_open.max(common::sample(&body, "tripline_http_connections_open"));
        scrapes += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(scrapes >= 5);
    assert!(
        most_open >= 1000.0,
        "the idle connections were served: {most_open}"
    );
    // Every idle connection is closed by the server: a read returns EOF (or a reset).
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "an idle connection was still open after 30s"
            ),
            Ok(n) => {
                // A partial request may get a 408/400 before the close; then EOF must follow.
                assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 4"));
                let mut rest = Vec::new();
                assert!(s.read_to_end(&mut rest).is_ok());
            }
        }
    }
    let (code, body) = common::http_get(port, "/metrics").unwrap();
    assert_eq!(code, 200);
    let by = |r: &str| {
        common::sample(
            &body,
            &format!("tripline_http_rejected_total{{reason=\"{r}\"}}"),
        )
    };
    let closed = by("idle_timeout") + by("header_timeout");
    assert!(
        closed >= 1000.0,
        "closed by the idle or header timeout: {closed}"
    );
    assert!(common::sample(&body, "tripline_http_connections_open") <= 2.0);
}

/// A client trickling header bytes (slowloris) keeps the connection "active" but is cut off by the
/// header-read timeout.
#[test]
fn header_read_timeout_cuts_off_slow_headers() {
    let ex = start(
        &[
            "--web.header-read-timeout",
            "2s",
            "--web.idle-timeout",
            "120s",
        ],
        http_ready,
    );
    let mut s = TcpStream::connect(("127.0.0.1", ex.port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    let t = Instant::now();
    let mut closed = false;
    while t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(500));
        if s.write_all(b"X-A: b\r\n").is_err() {
            closed = true;
            break;
        }
        s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {} // a 408 before the close
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "a slow header kept the connection open for 30s");
}

/// With the limit reached, a new connection waits (in the kernel's queue) until a slot frees; it is
/// served then, not refused.
#[test]
fn connection_limit_queues_new_connections() {
    let ex = start(
        &["--web.max-connections", "2", "--web.idle-timeout", "3s"],
        http_ready,
    );
    // Let the readiness probe's connection finish and free its slot.
    std::thread::sleep(Duration::from_millis(300));
    let _a = TcpStream::connect(("127.0.0.1", ex.port)).unwrap();
    let _b = TcpStream::connect(("127.0.0.1", ex.port)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut c = TcpStream::connect(("127.0.0.1", ex.port)).unwrap();
    write!(c, "GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut buf = [0u8; 64];
    let early = c.read(&mut buf);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "served beyond the connection limit: {early:?}"
    );
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200"),
        "{resp}"
    );
}

#[test]
fn api_on_its_own_listener_or_off() {
    let api_port = common::free_port();
    let api_addr = format!("127.0.0.1:{api_port}");
    let ex = start(&["--web.api.listen-address", &api_addr], http_ready);
    assert_eq!(common::http_get(ex.port, "/api/v1/status").unwrap().0, 404);
    assert_eq!(common::http_get(ex.port, "/metrics").unwrap().0, 200);
    assert_eq!(common::http_get(api_port, "/api/v1/status").unwrap().0, 200);
    assert_eq!(common::http_get(api_port, "/metrics").unwrap().0, 404);
    drop(ex);

    let ex = start(&["--no-web.api"], http_ready);
    assert_eq!(
        common::http_get(ex.port, "/api/v1/findings").unwrap().0,
        404
    );
    assert_eq!(common::http_get(ex.port, "/metrics").unwrap().0, 200);
}
