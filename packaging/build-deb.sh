#!/usr/bin/env bash
# Builds the Debian package: target/debian/resctl_<version>-1_<arch>.deb.
#
# Usage: packaging/build-deb.sh
#
# Installs cargo-deb (`cargo install cargo-deb --locked`) when missing, builds the release
# binary, generates the man page and the bash/zsh/fish completions from the binary's own
# command-line definition into target/assets/, and packs what [package.metadata.deb] in
# Cargo.toml lists: /usr/bin/resctl, the units in /usr/lib/systemd/system, the example
# configuration as the conffile /etc/resctl/resctl.yaml, the man page, the completions and
# the documentation. Prints the package's path last.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
    echo "packaging/build-deb.sh: $*" >&2
    exit 1
}

if ! cargo deb --version >/dev/null 2>&1; then
    echo "packaging/build-deb.sh: installing cargo-deb" >&2
    cargo install cargo-deb --locked || die "could not install cargo-deb"
fi
unset CARGO_TARGET_DIR # the assets' paths are relative to ./target
cargo build --release --bin resctl || die "the release build failed"
binary=target/release/resctl
mkdir -p target/assets
"$binary" man | gzip -9n >target/assets/resctl.1.gz
"$binary" completions bash >target/assets/resctl.bash
"$binary" completions zsh >target/assets/_resctl
"$binary" completions fish >target/assets/resctl.fish
output=$(cargo deb --no-build --no-strip 2>&1) || die "cargo deb failed: $output"
package=$(printf '%s\n' "$output" | grep -E '\.deb$' | tail -n 1)
[[ -f $package ]] || die "cargo deb printed no package path: $output"
echo "$package"
