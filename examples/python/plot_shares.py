#!/usr/bin/env python3
"""Simulate an example tc script from Python and plot each class's share.

    pip install ./htb-py            # once; matplotlib is optional
    python examples/python/plot_shares.py                    # home uplink
    python examples/python/plot_shares.py examples/three-level.tc examples/three-level.flows \
        --duration 20s --out three-level.png

With matplotlib installed it draws the per-class rates over time to --out
(PNG/SVG/PDF by extension); without it, it prints the window averages and a
per-second table instead.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import htb

EXAMPLES = pathlib.Path(__file__).resolve().parents[1]


def leaves(q: htb.Qdisc) -> list[str]:
    return [cid for cid, st in q.stats().items() if st.leaf]


def print_table(r: htb.SimResult, classes: list[str]) -> None:
    print(f"achieved rates, Mbit/s (window {r.warmup:g}..{r.duration:g} s)")
    print("  ".join(f"{c:>8}" for c in ["class"] + classes))
    print("  ".join(f"{x:>8}" for x in ["average"] + [f"{r.rates[c] / 1e6:.3f}" for c in classes]))
    per_second = max(1, round(1.0 / r.step))
    for i in range(per_second - 1, len(r.times), per_second):
        # Average of the steps of that second.
        row = [sum(r.series[c][i - per_second + 1 : i + 1]) / per_second / 1e6 for c in classes]
        print("  ".join([f"{r.times[i]:>7g}s"] + [f"{x:8.3f}" for x in row]))


def plot(r: htb.SimResult, classes: list[str], out: str, title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.stackplot(r.times, [[v / 1e6 for v in r.series[c]] for c in classes], labels=classes, step="pre")
    ax.axvspan(0, r.warmup, color="grey", alpha=0.15, label="warm-up")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("Mbit/s")
    ax.set_title(title)
    ax.set_xlim(0, r.duration)
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(out)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("script", nargs="?", type=pathlib.Path, default=EXAMPLES / "home-uplink.tc")
    p.add_argument("flows", nargs="?", type=pathlib.Path, default=EXAMPLES / "home-uplink.flows")
    p.add_argument("--duration", default="10s")
    p.add_argument("--step", default="100ms")
    p.add_argument("--out", default="shares.png", help="plot file (needs matplotlib)")
    p.add_argument("--table", action="store_true", help="print the table even with matplotlib")
    a = p.parse_args(argv)

    try:
        # The shares of the leaves: they add up to what the link carried.
        classes = leaves(htb.Qdisc.from_tc(a.script.read_text()))
        r = htb.simulate(a.script, a.flows, a.duration, a.step)
    except (htb.HtbError, OSError) as e:
        print(f"plot_shares: {e}", file=sys.stderr)
        return 2
    if a.table or not plot(r, classes, a.out, f"{a.script.name} + {a.flows.name}"):
        print_table(r, classes)
    else:
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
