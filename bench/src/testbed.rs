//! Driving `scripts/testbed.sh` from Rust: a [`Bed`] builds the namespaces on creation and
//! removes them on drop, so a failing benchmark or test leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// A file in the temporary directory, removed on drop (configurations given to xlaggd).
#[derive(Debug)]
pub struct TempFile(pub PathBuf);

impl TempFile {
    /// Writes `text` to `name` in the temporary directory.
    ///
    /// # Errors
    /// Writing failed.
    pub fn write(name: &str, text: &str) -> Result<TempFile> {
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text)?;
        Ok(TempFile(path))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A binary built next to the running one (e.g. `xlaggd` beside `xlagg-bench`).
///
/// # Errors
/// When it is not there, saying how to build it.
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let path = std::env::current_exe()
        .context("own path")?
        .with_file_name(name);
    if !path.exists() {
        bail!(
            "{} is missing: build the workspace (cargo build --release --workspace)",
            path.display()
        );
    }
    Ok(path)
}

/// One test bed: namespaces `xl-ID-{src,app,ptr}` with `members` member veth pairs.
#[derive(Debug)]
pub struct Bed {
    /// The bed's ID (part of every namespace name).
    pub id: String,
    /// Number of member ports.
    pub members: usize,
    script: PathBuf,
}

impl Bed {
    /// Builds a bed with the script at `script`.
    ///
    /// # Errors
    /// When the script is missing or fails (it removes what it made).
    pub fn up(script: &Path, id: &str, members: usize, bridge: bool) -> Result<Bed> {
        Self::up_with_queues(script, id, members, bridge, 1)
    }

    /// Like [`up`](Self::up), with `queues` transmit and receive queues on every veth.
    ///
    /// # Errors
    /// As for `up`.
    pub fn up_with_queues(
        script: &Path,
        id: &str,
        members: usize,
        bridge: bool,
        queues: usize,
    ) -> Result<Bed> {
        if !script.exists() {
            bail!(
                "{} not found: run from the repository root or pass --testbed",
                script.display()
            );
        }
        let mut cmd = Command::new(script);
        cmd.env("XL_QUEUES", queues.to_string());
        cmd.args(["up", id, &members.to_string()]);
        if bridge {
            cmd.arg("bridge");
        }
        let out = cmd
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!(
                "test bed {id} could not be built: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Bed {
            id: id.to_string(),
            members,
            script: script.to_path_buf(),
        })
    }

    /// The namespace of `role` (`src`, `app` or `ptr`).
    pub fn ns(&self, role: &str) -> String {
        format!("xl-{}-{role}", self.id)
    }

    /// A command run inside namespace `role`.
    pub fn exec(&self, role: &str, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(role)]).arg(program);
        cmd
    }

    /// Runs `ip -n NS ARGS` and returns its output.
    ///
    /// # Errors
    /// When `ip` fails.
    pub fn ip(&self, role: &str, args: &[&str]) -> Result<String> {
        let out = Command::new("ip")
            .args(["-n", &self.ns(role)])
            .args(args)
            .output()
            .context("running ip")?;
        if !out.status.success() {
            bail!(
                "ip -n {} {}: {}",
                self.ns(role),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Sets interface `iface` of namespace `role` up or down.
    ///
    /// # Errors
    /// When `ip` fails.
    pub fn set_link(&self, role: &str, iface: &str, up: bool) -> Result<()> {
        self.ip(
            role,
            &["link", "set", iface, if up { "up" } else { "down" }],
        )
        .map(|_| ())
    }

    /// Kernel packet counters of every interface in namespace `role`: name -> (rx, tx).
    ///
    /// # Errors
    /// When `ip` fails or prints something unexpected.
    pub fn packet_counters(&self, role: &str) -> Result<Vec<(String, u64, u64)>> {
        let text = self.ip(role, &["-j", "-s", "link", "show"])?;
        let links: serde_json::Value =
            serde_json::from_str(&text).context("parsing ip -j output")?;
        let mut out = Vec::new();
        for link in links.as_array().map(Vec::as_slice).unwrap_or_default() {
            let name = link["ifname"].as_str().unwrap_or_default().to_string();
            let stats = &link["stats64"];
            let rx = stats["rx"]["packets"].as_u64().unwrap_or(0);
            let tx = stats["tx"]["packets"].as_u64().unwrap_or(0);
            out.push((name, rx, tx));
        }
        Ok(out)
    }

    /// Frames `iface` in namespace `role` has sent: transmitted plus transmit drops. On veth
    /// a frame that the receiving side's queue refuses is a transmit drop of the sender, and
    /// the transmit count only holds what the receiver took.
    ///
    /// # Errors
    /// When `ip` fails or prints something unexpected.
    pub fn sent(&self, role: &str, iface: &str) -> Result<u64> {
        let text = self.ip(role, &["-j", "-s", "link", "show", "dev", iface])?;
        let links: serde_json::Value =
            serde_json::from_str(&text).context("parsing ip -j output")?;
        let tx = &links[0]["stats64"]["tx"];
        match (tx["packets"].as_u64(), tx["dropped"].as_u64()) {
            (Some(packets), Some(dropped)) => Ok(packets + dropped),
            _ => anyhow::bail!("no transmit counters for {iface} in {text}"),
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = Command::new(&self.script).args(["down", &self.id]).status();
    }
}

/// The index of interface `name` in this namespace.
///
/// # Errors
/// No such interface.
pub fn ifindex(name: &str) -> Result<u32> {
    crate::packet_tools::ifindex(name)
}
