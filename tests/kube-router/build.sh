#!/usr/bin/env bash
# Builds kube-router (github.com/cloudnativelabs/kube-router/v2, the version go.mod names)
# from the Go module proxy once and caches it: the node's NetworkPolicy controller in the
# end-to-end node bed (tests/common/node.rs). A test component only, never shipped.
# Prints the binary's path as the last line of stdout; everything else goes to stderr.
#
#   tests/kube-router/build.sh             # build if needed, print the path
#   NETCANARY_CACHE=/some/dir build.sh     # cache elsewhere (default ~/.cache/netcanary)
#
# The cache key is a hash of go.mod, go.sum and this script (which holds the build flags),
# so a change to any of them builds a new binary beside the old ones.
#
# go.mod holds kube-router as a `tool`, with the dependency versions kube-router v2.1.0 was
# released with. Its own go.mod leaves out a few modules that only its dependencies' other
# build configurations import (Windows terminal code, an OpenTelemetry exporter); go.mod
# pins those to versions of the same months, where `go mod tidy` alone would pull today's,
# and with them newer gRPC, x/net and protobuf than kube-router was built and tested with.
# v2.1.0 is the newest version the module proxy serves whole from this machine (later tags
# answer "not available").
#
# Checksums: go.sum is complete and the build runs with -mod=readonly, as for
# tests/kube-fixture (see its build.sh): written with GOSUMDB=off, trusted on first use.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../go-cache.sh
source "$here/../go-cache.sh"
go_cache kube-router "$here/go.mod" "$here/go.sum" "${BASH_SOURCE[0]}"

start=$SECONDS
tmp="$out_dir/kube-router.tmp.$$"
cd "$here"
version="$(awk '$1 == "github.com/cloudnativelabs/kube-router/v2" { print $2 }' go.mod)"
# What kube-router's own Makefile stamps; `kube-router --version` prints it.
ldflags="-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$version"
ldflags+=" -X github.com/cloudnativelabs/kube-router/v2/pkg/version.BuildDate=module-proxy"
# nice: the machine's cores are shared with other builds and tests.
nice -n 19 go build -mod=readonly -buildvcs=false -trimpath -ldflags="$ldflags" -o "$tmp" \
    github.com/cloudnativelabs/kube-router/v2/cmd/kube-router >&2
mv "$tmp" "$bin"
echo "build.sh: built in $((SECONDS - start)) s" >&2
echo "$bin"
