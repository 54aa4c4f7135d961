//! `/metrics` as a scraper sees it: text 0.0.4 that `promtool check metrics` accepts, OpenMetrics by
//! content negotiation, and a golden file of every family's HELP/TYPE and label names (node_exporter
//! style; regenerate with `UPDATE_GOLDEN=1 cargo test --test metrics_exposition`).
mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::Exporter;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/metrics.txt");

/// HELP/TYPE lines, and each sample's name with its label names (values stripped), sorted and unique.
fn shape(body: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in body.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            lines.push(line.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let series = line.rsplit_once(' ').map(|(s, _)| s).unwrap_or(line);
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let keys: Vec<&str> = rest
                    .trim_end_matches('}')
                    .split("\",")
                    .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.trim_start_matches(',')))
                    .collect();
                (n, format!("{{{}}}", keys.join(",")))
            }
            None => (series, String::new()),
        };
        lines.push(format!("{name}{labels}"));
    }
    lines.sort();
    lines.dedup();
    lines.join("\n") + "\n"
}

fn get(port: u16, accept: &str) -> (String, String) {
    let (_, ct, body) = common::http_get_accept(port, "/metrics", accept).unwrap();
    (ct, body)
}

#[test]
fn text_format_passes_promtool_and_matches_golden() {
    let ex = Exporter::start(&[]);
    // Generate some activity so every kind has moved.
    Command::new("/bin/true").status().unwrap();
    let (ct, body) = get(ex.port, "text/plain");
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    assert!(!body.contains("# EOF"));
    assert!(
        body.contains("# TYPE tripline_events_total counter"),
        "counters carry _total in 0.0.4"
    );

    let promtool = which("promtool")
        .expect("promtool is required (scripts/install-deps.sh --test installs it)");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics: {report}"
    );

    let got = shape(&body);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, &got).unwrap();
    }
    let want = std::fs::read_to_string(GOLDEN).unwrap_or_default();
    assert_eq!(
        got, want,
        "metric families changed: review and run with UPDATE_GOLDEN=1"
    );
}

#[test]
fn openmetrics_by_content_negotiation() {
    let ex = Exporter::start(&[]);
    let (ct, body) = get(
        ex.port,
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    );
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(body.ends_with("# EOF\n"));
    assert!(body.contains("# TYPE tripline_events counter"));
    assert!(body.contains("tripline_build_info{"));
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
}

#[test]
fn every_family_is_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
        .unwrap();
    let golden = std::fs::read_to_string(GOLDEN).unwrap();
    let missing: Vec<&str> = golden
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .filter(|name| !doc.contains(&format!("`{name}`")) && !doc.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "families missing from docs/metrics.md: {missing:?}"
    );
}
