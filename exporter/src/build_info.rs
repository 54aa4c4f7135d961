//! What was built: version, git revision, build date and rustc, recorded by `build.rs`. The same
//! values go to `--version` and to the labels of `tripline_build_info`.

/// Crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Short git revision of the source (`unknown` only when built outside git without
/// `TRIPLINE_GIT_REVISION`).
pub const REVISION: &str = env!("TRIPLINE_GIT_REVISION");
/// UTC build date, RFC 3339 (`SOURCE_DATE_EPOCH` when set).
pub const BUILD_DATE: &str = env!("TRIPLINE_BUILD_DATE");
/// Version of the rustc that built the binary.
pub const RUSTC_VERSION: &str = env!("TRIPLINE_RUSTC_VERSION");

/// The `--version` text (clap prefixes the binary name).
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nrevision:   ",
    env!("TRIPLINE_GIT_REVISION"),
    "\nbuild date: ",
    env!("TRIPLINE_BUILD_DATE"),
    "\nrustc:      ",
    env!("TRIPLINE_RUSTC_VERSION"),
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_recorded() {
        assert!(!REVISION.is_empty());
        assert!(BUILD_DATE.ends_with('Z'), "{BUILD_DATE}");
        assert!(RUSTC_VERSION.split('.').count() >= 3, "{RUSTC_VERSION}");
        assert!(LONG_VERSION.contains(REVISION));
    }
}
