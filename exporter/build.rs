//! Builds the eBPF probes (crate `tripline-ebpf`) with the nightly toolchain and embeds the object,
//! and records build information (git revision, build date, rustc version) for `--version` and
//! `tripline_build_info`.
use std::path::Path;
use std::process::Command;

fn main() -> anyhow::Result<()> {
    build_info();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../exporter-ebpf");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "tripline-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )?;
    strip_debug(&Path::new(&std::env::var("OUT_DIR")?).join("tripline"));
    Ok(())
}

/// The probes are built with full debug information because bpf-linker makes their BTF (which the
/// loader needs) from it; the DWARF itself is never read at run time, but it is three quarters of the
/// object and the loader reads the relocation sections of every section, DWARF's too. Keep the BTF
/// and drop the DWARF (`llvm-objcopy --strip-debug`, from the LLVM that bpf-linker is built with):
/// a smaller binary, a faster load, and pages that never become resident. Without the tool the object
/// is embedded as it is, with a warning.
fn strip_debug(object: &Path) {
    let prefix = std::env::var("LLVM_PREFIX").unwrap_or_else(|_| "/usr/lib/llvm-22".to_string());
    println!("cargo:rerun-if-env-changed=LLVM_PREFIX");
    let tools = [
        format!("{prefix}/bin/llvm-objcopy"),
        "llvm-objcopy-22".to_string(),
        "llvm-objcopy".to_string(),
    ];
    for tool in &tools {
        match Command::new(tool).arg("--strip-debug").arg(object).status() {
            Ok(s) if s.success() => return,
            Ok(s) => {
                println!(
                    "cargo:warning={tool} --strip-debug failed ({s}): probes embedded with DWARF"
                );
                return;
            }
            Err(_) => continue,
        }
    }
    println!("cargo:warning=no llvm-objcopy found (tried {tools:?}): probes embedded with DWARF");
}

/// Runs a command and returns its trimmed stdout when it succeeded.
fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// The revision: `TRIPLINE_GIT_REVISION` if set (builds from a tarball), else git, else the
/// `.cargo_vcs_info.json` cargo writes into published crates, else `unknown`.
fn revision() -> String {
    println!("cargo:rerun-if-env-changed=TRIPLINE_GIT_REVISION");
    if let Ok(r) = std::env::var("TRIPLINE_GIT_REVISION") {
        if !r.is_empty() {
            return r;
        }
    }
    if let Some(r) = output("git", &["rev-parse", "--short=12", "HEAD"]) {
        // Rebuild when HEAD moves (a commit, a checkout). Only existing paths: cargo reruns a build
        // script on every build when a watched path is missing.
        let mut watch = Vec::new();
        if let Some(dir) = output("git", &["rev-parse", "--absolute-git-dir"]) {
            watch.push(Path::new(&dir).join("HEAD"));
        }
        if let Some(common) = output("git", &["rev-parse", "--git-common-dir"]) {
            let common = Path::new(env!("CARGO_MANIFEST_DIR")).join(common);
            watch.push(common.join("packed-refs"));
            watch.push(common.join("refs").join("heads"));
        }
        for p in watch.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", p.display());
        }
        return r;
    }
    let vcs = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cargo_vcs_info.json");
    if let Ok(text) = std::fs::read_to_string(vcs) {
        if let Some(sha) = text
            .split('"')
            .skip_while(|s| *s != "sha1")
            .nth(2)
            .filter(|s| s.len() >= 12)
        {
            return sha[..12].to_string();
        }
    }
    "unknown".to_string()
}

/// Build date in UTC (RFC 3339): `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
fn build_date() -> String {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// `rustc 1.95.0 (59807616e 2026-04-14)` → `1.95.0`.
fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    output(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

fn build_info() {
    println!("cargo:rustc-env=TRIPLINE_GIT_REVISION={}", revision());
    println!("cargo:rustc-env=TRIPLINE_BUILD_DATE={}", build_date());
    println!("cargo:rustc-env=TRIPLINE_RUSTC_VERSION={}", rustc_version());
}
