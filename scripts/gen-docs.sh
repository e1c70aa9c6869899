#!/usr/bin/env bash
# Regenerates the man page and shell completions of xlaggctl from its command-line definition
# (control/src/mgmt/cli.rs). A test fails when the committed files differ from what this writes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p xlagg-control --bin xlaggctl
bin=target/debug/xlaggctl
"$bin" --generate man > dist/man/xlaggctl.1
for shell in bash zsh fish; do
  "$bin" --generate "$shell" > "dist/completions/xlaggctl.$shell"
done
echo "dist/man/xlaggctl.1 and dist/completions/xlaggctl.{bash,zsh,fish} written"
