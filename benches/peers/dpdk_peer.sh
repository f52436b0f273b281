# Sourced by the peer scripts (run.sh, run_frag.sh, run_lpm.sh): what every
# DPDK peer needs. `dpdk_peer_run NAME ARGS...` installs Debian's DPDK
# development packages if they are missing, builds NAME.c (next to this file)
# with pkg-config libdpdk when the binary is missing or older than the
# source, and runs it on one lcore without hugepages, ARGS after the EAL's.
# Build and EAL chatter go to stderr. PEER_BUILD_DIR: where binaries go
# (default target/peers).

dpdk_peer_run() {
    local name="$1"
    shift
    local here out bin
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    out="${PEER_BUILD_DIR:-$here/../../target/peers}"
    mkdir -p "$out"

    if ! pkg-config --exists libdpdk 2>/dev/null; then
        echo "installing libdpdk-dev (Debian) ..." >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends libdpdk-dev pkg-config >&2
    fi

    bin="$out/$name"
    if [[ ! -x "$bin" || "$here/$name.c" -nt "$bin" || "$here/peer_common.h" -nt "$bin" ]]; then
        # ALLOW_EXPERIMENTAL_API: some calls (e.g.
        # rte_ipv4_fragment_copy_nonseg_packet) are experimental in 22.11.
        # shellcheck disable=SC2046
        cc -O3 -Wall -Wextra -DALLOW_EXPERIMENTAL_API \
            $(pkg-config --cflags libdpdk) \
            -o "$bin" "$here/$name.c" \
            $(pkg-config --libs libdpdk) >&2
    fi

    echo "DPDK $(pkg-config --modversion libdpdk), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)" >&2

    # EAL: one lcore, no hugepages (--no-huge; 22.11 refuses --in-memory with
    # it, --no-shconf keeps the runtime config out of /var/run instead), no
    # PCI scan, no telemetry socket, quiet logs.
    exec "$bin" -l 0 --no-huge --no-shconf -m 1024 --no-pci --no-telemetry \
        --log-level='*:error' -- "$@"
}
