#!/usr/bin/env bash
# Builds target/debian/vfiotool_*.deb: the release binary, plus the man page and shell
# completions generated from the CLI definition by the binary itself.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "build-deb: cargo install cargo-deb"
  cargo install cargo-deb --locked --quiet
fi
cargo build --release --quiet
bin=target/release/vfiotool
rm -rf target/assets && mkdir -p target/assets/man
"$bin" manpage --out target/assets/man >/dev/null
gzip -9n target/assets/man/*.1
"$bin" completions bash > target/assets/vfiotool.bash
"$bin" completions zsh > target/assets/_vfiotool
"$bin" completions fish > target/assets/vfiotool.fish
cargo deb --no-build --quiet
ls target/debian/vfiotool_*.deb
