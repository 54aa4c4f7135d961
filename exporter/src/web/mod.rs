//! HTTP hardening like every Prometheus exporter: `--web.config.file` in the exporter-toolkit format
//! (TLS with rustls, client certificates, bcrypt basic auth, security headers), plus connection bounds
//! (header-read and idle timeouts, a connection limit) applied to every listener.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: ca.crt
//!   min_version: TLS13
//! basic_auth_users:
//!   prometheus: $2y$10$...   # bcrypt hash
//! http_server_config:
//!   headers:
//!     X-Frame-Options: deny
//! ```
//! Relative file names are resolved against the web configuration file's directory.
mod serve;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

pub use serve::{parse_basic, serve, ServeOptions, WebMetrics};

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: String,
        field: String,
        message: String,
    },
    #[error(transparent)]
    Limit(#[from] crate::limits::LimitError),
}

/// The file as written (exporter-toolkit key names).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: RawHttp,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    #[serde(default)]
    client_auth_type: ClientAuth,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    min_version: Option<TlsVersion>,
    #[serde(default)]
    max_version: Option<TlsVersion>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// Accepted for compatibility; tripline serves HTTP/1.1.
    #[serde(default)]
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// `client_auth_type`. tripline always verifies a presented client certificate against
/// `client_ca_file`, so the toolkit's non-verifying `RequestClientCert`/`RequireAnyClientCert` are refused.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ClientAuth {
    #[default]
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
    RequestClientCert,
    RequireAnyClientCert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum TlsVersion {
    TLS10,
    TLS11,
    TLS12,
    TLS13,
}

/// Response headers the toolkit allows in `http_server_config.headers`.
const ALLOWED_HEADERS: &[&str] = &[
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

/// The validated web configuration.
#[derive(Clone, Default)]
pub struct WebConfig {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// user → bcrypt hash.
    pub users: Arc<BTreeMap<String, String>>,
    pub headers: Arc<Vec<(axum::http::HeaderName, axum::http::HeaderValue)>>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers)
            .finish()
    }
}

impl WebConfig {
    /// No file: plain HTTP without authentication.
    pub fn load(path: Option<&Path>) -> Result<WebConfig, WebConfigError> {
        let Some(path) = path else {
            return Ok(WebConfig::default());
        };
        let text = crate::limits::read_bounded(
            path,
            crate::limits::MAX_CONFIG_BYTES,
            "web configuration",
        )?;
        WebConfig::parse(&text, path)
    }

    // Long on purpose: one check per section of the exporter-toolkit format, in file order, each with its error.
    pub fn parse(text: &str, path: &Path) -> Result<WebConfig, WebConfigError> {
        let p = path.display().to_string();
        crate::limits::check_nesting(text, &p, crate::limits::MAX_NESTING)?;
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| {
                let (line, column) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((0, 0));
                let msg = e.to_string();
                let message = msg
                    .rfind(" at line ")
                    .map(|i| msg[..i].to_string())
                    .unwrap_or(msg);
                WebConfigError::Syntax {
                    path: p.clone(),
                    line,
                    column,
                    message,
                }
            })?
        };
        let invalid = |field: &str, message: String| WebConfigError::Invalid {
            path: p.clone(),
            field: field.into(),
            message,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let tls = match &raw.tls_server_config {
            None => None,
            Some(t) => Some(Arc::new(tls_config(t, dir, &invalid)?)),
        };
        for (user, hash) in &raw.basic_auth_users {
            if user.is_empty() || user.contains(':') {
                return Err(invalid(
                    "basic_auth_users",
                    format!("{user:?}: a user name must be non-empty and contain no ':'"),
                ));
            }
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(invalid(
                    &format!("basic_auth_users.{user}"),
                    "is not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`".into(),
                ));
            }
        }
        if raw.http_server_config.http2 == Some(true) {
            tracing::info!("web config: http2 is accepted but tripline serves HTTP/1.1");
        }
        let mut headers = Vec::new();
        for (name, value) in &raw.http_server_config.headers {
            let Some(canonical) = ALLOWED_HEADERS
                .iter()
                .find(|h| h.eq_ignore_ascii_case(name))
            else {
                return Err(invalid(
                    "http_server_config.headers",
                    format!(
                        "{name:?} is not allowed; allowed: {}",
                        ALLOWED_HEADERS.join(", ")
                    ),
                ));
            };
            let v = axum::http::HeaderValue::from_str(value).map_err(|_| {
                invalid(
                    &format!("http_server_config.headers.{name}"),
                    format!("{value:?} is not a valid header value"),
                )
            })?;
            headers.push((
                axum::http::HeaderName::from_static(static_lower(canonical)),
                v,
            ));
        }
        Ok(WebConfig {
            tls,
            users: Arc::new(raw.basic_auth_users),
            headers: Arc::new(headers),
        })
    }
}

