//! Builds the eBPF probes (crate `tripline-ebpf`) with the nightly toolchain and embeds the object.
fn main() -> anyhow::Result<()> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../exporter-ebpf");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "tripline-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
