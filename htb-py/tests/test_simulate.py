"""The kernel table of the HTB core issue (README "Parity with Linux"), from Python."""

import pathlib

import pytest

import htb

HEAD = "tc qdisc add dev veth0 root handle 1: htb\n"


def cls(cid, parent, rest):
    return f"tc class add dev veth0 parent {parent} classid {cid} htb {rest}\n"


SCENARIOS = {
    "default quantum": (
        HEAD
        + cls("1:1", "1:", "rate 30mbit")
        + cls("1:10", "1:1", "rate 5mbit ceil 30mbit")
        + cls("1:20", "1:1", "rate 10mbit ceil 30mbit"),
        ["1:10", "1:20"],
        {"1:10": 10.0, "1:20": 20.0, "1:1": 30.0},
    ),
    "quantum 1500": (
        HEAD
        + cls("1:1", "1:", "rate 30mbit")
        + cls("1:10", "1:1", "rate 5mbit ceil 30mbit quantum 1500")
        + cls("1:20", "1:1", "rate 10mbit ceil 30mbit quantum 1500"),
        ["1:10", "1:20"],
        {"1:10": 12.5, "1:20": 17.5},
    ),
    "strict prio": (
        HEAD
        + cls("1:1", "1:", "rate 20mbit")
        + cls("1:10", "1:1", "rate 5mbit ceil 20mbit prio 0")
        + cls("1:20", "1:1", "rate 5mbit ceil 20mbit prio 1"),
        ["1:10", "1:20"],
        {"1:10": 15.0, "1:20": 5.0},
    ),
    "three levels": (
        HEAD
        + cls("1:1", "1:", "rate 30mbit")
        + cls("1:2", "1:1", "rate 15mbit ceil 30mbit")
        + cls("1:21", "1:2", "rate 5mbit ceil 30mbit prio 1")
        + cls("1:22", "1:2", "rate 5mbit ceil 30mbit prio 1")
        + cls("1:10", "1:1", "rate 10mbit ceil 30mbit prio 0"),
        ["1:21", "1:22", "1:10"],
        {"1:21": 7.5, "1:22": 7.5, "1:10": 15.0},
    ),
    "oversubscribed parent": (
        HEAD
        + cls("1:1", "1:", "rate 10mbit ceil 10mbit")
        + cls("1:10", "1:1", "rate 8mbit")
        + cls("1:20", "1:1", "rate 8mbit"),
        ["1:10", "1:20"],
        {"1:1": 16.0, "1:10": 8.0, "1:20": 8.0},
    ),
    "top-level class": (
        HEAD + cls("1:1", "1:", "rate 5mbit ceil 10mbit"),
        ["1:1"],
        {"1:1": 5.0},
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_kernel_table(name):
    script, leaves, expect = SCENARIOS[name]
    flows = "".join(f"{leaf} max 1042\n" for leaf in leaves)
    r = htb.simulate(script, flows)
    for cid, mbit in expect.items():
        got = r.rates[cid] / 1e6
        assert abs(got - mbit) / mbit <= 0.005, f"{name}: {cid} {got:.4f} Mbit/s, kernel {mbit}"


def test_series_shape_and_window():
    script, leaves, _ = SCENARIOS["default quantum"]
    r = htb.simulate(script, "1:10 max 1042\n1:20 max 1042\n", duration="2s", step="250ms", warmup="500ms")
    assert r.classes == ["1:1", "1:10", "1:20"]
    assert len(r.times) == 8
    assert r.times[0] == pytest.approx(0.25) and r.times[-1] == pytest.approx(2.0)
    assert set(r.series) == set(r.classes)
    assert all(len(v) == 8 for v in r.series.values())
    assert all(isinstance(x, float) for x in r.series["1:10"])
    # The steady-state steps sit at the window average.
    assert r.series["1:20"][-1] == pytest.approx(20e6, rel=0.05)
    w = r.window["1:10"]
    assert w["rate"] == r.rates["1:10"]
    assert w["packets"] > 0 and w["bytes"] == w["packets"] * 1042
    assert (r.duration, r.warmup, r.step) == (2.0, 0.5, 0.25)


def test_paths_and_unclassified(tmp_path: pathlib.Path):
    script = tmp_path / "s.tc"
    script.write_text(
        "tc qdisc add dev veth0 root handle 1: htb default 30\n"
        + cls("1:1", "1:", "rate 20mbit")
        + cls("1:10", "1:1", "rate 10mbit ceil 20mbit")
        + cls("1:30", "1:1", "rate 10mbit ceil 20mbit")
    )
    flows = tmp_path / "f.flows"
    flows.write_text("- max 1042  # unclassified\n")
    r = htb.simulate(script, flows, duration=3_000_000_000)
    assert r.rates["1:30"] / 1e6 == pytest.approx(20.0, rel=0.005)
    assert r.direct_rate == 0.0


def test_examples_run(examples: pathlib.Path):
    r = htb.simulate(examples / "home-uplink.tc", examples / "home-uplink.flows", "3s")
    assert r.classes and max(r.rates.values()) > 0


def test_simulate_errors(tmp_path: pathlib.Path):
    script, _, _ = SCENARIOS["top-level class"]
    with pytest.raises(htb.ParseError, match=r"^<script>:1:35: error: unsupported qdisc"):
        htb.simulate("tc qdisc add dev x root handle 1: sfq\n", "")
    with pytest.raises(htb.ParseError, match=r"^<flows>:1:"):
        htb.simulate(script, "1:1 lots 1042\n")
    with pytest.raises(htb.ParseError, match="duration"):
        htb.simulate(script, "", duration="ten seconds")
    with pytest.raises(htb.ConfigError, match="warmup"):
        htb.simulate(script, "", duration="1s", warmup="2s")
    with pytest.raises(htb.ConfigError, match="step"):
        htb.simulate(script, "", step="1ns")
    with pytest.raises(htb.ConfigError):
        htb.simulate(script, "", duration=0)
    with pytest.raises(TypeError):
        htb.simulate(script, 42)
    with pytest.raises(TypeError):
        htb.simulate(script, "", duration=1.5)
    with pytest.raises(FileNotFoundError):
        htb.simulate(tmp_path / "missing.tc", "")
    with pytest.raises(ValueError):  # HtbError is a ValueError
        htb.simulate("", "")