/// Binds and spawns the listeners: metrics (and the API, unless it has its own address or is off).
pub async fn spawn_servers(
    args: &crate::cli::RunArgs,
    state: crate::server::AppState,
    web: WebConfig,
    metrics: WebMetrics,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let opts = ServeOptions {
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args.max_connections as usize,
    };
    let scheme = if web.tls.is_some() { "https" } else { "http" };
    let (main, api) = crate::server::router_parts(state);
    let mut routers = Vec::new();
    match (&args.api_listen_address, args.no_web_api) {
        (_, true) => routers.push((&args.listen_address, main, "metrics")),
        (Some(a), false) => {
            routers.push((&args.listen_address, main, "metrics"));
            routers.push((a, api, "api"));
        }
        (None, false) => routers.push((&args.listen_address, main.merge(api), "metrics and api")),
    }
    let mut tasks = Vec::new();
    for (addr, router, what) in routers {
        let Some(listener) = crate::server::bind(addr).await? else {
            continue;
        };
        tracing::info!(address = %listener.local_addr()?, scheme, serving = what, tls = web.tls.is_some(), basic_auth = !web.users.is_empty(), "listening");
        tasks.push(tokio::spawn(serve(
            listener,
            router,
            web.clone(),
            opts.clone(),
            metrics.clone(),
            stop.clone(),
        )));
    }
    Ok(tasks)
}

fn static_lower(h: &str) -> &'static str {
    match h {
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-Frame-Options" => "x-frame-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "content-security-policy",
    }
}

