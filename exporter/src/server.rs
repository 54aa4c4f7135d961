//! HTTP: `/metrics` (OpenMetrics or text 0.0.4), `/` landing page, `/healthz`, `/readyz`, `/api/v1/...`.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;

use crate::probes::ProbeStatus;
use crate::sinks::render;
use crate::telemetry::exposition;

/// What the handlers read. Scrape-time values come from each stage's registered collector.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub probes: Arc<Vec<ProbeStatus>>,
    pub ready: Arc<AtomicBool>,
    pub telemetry_path: String,
    /// Detection state for `/api/v1/findings` and `/api/v1/baseline`.
    pub detect: Option<Arc<crate::detect::Shared>>,
}

/// Where to listen. `:PORT` binds every interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddress {
    Disabled,
    Any(u16),
    Addr(SocketAddr),
}

/// Binds `addr` and serves until `stop` changes; `None` when the listener is disabled.
pub async fn spawn(
    addr: &ListenAddress,
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(listener) = bind(addr).await? else {
        return Ok(None);
    };
    tracing::info!(address = %listener.local_addr()?, path = %state.telemetry_path, "serving metrics");
    let app = router(state);
    Ok(Some(tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            })
            .await;
    })))
}

pub fn router(state: AppState) -> Router {
    let (main, api) = router_parts(state);
    main.merge(api)
}

/// The telemetry router (`/`, metrics, health) and the `/api/*` router, to serve on one listener, on
/// two (`--web.api.listen-address`) or without the API (`--no-web.api`).
pub fn router_parts(state: AppState) -> (Router, Router) {
    let main = Router::new()
        .route("/", get(landing))
        .route(&state.telemetry_path.clone(), get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(state.clone());
    let api = Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/baseline", get(baseline))
        .with_state(state);
    (main, api)
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let om = exposition::wants_openmetrics(accept);
    match exposition::encode(&s.registry, om) {
        Ok(body) => {
            let ct = if om {
                exposition::OPENMETRICS
            } else {
                exposition::TEXT_004
            };
            ([(header::CONTENT_TYPE, ct)], body).into_response()
        }
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response(),
    }
}

async fn readyz(State(s): State<AppState>) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "probes not attached yet\n").into_response()
    }
}

async fn status(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": crate::build_info::REVISION,
        "build_date": crate::build_info::BUILD_DATE,
        "rustc_version": crate::build_info::RUSTC_VERSION,
        "ready": s.ready.load(Ordering::Relaxed),
        "probes": &*s.probes,
    }))
}

#[derive(serde::Deserialize)]
struct FindingsQuery {
    since: Option<String>,
}

async fn findings(State(s): State<AppState>, Query(q): Query<FindingsQuery>) -> Response {
    let Some(d) = &s.detect else {
        return (StatusCode::NOT_FOUND, "detection is not running\n").into_response();
    };
    let since = match q.since.as_deref().map(crate::detect::recent::parse_since) {
        None => std::time::SystemTime::UNIX_EPOCH,
        Some(Ok(t)) => t,
        Some(Err(e)) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let items = d
        .findings
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .since(since);
    let items = items
        .iter()
        .map(|f| render::to_json(&render::finding_record(f)))
        .collect();
    Json(serde_json::Value::Array(items)).into_response()
}

async fn baseline(State(s): State<AppState>) -> Response {
    let Some(d) = &s.detect else {
        return (StatusCode::NOT_FOUND, "detection is not running\n").into_response();
    };
    let yaml = d
        .baselines
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .baseline
        .to_yaml();
    ([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response()
}

async fn landing(State(s): State<AppState>) -> Html<String> {
    let mut rows = String::new();
    for p in s.probes.iter() {
        let state = if p.attached {
            "attached"
        } else if p.unavailable {
            "not available on this kernel"
        } else {
            "NOT attached"
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(p.probe),
            esc(&p.hook),
            state,
            esc(&p.errors.join("; "))
        ));
    }
    Html(format!(
        "<!doctype html><html><head><title>tripline</title></head><body>\
         <h1>tripline {}</h1><p>Linux security-signals exporter.</p>\
         <ul><li><a href=\"{path}\">Metrics</a></li><li><a href=\"/api/v1/status\">Status</a></li><li><a href=\"/api/v1/findings\">Findings</a></li><li><a href=\"/api/v1/baseline\">Baseline</a></li>\
         <li><a href=\"/healthz\">Health</a></li><li><a href=\"/readyz\">Readiness</a></li></ul>\
         <h2>Probes</h2><table border=1><tr><th>probe</th><th>hook</th><th>state</th><th>errors</th></tr>{rows}</table>\
         </body></html>",
        env!("CARGO_PKG_VERSION"),
        path = esc(&s.telemetry_path),
    ))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Binds the listener: `Any(port)` tries dual-stack `[::]` and falls back to `0.0.0.0`.
pub async fn bind(addr: &ListenAddress) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let l = match addr {
        ListenAddress::Disabled => return Ok(None),
        ListenAddress::Addr(a) => tokio::net::TcpListener::bind(a)
            .await
            .map_err(|e| bind_err(&a.to_string(), e))?,
        ListenAddress::Any(port) => {
            let v6 = SocketAddr::from(([0u16; 8], *port));
            match tokio::net::TcpListener::bind(v6).await {
                Ok(l) => l,
                Err(_) => tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], *port)))
                    .await
                    .map_err(|e| bind_err(&format!(":{port}"), e))?,
            }
        }
    };
    Ok(Some(l))
}

fn bind_err(addr: &str, e: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!("cannot listen on {addr}: {e} (is another exporter running? choose another --web.listen-address)")
}
