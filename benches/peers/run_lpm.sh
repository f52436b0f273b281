#!/usr/bin/env bash
# Peer benchmark: DPDK rte_lpm (DIR-24-8) insert and lookup (not part of CI), next to
# `htb bench fib` on the same files.
#
# Installs Debian's DPDK development packages if they are missing, builds
# rte_lpm_bench.c with pkg-config libdpdk, and runs it without hugepages
# (--no-huge --no-shconf), on one lcore. Prints one JSON line per round on
# stdout (build and EAL chatter go to stderr). rte_lpm cannot hold a /0
# route: such lines are skipped and counted ("skipped_default").
#
# usage: benches/peers/run_lpm.sh --routes ROUTES --addrs ADDRS [--rounds N]
#                                  [--between CMD] [--answers FILE]
#   (the files of `htb bench fib`; `cargo run --release -p htb-benches
#   --example fib_dump -- DIR` writes the criterion bench's 1M IPv4 table
#   and addresses as DIR/routes4.txt and DIR/addrs4.txt). Side by side,
#   alternating with our bench under the same load (5 rounds, one build):
#   run_lpm.sh --routes R --addrs A --rounds 5 \
#       --between "htb bench fib --routes R --addrs A")
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${PEER_BUILD_DIR:-$here/../../target/peers}"
mkdir -p "$out"

if ! pkg-config --exists libdpdk 2>/dev/null; then
    echo "installing libdpdk-dev (Debian) ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends libdpdk-dev pkg-config >&2
fi

bin="$out/rte_lpm_bench"
if [[ ! -x "$bin" || "$here/rte_lpm_bench.c" -nt "$bin" ]]; then
    # shellcheck disable=SC2046
    cc -O3 -Wall -Wextra -DALLOW_EXPERIMENTAL_API \
        $(pkg-config --cflags libdpdk) \
        -o "$bin" "$here/rte_lpm_bench.c" \
        $(pkg-config --libs libdpdk) >&2
fi

echo "DPDK $(pkg-config --modversion libdpdk), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)" >&2

# EAL: one lcore, no hugepages (--no-huge; 22.11 refuses --in-memory with it,
# --no-shconf keeps the runtime config out of /var/run instead), no PCI scan,
# no telemetry socket, quiet logs.
exec "$bin" -l 0 --no-huge --no-shconf -m 1024 --no-pci --no-telemetry \
    --log-level='*:error' -- "$@"
