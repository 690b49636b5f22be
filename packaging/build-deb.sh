#!/usr/bin/env bash
# Builds target/debian/vfiotool_*.deb (or target/<triple>/debian/): the release binary as
# packaging/release-build.sh builds it (static on x86-64), plus the man page and shell
# completions generated from the CLI definition by the binary itself.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "build-deb: cargo install cargo-deb"
  cargo install cargo-deb --locked --quiet
fi
bin="$(bash packaging/release-build.sh)"
case "$bin" in
  */x86_64-unknown-linux-gnu/release/vfiotool) deb_target=(--target x86_64-unknown-linux-gnu) ;;
  *) deb_target=() ;;
esac
rm -rf target/assets && mkdir -p target/assets/man
"$bin" manpage --out target/assets/man >/dev/null
gzip -9n target/assets/man/*.1
"$bin" completions bash > target/assets/vfiotool.bash
"$bin" completions zsh > target/assets/_vfiotool
"$bin" completions fish > target/assets/vfiotool.fish
cargo deb --no-build --quiet "${deb_target[@]}"
if [ "${#deb_target[@]}" -gt 0 ]; then
  ls target/x86_64-unknown-linux-gnu/debian/vfiotool_*.deb
else
  ls target/debian/vfiotool_*.deb
fi
