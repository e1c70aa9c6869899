//! Builds the XDP program (`ebpf/xdp`) for the BPF target with the pinned nightly and
//! bpf-linker (see scripts/setup.sh); the object is embedded with `include_bytes_aligned!`.
fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow::anyhow!("dataplane has no parent directory"))?
        .join("ebpf/xdp");
    let root = root
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 path to ebpf/xdp"))?;
    println!("cargo:rerun-if-changed={root}/src");
    println!("cargo:rerun-if-changed={root}/../common/src");
    // aya-build runs `cargo build --package xlagg-xdp` in the current directory; the eBPF crate
    // is its own workspace (kept out of the main one so stable cargo never builds it for the
    // host), so run it from there.
    std::env::set_current_dir(root)?;
    let toolchain = option_env!("XLAGG_NIGHTLY").unwrap_or("nightly-2026-07-01");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "xlagg-xdp",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(toolchain),
    )
}
