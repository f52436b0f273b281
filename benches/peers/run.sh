#!/usr/bin/env bash
# Peer benchmark: DPDK rte_sched enqueue+dequeue per packet (not part of CI).
#
# Installs Debian's DPDK development packages if they are missing, builds
# rte_sched_bench.c with pkg-config libdpdk, and runs it without hugepages
# (--no-huge --no-shconf), on one lcore. Prints one JSON line per
# configuration on stdout (build and EAL chatter go to stderr).
#
# usage: benches/peers/run.sh [bench args, e.g. --pipes 16,1024,4096 --bursts 32,1
#                              --packets 20000000 --repeats 3 --tc-ov 0|1|both
#                              --backlog 4]
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

bin="$out/rte_sched_bench"
if [[ ! -x "$bin" || "$here/rte_sched_bench.c" -nt "$bin" ]]; then
    # shellcheck disable=SC2046
    cc -O3 -Wall -Wextra -DALLOW_EXPERIMENTAL_API \
        $(pkg-config --cflags libdpdk) \
        -o "$bin" "$here/rte_sched_bench.c" \
        $(pkg-config --libs libdpdk) >&2
fi

echo "DPDK $(pkg-config --modversion libdpdk), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)" >&2

# EAL: one lcore, no hugepages (--no-huge; 22.11 refuses --in-memory with it,
# --no-shconf keeps the runtime config out of /var/run instead), no PCI scan,
# no telemetry socket, quiet logs.
exec "$bin" -l 0 --no-huge --no-shconf -m 1024 --no-pci --no-telemetry \
    --log-level='*:error' -- "$@"
