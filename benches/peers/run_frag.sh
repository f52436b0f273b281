#!/usr/bin/env bash
# Peer benchmark: DPDK librte_ip_frag IPv4 reassembly and fragmentation per
# fragment (not part of CI), next to `cargo bench -p htb-benches --bench reasm`
# and `htb bench reasm|frag`.
#
# Installs Debian's DPDK development packages if they are missing, builds
# rte_ip_frag_bench.c with pkg-config libdpdk, and runs it without hugepages
# (--no-huge --no-shconf), on one lcore. Prints one JSON line per
# configuration on stdout (build and EAL chatter go to stderr).
#
# usage: benches/peers/run_frag.sh [bench args, e.g. --sizes 4000,8000 --mtu 1500
#                                   --interleave 1,256 --datagrams 200000 --repeats 5
#                                   --ops reassemble,frag_copy,frag_zerocopy]
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

bin="$out/rte_ip_frag_bench"
if [[ ! -x "$bin" || "$here/rte_ip_frag_bench.c" -nt "$bin" ]]; then
    # ALLOW_EXPERIMENTAL_API: rte_ipv4_fragment_copy_nonseg_packet is
    # experimental in 22.11.
    # shellcheck disable=SC2046
    cc -O3 -Wall -Wextra -DALLOW_EXPERIMENTAL_API \
        $(pkg-config --cflags libdpdk) \
        -o "$bin" "$here/rte_ip_frag_bench.c" \
        $(pkg-config --libs libdpdk) >&2
fi

echo "DPDK $(pkg-config --modversion libdpdk), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)" >&2

# EAL as for run.sh: one lcore, no hugepages, no shared config, no PCI scan,
# no telemetry socket, quiet logs.
exec "$bin" -l 0 --no-huge --no-shconf -m 1024 --no-pci --no-telemetry \
    --log-level='*:error' -- "$@"
