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

# shellcheck source=dpdk_peer.sh
source "$(dirname "${BASH_SOURCE[0]}")/dpdk_peer.sh"
dpdk_peer_run rte_ip_frag_bench "$@"
