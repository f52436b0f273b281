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

# shellcheck source=dpdk_peer.sh
source "$(dirname "${BASH_SOURCE[0]}")/dpdk_peer.sh"
dpdk_peer_run rte_sched_bench "$@"
