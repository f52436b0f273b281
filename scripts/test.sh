#!/usr/bin/env bash
# Runs every test of the workspace: formatting and lints, Rust unit,
# integration and doc tests, the C ABI tests (in real C, under valgrind),
# the Python bindings' pytest suite, the benchmarks in test mode, and the comparisons
# with the live Linux kernel (which skip, saying why, where network
# namespaces are not available).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# The C tests run under valgrind; a fresh machine may not have it.
if ! command -v valgrind >/dev/null 2>&1; then
    step "installing valgrind (apt)"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind) ||
            echo "warning: could not install valgrind; the C tests will run without it"
    else
        echo "warning: valgrind missing and apt-get unusable; the C tests will run without it"
    fi
fi

# Debug builds keep line tables only: backtraces still name file and line,
# and the debug target is about a third of its full-debuginfo size. CI disks
# are shared; a full run once failed there with "No space left on device".
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
free_kib=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ "${free_kib:-0}" -lt $((4 * 1024 * 1024)) ]; then
    echo "warning: only $((free_kib / 1024)) MiB free on $(df -P . | awk 'NR == 2 { print $6 }');" \
        "a full run needs about 3 GiB (target/ and the Python build)"
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (unit, integration, property, benches in test mode)"
# The C tests link libhtb.a/.so, which cargo test does not build by itself
# (htb-ffi has no Rust lib target): build them first.
cargo build -p htb-ffi
cargo test --workspace --all-targets

step "doc tests"
cargo test --workspace --doc

step "Python bindings (virtualenv, maturin wheel, pytest)"
bash scripts/test-python.sh

step "kernel comparisons (live Linux HTB as the oracle)"
cargo test -p htb --test kernel_oracle -- --ignored --nocapture --test-threads=1
cargo test -p htb-cli --test kernel_conformance -- --ignored --nocapture --test-threads=1
cargo test -p htb --test fib_kernel_oracle -- --ignored --nocapture --test-threads=1
cargo test -p htb --test reasm_kernel_oracle -- --ignored --nocapture --test-threads=1

step "all tests passed"
