#!/usr/bin/env bash
# The Python bindings (htb-py), exactly as CI runs them on a fresh machine
# with only Python >= 3.9 (3.11 in CI) and the Rust toolchain: a virtualenv,
# maturin + pytest + hypothesis from PyPI, `pip install ./htb-py` (a PEP 517
# build of the abi3 wheel), then the pytest suite.
#
#   bash scripts/test-python.sh            # from anywhere; reuses .venv
#   PYTHON=python3.12 bash scripts/test-python.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check "maturin>=1.9.4,<2" pytest hypothesis

# The wheel build uses the workspace's release profile minus fat LTO and one
# codegen unit (those are for the shaper's benchmarks, and would make this
# build several times slower); its own target dir keeps the workspace's
# release artefacts untouched and this build incremental across runs.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_PY:-$PWD/target/python}"
export CARGO_PROFILE_RELEASE_LTO=false
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
"$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps ./htb-py

# pytest exits 5 when it collects nothing: that is a failure here too.
"$VENV/bin/python" -m pytest -q -p no:cacheprovider htb-py/tests
