//! The command line of `xlaggctl`, defined once: the binary parses it, and its man page and
//! shell completions are generated from it.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, ValueEnum};

use crate::config::DEFAULT_SOCKET;

const AFTER_HELP: &str = "\
Commands (ifconfig words, in any order after the lagg's name):
  create | destroy | up | down
  laggproto failover|loadbalance|lacp|roundrobin|broadcast|none   (bonding names too)
  laggport IF | -laggport IF          add or remove a member
  lagghash l2,l3,l4 | rr_limit N | mtu N | description TEXT
  lacp_fast_timeout | -lacp_fast_timeout | lacp_strict | -lacp_strict
  lacp_fallback | -lacp_fallback
  ADDR/LEN | ADDR netmask MASK | inet6 ADDR prefixlen LEN   [alias | -alias]
  KEY VALUE for any other [[lagg]] key: updelay 200, min_links 2, lacp_key 5, ...

Other commands:
  xlaggctl                 every lagg, as ifconfig prints it
  xlaggctl dump            the whole runtime state as JSON
  xlaggctl config          the configuration as the daemon holds it (TOML)
  xlaggctl import FILE     an rc.conf's laggs as TOML (--apply: make them live)
  xlaggctl web             the web UI's address, with the API token (root only)
  xlaggctl brief           one line per lagg: state, protocol, active ports, addresses
  xlaggctl laggN explain FIELD=VALUE...
                           which member a flow leaves on now, and why; fields: src_mac,
                           dst_mac, vlan, src_ip, dst_ip, proto, src_port, dst_port (any
                           may be left out)

Examples:
  xlaggctl lagg0 create
  xlaggctl lagg0 laggproto lacp laggport em0 laggport em1 192.168.1.10/24
  xlaggctl lagg0 inet 192.168.1.10 netmask 255.255.255.0
  xlaggctl lagg0 -laggport em1
  xlaggctl -v lagg0
  xlaggctl lagg0 explain src_ip=10.0.0.5 dst_ip=10.0.0.1 proto=tcp src_port=40000 dst_port=2049
  xlaggctl -j
  xlaggctl import /etc/rc.conf --apply
  xlaggctl lagg0 destroy

Exit status: 0 done; 1 refused (each problem on standard error, nothing changed);
2 usage error; 69 the daemon does not answer.";

/// What to generate with `--generate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// The man page (roff).
    Man,
    /// bash completion.
    Bash,
    /// zsh completion.
    Zsh,
    /// fish completion.
    Fish,
}

/// Configure and show xlagg link aggregations, the way ifconfig does for lagg(4).
#[derive(Parser, Debug)]
#[command(name = "xlaggctl", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Print JSON instead of text.
    #[arg(short, long)]
    pub json: bool,
    /// More detail: LACP actor/partner and per-port counters (ifconfig -v).
    #[arg(short, long)]
    pub verbose: bool,
    /// Check a change without applying it.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// With import: apply the imported laggs instead of printing them.
    #[arg(long)]
    pub apply: bool,
    /// The daemon's management socket.
    #[arg(short, long, env = "XLAGG_SOCKET", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Write the man page or a shell completion script to standard output.
    #[arg(long, value_enum, hide = true)]
    pub generate: Option<Generate>,
    /// A lagg (laggN), or dump, config, import, web, brief.
    pub target: Option<String>,
    /// ifconfig words for the lagg (see below), or import's file.
    #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
    pub words: Vec<String>,
}

/// The clap command, for generators.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Writes what `--generate` asks for.
///
/// # Errors
/// Writing failed.
pub fn generate(what: Generate, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut cmd = command();
    match what {
        Generate::Man => clap_mangen::Man::new(cmd).render(out),
        Generate::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "xlaggctl", out);
            Ok(())
        }
        Generate::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "xlaggctl", out);
            Ok(())
        }
        Generate::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, "xlaggctl", out);
            Ok(())
        }
    }
}