fn tls_config(
    t: &RawTls,
    dir: &Path,
    invalid: &dyn Fn(&str, String) -> WebConfigError,
) -> Result<rustls::ServerConfig, WebConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        }
    };
    let certs = pem_certs(
        &resolve(&t.cert_file),
        "tls_server_config.cert_file",
        invalid,
    )?;
    let key_file = resolve(&t.key_file);
    let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|e| {
        invalid(
            "tls_server_config.key_file",
            format!("{}: {e}", key_file.display()),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(tls_versions(t, invalid)?)
        .map_err(|e| invalid("tls_server_config", e.to_string()))?;
    let builder = match t.client_auth_type {
        ClientAuth::NoClientCert => {
            if t.client_ca_file.is_some() {
                return Err(invalid(
                    "tls_server_config.client_ca_file",
                    "is set but client_auth_type is NoClientCert: set client_auth_type to RequireAndVerifyClientCert or VerifyClientCertIfGiven".into(),
                ));
            }
            builder.with_no_client_auth()
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let Some(ca) = &t.client_ca_file else {
                return Err(invalid(
                    "tls_server_config.client_ca_file",
                    format!("is required with client_auth_type {:?}", t.client_auth_type),
                ));
            };
            let field = "tls_server_config.client_ca_file";
            let ca = resolve(ca);
            let mut store = rustls::RootCertStore::empty();
            for c in pem_certs(&ca, field, invalid)? {
                store
                    .add(c)
                    .map_err(|e| invalid(field, format!("{}: {e}", ca.display())))?;
            }
            let mut v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(store),
                provider.clone(),
            );
            if t.client_auth_type == ClientAuth::VerifyClientCertIfGiven {
                v = v.allow_unauthenticated();
            }
            let v = v.build().map_err(|e| invalid(field, e.to_string()))?;
            builder.with_client_cert_verifier(v)
        }
        other => {
            return Err(invalid(
                "tls_server_config.client_auth_type",
                format!("{other:?} does not verify the certificate and is not supported; allowed: NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"),
            ))
        }
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| invalid("tls_server_config.key_file", format!("{e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Every PEM certificate in `path`; an error about `field` when it cannot be read or holds none.
fn pem_certs(
    path: &Path,
    field: &str,
    invalid: &dyn Fn(&str, String) -> WebConfigError,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, WebConfigError> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(field, format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(
            field,
            format!("{}: no PEM certificate in it", path.display()),
        ));
    }
    Ok(certs)
}

/// The protocol versions between `min_version` (default TLS 1.2, the lowest allowed) and `max_version`.
fn tls_versions(
    t: &RawTls,
    invalid: &dyn Fn(&str, String) -> WebConfigError,
) -> Result<&'static [&'static rustls::SupportedProtocolVersion], WebConfigError> {
    let min = t.min_version.unwrap_or(TlsVersion::TLS12);
    let max = t.max_version.unwrap_or(TlsVersion::TLS13);
    if min < TlsVersion::TLS12 {
        return Err(invalid(
            "tls_server_config.min_version",
            format!("{min:?} is not supported: use TLS12 or TLS13"),
        ));
    }
    if max < min {
        return Err(invalid(
            "tls_server_config.max_version",
            format!("{max:?} is below min_version {min:?}"),
        ));
    }
    static TLS13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    static TLS12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    static BOTH: [&rustls::SupportedProtocolVersion; 2] =
        [&rustls::version::TLS12, &rustls::version::TLS13];
    Ok(match (min, max) {
        (TlsVersion::TLS13, _) => &TLS13,
        (_, TlsVersion::TLS12) => &TLS12,
        _ => &BOTH,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebConfig, WebConfigError> {
        WebConfig::parse(text, Path::new("/nonexistent/web.yml"))
    }

    #[test]
    fn empty_is_plain_http() {
        let w = parse("").unwrap();
        assert!(w.tls.is_none() && w.users.is_empty());
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse("basic_auth_users:\n  bob: plain\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("basic_auth_users.bob: is not a bcrypt hash"),
            "{e}"
        );
        let e = parse("http_server_config:\n  headers:\n    Server: x\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"Server\" is not allowed; allowed:"), "{e}");
        let e = parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  bogus: 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/nonexistent/web.yml:4:"), "{e}");
        let e = parse("tls_server_config:\n  cert_file: a.crt\n  key_file: b\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tls_server_config.cert_file: /nonexistent/a.crt"),
            "{e}"
        );
        let h = bcrypt::hash("pw", 4).unwrap();
        let w = parse(&format!(
            "basic_auth_users:\n  bob: '{h}'\nhttp_server_config:\n  headers:\n    x-frame-options: deny\n"
        ))
        .unwrap();
        assert_eq!(w.users.len(), 1);
        assert_eq!(w.headers[0].0.as_str(), "x-frame-options");
    }

    /// The worked example in docs/configuration.md: its hash is of the password it shows.
    #[test]
    fn documented_example_hash_matches() {
        let doc = include_str!("../../../docs/configuration.md");
        let hash = doc
            .lines()
            .find_map(|l| l.trim().strip_prefix("prometheus: "))
            .expect("example user in docs/configuration.md");
        assert!(bcrypt::verify("correct horse", hash).unwrap());
        let yaml = doc
            .split("`/etc/tripline/web.yml`:\n\n```yaml\n")
            .nth(1)
            .and_then(|r| r.split("```").next())
            .expect("example web.yml");
        let e = parse(yaml).unwrap_err().to_string();
        // Everything but the certificate files (which the example makes with openssl) is valid.
        assert!(
            e.contains("tls_server_config.cert_file: /nonexistent/server.crt"),
            "{e}"
        );
    }
}
