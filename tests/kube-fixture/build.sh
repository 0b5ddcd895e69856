#!/usr/bin/env bash
# Builds kube-fixture (embedded etcd + kube-apiserver, and `kube-fixture kustomize DIR`
# for rendering kustomizations; see main.go) once and caches it, and beside it kube-proxy
# (go.mod's `tool`, from the same k8s.io/kubernetes version) for the node bed.
# Prints the fixture's path as the last line of stdout; everything else goes to stderr.
#
#   tests/kube-fixture/build.sh            # build if needed, print the path
#   NETCANARY_CACHE=/some/dir build.sh     # cache elsewhere (default ~/.cache/netcanary)
#
# The cache key is a hash of go.mod, go.sum and main.go, so an edit to any of them builds a
# new binary beside the old ones (delete old kube-fixture-* folders by hand when you like).
# Go's own module and build caches (~/go/pkg/mod, ~/.cache/go-build) are used as they are,
# so a rebuild after an edit to main.go mostly only links.
#
# Measured on a 2-core machine (cores shared with other builds, load ~6, under nice),
# Go 1.26.8, with empty module and build caches: 12 min 50 s wall (6.5 min CPU) to download
# 138 modules (~550 MB in the module cache) and compile (~2.2 GB of Go build cache); after
# an edit to main.go only: ~10 s. The binary is 108 MB (stripped with -s -w; 154 MB not).
# A fixture uses ~290 MB of memory and ~125 MB of disk, and is ready ~4 s after start.
# Needs Go >= 1.25 (k8s.io/kubernetes v1.35 requires it) and the Go module proxy.
#
# Checksums: go.sum is committed and complete (written by `go mod tidy`), and the build runs
# with -mod=readonly, so every downloaded module is checked against go.sum and the checksum
# database (sum.golang.org) is never consulted. That matters because this machine reaches
# the module proxy but not sum.golang.org: go.sum was written with GOSUMDB=off, which means
# its hashes are the proxy's, trusted on first use, not cross-checked with the database.
# To change dependencies, edit go.mod and run `GOSUMDB=off go mod tidy` (or plain
# `go mod tidy` where sum.golang.org is reachable, which also verifies them).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../go-cache.sh
source "$here/../go-cache.sh"
go_cache kube-fixture "$here/go.mod" "$here/go.sum" "$here/main.go"

start=$SECONDS
tmp="$out_dir/kube-fixture.tmp.$$"
cd "$here"
# nice: the machine's cores are shared with other builds and tests.
# -buildvcs=false: the module sits inside the netcanary repo; VCS stamping buys nothing here
# and fails where git refuses the checkout's ownership.
nice -n 19 go build -mod=readonly -buildvcs=false -trimpath -ldflags="-s -w" -o "$tmp" . >&2
nice -n 19 go build -mod=readonly -buildvcs=false -trimpath -ldflags="-s -w" -o "$out_dir/kube-proxy.tmp.$$" \
    k8s.io/kubernetes/cmd/kube-proxy >&2
mv "$out_dir/kube-proxy.tmp.$$" "$out_dir/kube-proxy"
# Last: the fixture's presence is what tells a later call the cache is complete.
mv "$tmp" "$bin"
echo "build.sh: built in $((SECONDS - start)) s" >&2
echo "$bin"
