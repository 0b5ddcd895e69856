# Sourced by the build.sh of each test component built with Go (tests/kube-fixture,
# tests/kube-router): where its binary is cached, and the start every such build shares.
#
#   go_cache NAME FILE...
#
# Sets `out_dir` (${NETCANARY_CACHE:-~/.cache/netcanary}/NAME-HASH, HASH from the FILEs,
# so an edit to any of them builds a new binary beside the old ones) and `bin`
# ($out_dir/NAME). When the binary is already there, prints its path and exits; otherwise
# takes the folder's lock (tests running in parallel may all ask at once: one builds, the
# others wait for it and then find the binary) and returns, for the caller to build `bin`.
go_cache() {
    local name=$1
    shift
    local hash
    hash="$(cat "$@" | sha256sum | cut -c1-16)"
    out_dir="${NETCANARY_CACHE:-$HOME/.cache/netcanary}/$name-$hash"
    bin="$out_dir/$name"
    if [[ -x $bin ]]; then
        echo "$bin"
        exit 0
    fi
    if ! command -v go >/dev/null; then
        echo "build.sh: go is not on PATH (needs Go >= 1.25)" >&2
        exit 127
    fi
    mkdir -p "$out_dir"
    exec 9>"$out_dir/.lock"
    flock 9
    if [[ -x $bin ]]; then
        echo "$bin"
        exit 0
    fi
    echo "build.sh: building $name into $out_dir (a cold build takes minutes)" >&2
}
