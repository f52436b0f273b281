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

# shellcheck source=dpdk_peer.sh
source "$(dirname "${BASH_SOURCE[0]}")/dpdk_peer.sh"
dpdk_peer_run rte_lpm_bench "$@"
