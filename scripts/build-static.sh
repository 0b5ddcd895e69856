#!/usr/bin/env bash
# Builds netcanary's release binary statically linked, so that it runs in an image that
# holds nothing else (the Dockerfile) and in an empty root (tests/static_binary.rs).
# Prints the binary's absolute path as the last line of stdout; cargo's output goes to stderr.
#
#   scripts/build-static.sh                  # into target/static
#   scripts/build-static.sh /some/target     # into another cargo target directory
#
# glibc, linked statically (static-pie), rather than musl: the build needs no Rust target
# beyond the host's (all that rust:*-bookworm carries), and
# glibc >= 2.34 carries the `files` and `dns` name-service modules inside libc, so a static
# binary still resolves names through /etc/hosts and /etc/resolv.conf without loading any
# shared library. `--target` is named even though it is the host's, so that RUSTFLAGS reach
# only netcanary's own code and not build scripts and proc-macros, which must stay dynamic.
#
# The getrandom crate (behind hickory's and kube-runtime's random numbers) looks glibc's
# getrandom() up with dlsym, which finds nothing in a static binary, and then falls back to
# reading /dev/urandom; `getrandom_backend="linux_getrandom"` calls getrandom() directly, as
# the dynamic build ends up doing, so the binary needs no /dev at all.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="$(realpath -m "${1:-$root/target/static}")"
cargo="${CARGO:-cargo}"
triple="$("${RUSTC:-rustc}" -vV | sed -n 's/^host: //p')"
if [[ $triple != *-linux-gnu ]]; then
    echo "build-static.sh: host $triple is not a glibc Linux target; build on one (e.g. the rust:*-bookworm image)" >&2
    exit 1
fi

cd "$root"
# Cargo prefers CARGO_ENCODED_RUSTFLAGS to RUSTFLAGS; one left in the environment would drop
# +crt-static without a word.
unset CARGO_ENCODED_RUSTFLAGS
RUSTFLAGS='-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"' \
    "$cargo" build --release --locked --bin netcanary --target "$triple" --target-dir "$target_dir" >&2
echo "$target_dir/$triple/release/netcanary"
