#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): installs what the tests need
# on a fresh Debian machine, then checks formatting and lints, and runs every test.
#
# As root, the network-namespace tests are required to run (NETCANARY_REQUIRE_NETNS=1);
# as another user they report SKIPPED with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests drive: ip/bridges/veth, nftables, a DNS server, the by-hand
# tools the prober benchmark compares against, the monitoring the alerts and the
# dashboard are tested on (Prometheus with promtool, Pushgateway, Alertmanager), and what
# the node bed's kube-router and kube-proxy run (iptables, ipset, conntrack).
packages=(iproute2 nftables dnsmasq-base curl netcat-openbsd procps time prometheus prometheus-pushgateway prometheus-alertmanager iptables ipset conntrack)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" -eq 0 ]; then
        echo "==> installing ${missing[*]}"
        # The monitoring packages start their daemons on fixed ports unless policy-rc.d
        # says no; the tests start their own on free ports.
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod +x /usr/sbin/policy-rc.d
            trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "==> not root: cannot install ${missing[*]}; the tests that need them report SKIPPED"
    fi
fi

if [ "$(id -u)" -eq 0 ]; then
    export NETCANARY_REQUIRE_NETNS=1
    export NETCANARY_REQUIRE_MONITORING=1
else
    echo "==> not root: network-namespace and monitoring tests will report SKIPPED"
fi

# The tests that need a real API server run the kube-apiserver fixture (tests/kube-fixture),
# built from the Go module proxy and cached; with Go installed they are required to run.
if command -v go >/dev/null; then
    echo "==> building the kube-apiserver fixture (minutes the first time, cached after)"
    NETCANARY_KUBE_FIXTURE="$(bash tests/kube-fixture/build.sh | tail -n 1)"
    export NETCANARY_KUBE_FIXTURE
    echo "==> building kube-router for the node bed (minutes the first time, cached after)"
    NETCANARY_KUBE_ROUTER="$(bash tests/kube-router/build.sh | tail -n 1)"
    export NETCANARY_KUBE_ROUTER
    export NETCANARY_REQUIRE_KUBE=1
else
    echo "==> no Go: kube-apiserver tests will report SKIPPED"
fi

# A clean checkout gains nothing from incremental compilation, and its caches would double
# the build's footprint on disk.
export CARGO_INCREMENTAL=0

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked
