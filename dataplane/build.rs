//! Builds the XDP programs (`ebpf/xdp`) for the BPF target with the pinned nightly and
//! bpf-linker (see scripts/setup.sh); the objects are embedded with `include_bytes_aligned!`.
//!
//! Without that toolchain (or with `XLAGG_NO_EBPF=1`) the objects are written empty, so that
//! everything else (the control plane, the LACP simulations, the configuration parser, the
//! CLI, every unit test) builds and runs on stable Rust alone; loading a program from such a
//! build fails at run time and says how to get the real ones.

use std::path::{Path, PathBuf};

/// The objects the crate embeds (one per binary of `ebpf/xdp`).
const OBJECTS: [&str; 3] = ["xlagg-xdp", "xlagg-engine", "xlagg-bench-xdp"];

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=XLAGG_NO_EBPF");
    println!("cargo:rerun-if-env-changed=CI");
    let toolchain = option_env!("XLAGG_NIGHTLY").unwrap_or("nightly-2026-07-01");
    let skip = if std::env::var_os("XLAGG_NO_EBPF").is_some_and(|v| v == "1") {
        Some("XLAGG_NO_EBPF=1".to_string())
    } else {
        missing_toolchain(toolchain)
    };
    // CI builds the real thing or fails: a suite of stubs would only fail later, less clearly.
    if let Some(why) = skip
        .as_deref()
        .filter(|_| std::env::var_os("CI").is_some_and(|v| v == "true"))
    {
        if why != "XLAGG_NO_EBPF=1" {
            anyhow::bail!("CI=true and {why}: run scripts/setup.sh first");
        }
    }
    if let Some(why) = skip {
        let out = PathBuf::from(std::env::var("OUT_DIR")?);
        for name in OBJECTS {
            std::fs::write(out.join(name), b"")?;
        }
        println!(
            "cargo:warning=built without the eBPF programs ({why}): xlaggd cannot attach anything; \
             run scripts/setup.sh and build again for the real ones"
        );
        // Looked at again once bpf-linker appears.
        if let Some(bin) = cargo_bin() {
            println!(
                "cargo:rerun-if-changed={}",
                bin.join("bpf-linker").display()
            );
        }
        return Ok(());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
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
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "xlagg-xdp",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(toolchain),
    )
}

/// Why the eBPF objects cannot be built here, if they cannot: bpf-linker is not installed,
/// or the pinned nightly is not.
fn missing_toolchain(toolchain: &str) -> Option<String> {
    let cargo_bin = cargo_bin();
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(cargo_bin.clone())
            .any(|dir| dir.join(name).is_file())
    };
    if !on_path("bpf-linker") {
        return Some("bpf-linker is not installed".into());
    }
    let listed = std::process::Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if !listed.lines().any(|l| l.starts_with(toolchain)) {
        return Some(format!("the {toolchain} toolchain is not installed"));
    }
    None
}

/// Where `cargo install` puts binaries.
fn cargo_bin() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|c| c.join("bin"))
}
