//! The accept loop: a connection limit, optional TLS, HTTP/1.1 with a header-read timeout, an idle
//! timeout, basic auth and configured response headers around the application router.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt as _;

use super::WebConfig;

/// Bounds applied to every connection.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Why a connection or request was turned away (closed set).
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum RejectReason {
    /// The TLS handshake failed (no or untrusted client certificate, wrong protocol, timeout).
    tls_handshake,
    /// The connection carried no request for `--web.idle-timeout`.
    idle_timeout,
    /// Request headers did not arrive within `--web.header-read-timeout`.
    header_timeout,
    /// Basic auth missing or wrong (HTTP 401).
    unauthorized,
}

impl RejectReason {
    const ALL: &'static [RejectReason] = &[
        RejectReason::tls_handshake,
        RejectReason::idle_timeout,
        RejectReason::header_timeout,
        RejectReason::unauthorized,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    pub reason: RejectReason,
}

/// HTTP self-metrics.
#[derive(Clone, Default)]
pub struct WebMetrics {
    pub open: Gauge,
    pub rejected: Family<RejectLabels, Counter>,
}

impl WebMetrics {
    pub fn new(registry: &mut Registry) -> WebMetrics {
        let m = WebMetrics::default();
        let r = registry.sub_registry_with_prefix("tripline");
        r.register(
            "http_connections_open",
            "HTTP connections currently open (bounded by --web.max-connections)",
            m.open.clone(),
        );
        r.register(
            "http_rejected",
            "HTTP connections closed or requests refused, by reason: tls_handshake, idle_timeout, header_timeout, unauthorized",
            m.rejected.clone(),
        );
        for reason in RejectReason::ALL {
            drop(m.rejected.get_or_create(&RejectLabels { reason: *reason }));
        }
        m
    }

    fn reject(&self, reason: RejectReason) {
        self.rejected.get_or_create(&RejectLabels { reason }).inc();
    }
}

/// Serves `app` on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    web: WebConfig,
    opts: ServeOptions,
    metrics: WebMetrics,
    mut stop: watch::Receiver<bool>,
) {
    let app = protect(app, &web, &metrics);
    let tls = web.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(opts.max_connections.max(1)));
    loop {
        // Take a slot before accepting: beyond the limit, connections wait in the kernel's backlog.
        let permit = tokio::select! {
            _ = stop.changed() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (tcp, _peer) = tokio::select! {
            _ = stop.changed() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let opts = opts.clone();
        let metrics = metrics.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            metrics.open.inc();
            match tls {
                None => connection(tcp, app, &opts, &metrics, stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(opts.header_read_timeout, acceptor.accept(tcp)).await
                    {
                        Ok(Ok(stream)) => connection(stream, app, &opts, &metrics, stop).await,
                        Ok(Err(e)) => {
                            metrics.reject(RejectReason::tls_handshake);
                            tracing::debug!(error = %e, "TLS handshake failed");
                        }
                        Err(_) => metrics.reject(RejectReason::tls_handshake),
                    }
                }
            }
            metrics.open.dec();
            drop(permit);
        });
    }
}

/// One connection: HTTP/1.1 with keep-alive, closed when it has carried no request for the idle
/// timeout (a connection that never sends a byte included), or when the server stops.
async fn connection<IO>(
    io: IO,
    app: Router,
    opts: &ServeOptions,
    metrics: &WebMetrics,
    mut stop: watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let start = Instant::now();
    let in_flight = Arc::new(AtomicUsize::new(0));
    // Milliseconds since `start` at which the connection last finished a response (or opened).
    let last_done = Arc::new(AtomicU64::new(0));
    let svc = {
        let in_flight = in_flight.clone();
        let last_done = last_done.clone();
        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            in_flight.fetch_add(1, Ordering::SeqCst);
            let fut = app.clone().oneshot(req.map(Body::new));
            let in_flight = in_flight.clone();
            let last_done = last_done.clone();
            async move {
                let r = fut.await;
                last_done.store(start.elapsed().as_millis() as u64, Ordering::SeqCst);
                in_flight.fetch_sub(1, Ordering::SeqCst);
                r
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let check = (opts.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut tick = tokio::time::interval(check);
    let idle_ms = opts.idle_timeout.as_millis() as u64;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if r.is_err_and(|e| e.is_timeout()) {
                    metrics.reject(RejectReason::header_timeout);
                }
                return;
            }
            _ = tick.tick() => {
                let now = start.elapsed().as_millis() as u64;
                if in_flight.load(Ordering::SeqCst) == 0
                    && now.saturating_sub(last_done.load(Ordering::SeqCst)) >= idle_ms
                {
                    metrics.reject(RejectReason::idle_timeout);
                    return; // dropping the connection closes the socket
                }
            }
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await;
                return;
            }
        }
    }
}

/// Adds basic auth (when users are configured) and the configured response headers (on every
/// response, 401s included).
fn protect(app: Router, web: &WebConfig, metrics: &WebMetrics) -> Router {
    let app = if web.users.is_empty() {
        app
    } else {
        let users = web.users.clone();
        let metrics = metrics.clone();
        app.layer(axum::middleware::from_fn(
            move |req: Request<Body>, next: axum::middleware::Next| {
                let users = users.clone();
                let metrics = metrics.clone();
                async move {
                    let creds = req
                        .headers()
                        .get(header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_basic);
                    let ok = match creds {
                        Some((user, pass)) => match users.get(&user).cloned() {
                            // bcrypt is deliberately slow: keep it off the async workers.
                            Some(hash) => tokio::task::spawn_blocking(move || {
                                bcrypt::verify(pass.as_bytes(), &hash).unwrap_or(false)
                            })
                            .await
                            .unwrap_or(false),
                            None => false,
                        },
                        None => false,
                    };
                    if ok {
                        next.run(req).await
                    } else {
                        metrics.reject(RejectReason::unauthorized);
                        Response::builder()
                            .status(StatusCode::UNAUTHORIZED)
                            .header(header::WWW_AUTHENTICATE, "Basic realm=\"tripline\"")
                            .body(Body::from("Unauthorized\n"))
                            .unwrap_or_default()
                    }
                }
            },
        ))
    };
    let headers = web.headers.clone();
    if headers.is_empty() {
        return app;
    }
    app.layer(axum::middleware::map_response(
        move |mut resp: Response<Body>| {
            let headers = headers.clone();
            async move {
                for (k, v) in headers.iter() {
                    resp.headers_mut().insert(k.clone(), v.clone());
                }
                resp
            }
        },
    ))
}

/// `Basic base64(user:password)` → (user, password).
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_parsing() {
        assert_eq!(
            parse_basic("Basic Ym9iOnB3OmV4dHJh"),
            Some(("bob".into(), "pw:extra".into()))
        );
        assert_eq!(
            parse_basic("basic Ym9iOg=="),
            Some(("bob".into(), "".into()))
        );
        for bad in [
            "",
            "Basic",
            "Bearer Ym9iOnB3",
            "Basic !!!",
            "Basic Ym9i",
            "Basic /w==",
        ] {
            assert_eq!(parse_basic(bad), None, "{bad}");
        }
    }
}
