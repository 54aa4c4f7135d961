//! The floors of `src/lib.rs`, enforced: a module may use its own floor and those below, never a later
//! stage. Reads the sources; no kernel needed.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level module → floor (see the crate docs).
const FLOORS: &[(&str, u8)] = &[
    ("limits", 0),
    ("model", 0),
    ("families", 0),
    ("build_info", 0),
    ("logging", 0),
    ("telemetry", 1),
    ("tamper", 1),
    ("probes", 2),
    ("enrich", 3),
    ("detect", 4),
    ("sinks", 5),
    ("server", 6),
    ("config", 7),
    ("cli", 7),
    ("pipeline", 7),
    ("gameday", 7),
    ("preflight", 7),
    ("privilege", 7),
    ("web", 7),
    ("service", 7),
];

fn floor(module: &str) -> Option<u8> {
    FLOORS.iter().find(|(m, _)| *m == module).map(|(_, f)| *f)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `crate::<name>` a file mentions (in `use` lines and paths), outside `#[cfg(test)]` modules.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let text = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.insert(name);
    }
    out
}

#[test]
fn no_module_imports_a_later_stage() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(own) = floor(&top) else {
            assert!(
                ["lib", "main"].contains(&top.as_str()),
                "{}: module {top} has no floor in FLOORS",
                rel.display()
            );
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for r in crate_refs(&text) {
            if let Some(theirs) = floor(&r) {
                if theirs > own {
                    violations.push(format!(
                        "{} (floor {own}) uses crate::{r} (floor {theirs})",
                        rel.display()
                    ));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_checker_sees_references() {
    let refs = crate_refs(
        "use crate::sinks::x;\nfn f() { crate::detect::y(); }\n#[cfg(test)]\nuse crate::server;",
    );
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        vec!["detect".to_string(), "sinks".to_string()]
    );
}
