//! The configuration schema, the shipped files and the docs cannot drift from the config types:
//! docs/config.schema.json is the generated schema; docs/configuration.md documents every key;
//! the packaged /etc/tripline/tripline.yml sets every key to its default (baseline persisted).
use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::*;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn schema() -> Value {
    serde_json::from_str(&schema_json()).unwrap()
}

/// Follows a `$ref` into `$defs`.
fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            &root["$defs"][name]
        }
        None => s,
    }
}

/// Every key path (`sensor.ring_buffer_bytes`, `detect.baseline`, `detect.baseline.file`, ...).
fn key_paths(root: &Value, s: &Value, prefix: &str, out: &mut Vec<(String, bool)>) {
    let s = resolve(root, s);
    let Some(props) = s.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (k, v) in props {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let is_section = resolve(root, v).get("properties").is_some();
        out.push((path.clone(), is_section));
        key_paths(root, v, &path, out);
    }
}

fn leaves() -> Vec<String> {
    let root = schema();
    let mut out = Vec::new();
    key_paths(&root, &root, "", &mut out);
    out.into_iter()
        .filter(|(_, section)| !section)
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn shipped_schema_matches_the_config_types() {
    let path = Path::new(ROOT).join("docs/config.schema.json");
    let want = schema_json() + "\n";
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "docs/config.schema.json is not the schema of the config types: regenerate with \
         UPDATE_SCHEMA=1 cargo test -p tripline --lib config::schema_tests"
    );
}

#[test]
fn schema_rejects_unknown_keys_and_knows_every_section() {
    let root = schema();
    assert_eq!(root["additionalProperties"], Value::Bool(false));
    let l = leaves();
    for k in [
        "sensor.ring_buffer_bytes",
        "detect.baseline.file",
        "sinks.otlp.tls.ca_file",
        "sinks.redaction.extra_patterns",
    ] {
        assert!(l.iter().any(|p| p == k), "{k} missing from {l:?}");
    }
}

/// A key `a.b.c` is documented when a section heading ``## `a` `` or ``## `a.b` `` is followed,
/// before the next heading, by the rest of the path in backquotes (`` `b.c` `` or `` `c` ``).
#[test]
fn configuration_md_documents_every_key() {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/configuration.md")).unwrap();
    let mut sections: Vec<(String, String)> = Vec::new();
    for part in doc.split("\n## ").skip(1) {
        let (head, body) = part.split_once('\n').unwrap_or((part, ""));
        if let Some(name) = head
            .trim()
            .strip_prefix('`')
            .and_then(|h| h.strip_suffix('`'))
        {
            sections.push((name.to_string(), body.to_string()));
        }
    }
    let mut missing = Vec::new();
    for key in leaves() {
        let documented = sections.iter().any(|(name, body)| {
            key.strip_prefix(&format!("{name}."))
                .is_some_and(|rest| body.contains(&format!("`{rest}`")))
        });
        if !documented {
            missing.push(key);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document {missing:?} (a ## `section` table row with the key)"
    );
}

fn yaml_keys(v: &serde_yaml_ng::Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let serde_yaml_ng::Value::Mapping(m) = v {
        for (k, v) in m {
            let k = k.as_str().unwrap_or_default();
            let path = if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            };
            out.insert(path.clone());
            yaml_keys(v, &path, out);
        }
    }
}

#[test]
fn packaged_config_sets_every_key_to_its_default() {
    let path = Path::new(ROOT).join("packaging/tripline.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let cfg = Config::parse(&text, &path).unwrap();
    let mut want = Config::default();
    want.detect.baseline.file = Some("/var/lib/tripline/baseline.yml".into());
    want.detect.policy_file = Some("/etc/tripline/policy.yml".into());
    assert_eq!(
        cfg, want,
        "packaging/tripline.yml must be the defaults, with the baseline under the state directory"
    );
    let mut keys = BTreeSet::new();
    yaml_keys(&serde_yaml_ng::from_str(&text).unwrap(), "", &mut keys);
    let missing: Vec<String> = leaves().into_iter().filter(|k| !keys.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "packaging/tripline.yml lacks {missing:?}"
    );
    // Every key carries a comment line above it or on its line.
    for (n, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with('-') {
            continue;
        }
        let prev = text
            .lines()
            .nth(n.wrapping_sub(1))
            .unwrap_or("")
            .trim_start();
        assert!(
            line.contains(" # ") || prev.starts_with('#') || t.ends_with(':'),
            "packaging/tripline.yml line {}: {line:?} has no comment",
            n + 1
        );
    }
}
