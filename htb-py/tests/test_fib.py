"""The FIB against a naive longest-prefix match built on `ipaddress`."""

import ipaddress
import pathlib
import random
import threading

import pytest

import htb

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is optional
    given = None


def naive_lookup(routes, addr):
    """smoltcp's route lookup: filter(contains).max_by_key(prefix_len)."""
    addr = ipaddress.ip_address(addr)
    best = None
    for net, value in routes.items():
        if net.version == addr.version and addr in net:
            if best is None or net.prefixlen > best[0].prefixlen:
                best = (net, value)
    return None if best is None else (str(best[0]), best[1])


def random_net(rnd, v6=False):
    bits = 128 if v6 else 32
    # Cluster the prefixes so that they nest often.
    top = rnd.choice([0x0A, 0xC0, 0x20]) << (bits - 8)
    length = rnd.choice([0, 1, 7, 8, 12, 16, 20, 23, 24, 25, 31, bits] + list(range(0, bits + 1, 4)))
    raw = top | rnd.getrandbits(bits - 8)
    cls = ipaddress.IPv6Network if v6 else ipaddress.IPv4Network
    return cls((raw, length), strict=False)


def random_addr(rnd, nets, v6=False):
    bits = 128 if v6 else 32
    if nets and rnd.random() < 0.7:
        n = rnd.choice(nets)
        if n.version == (6 if v6 else 4):
            return n.network_address + rnd.getrandbits(n.max_prefixlen - n.prefixlen)
    top = rnd.choice([0x0A, 0xC0, 0x20, 0x7F]) << (bits - 8)
    return ipaddress.ip_address(top | rnd.getrandbits(bits - 8)) if not v6 else ipaddress.IPv6Address(top | rnd.getrandbits(bits - 8))


@pytest.mark.parametrize("seed", range(12))
def test_matches_naive_lpm_on_random_tables(seed):
    rnd = random.Random(seed)
    fib, ref = htb.Fib(), {}
    for i in range(rnd.randrange(1, 300)):
        net = random_net(rnd, v6=rnd.random() < 0.3)
        key = rnd.choice([str(net), net])
        fib[key] = i
        ref[net] = i
    # Deletions, through both spellings.
    for net in rnd.sample(list(ref), len(ref) // 4):
        del fib[str(net) if rnd.random() < 0.5 else net]
        del ref[net]
    assert len(fib) == len(ref)
    assert set(fib) == {str(n) for n in ref}
    nets = list(ref)
    addrs = [random_addr(rnd, nets, v6=rnd.random() < 0.3) for _ in range(500)]
    forms = [rnd.choice([str(a), a, int(a)]) if a.version == 4 else rnd.choice([str(a), a]) for a in addrs]
    want = [naive_lookup(ref, a) for a in addrs]
    assert [fib.lookup(f) for f in forms] == want
    assert fib.lookup_many(forms) == want
    assert fib.lookup_many(iter(forms)) == want


if given is not None:

    prefixes4 = st.builds(
        lambda a, n: ipaddress.IPv4Network((a, n), strict=False),
        st.integers(0, 2**32 - 1),
        st.integers(0, 32),
    )

    @settings(max_examples=150, deadline=None)
    @given(
        st.lists(st.tuples(prefixes4, st.booleans()), max_size=60),
        st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=40),
    )
    def test_property_insert_delete_lookup(ops, probes):
        fib, ref = htb.Fib(), {}
        for i, (net, insert) in enumerate(ops):
            if insert or net not in ref:
                fib[net] = i
                ref[net] = i
            else:
                del fib[net]
                del ref[net]
        assert len(fib) == len(ref)
        assert [fib.lookup(p) for p in probes] == [naive_lookup(ref, p) for p in probes]


def test_metrics_insert_remove_and_kinds():
    fib = htb.Fib()
    fib.insert("0.0.0.0/0", "uplink", metric=100)
    fib.insert("0.0.0.0/0", "backup", metric=200)
    fib.insert("10.1.0.0/16", htb.RouteType.BLACKHOLE)
    assert (len(fib), fib.route_count) == (2, 3)
    assert fib.lookup("192.0.2.1") == ("0.0.0.0/0", "uplink")
    assert fib.lookup("10.1.2.3") == ("10.1.0.0/16", htb.RouteType.BLACKHOLE)
    with pytest.raises(htb.ConfigError, match="route 0.0.0.0/0 metric 100 exists"):
        fib.insert("0.0.0.0/0", "again", metric=100)
    fib.insert("0.0.0.0/0", "again", metric=100, replace=True)
    assert fib["0.0.0.0/0"] == "again"
    assert fib.remove("0.0.0.0/0", 100) == "again"
    assert fib.lookup("192.0.2.1") == ("0.0.0.0/0", "backup")
    assert fib.routes() == [("0.0.0.0/0", 200, "backup"), ("10.1.0.0/16", 0, htb.RouteType.BLACKHOLE)]
    assert fib.items()[0] == ("0.0.0.0/0", "backup")
    assert "10.1.0.0/16" in fib and "10.2.0.0/16" not in fib
    with pytest.raises(KeyError):
        del fib["10.2.0.0/16"]
    with pytest.raises(KeyError):
        fib["10.2.0.0/16"]
    with pytest.raises(KeyError):
        fib.remove("0.0.0.0/0", 7)


def test_values_are_the_objects():
    fib = htb.Fib()
    hop = object()
    fib["2001:db8::/32"] = hop
    assert fib.lookup("2001:db8::1")[1] is hop
    assert fib.lookup(ipaddress.IPv6Address("2001:db8::1"))[1] is hop
    assert fib.lookup("2001:db9::1") is None
    assert fib.lookup(1) is None  # ints below 2**32 are IPv4


def test_bad_inputs():
    fib = htb.Fib()
    with pytest.raises(htb.ParseError, match="host bits set"):
        fib["10.0.0.1/8"] = 1
    with pytest.raises(htb.ParseError, match="invalid prefix"):
        fib["10.0.0.0/33"] = 1
    with pytest.raises(htb.ParseError):
        fib["nonsense"] = 1
    with pytest.raises(TypeError):
        fib[42] = 1
    with pytest.raises(htb.ParseError, match="invalid address"):
        fib.lookup("10.0.0.256")
    with pytest.raises(htb.ParseError):
        fib.lookup(-1)
    with pytest.raises(htb.ParseError):
        fib.lookup(2**128)
    with pytest.raises(TypeError):
        fib.lookup(1.5)
    with pytest.raises(TypeError):
        fib.lookup_many([("10.0.0.1",)])
    with pytest.raises(TypeError):
        fib.lookup_many(5)
    with pytest.raises(TypeError):
        fib.load(5)


def test_load_route_file(tmp_path: pathlib.Path):
    f = tmp_path / "routes.txt"
    f.write_text(
        "default via 192.0.2.1 dev eth0 proto dhcp metric 100\n"
        "10.0.0.0/8 dev eth1 proto kernel scope link src 10.0.0.1\n"
        "blackhole 10.9.0.0/16\n"
        "2001:db8::/32 nh7\n"
    )
    fib = htb.Fib()
    assert fib.load(f) == 4
    assert fib.lookup("10.1.2.3") == ("10.0.0.0/8", "eth1")
    assert fib.lookup("10.9.0.1") == ("10.9.0.0/16", htb.RouteType.BLACKHOLE)
    assert fib.lookup("8.8.8.8") == ("0.0.0.0/0", "192.0.2.1@eth0")
    assert fib.lookup("2001:db8::5") == ("2001:db8::/32", "nh7")
    # All or nothing: a second load conflicts and leaves the table as it was.
    with pytest.raises(htb.ConfigError, match="exists"):
        fib.load(str(f))
    assert fib.route_count == 4
    bad = tmp_path / "bad.txt"
    bad.write_text("10.0.0.1/8 x\n")
    with pytest.raises(htb.ParseError, match=r"bad.txt:1: invalid prefix 10.0.0.1/8: host bits set"):
        fib.load(bad)
    with pytest.raises(FileNotFoundError):
        fib.load(tmp_path / "missing.txt")


def test_concurrent_lookups_and_writes():
    fib = htb.Fib()
    for i in range(256):
        fib[f"10.{i}.0.0/16"] = i
    addrs = [f"10.{i}.1.1" for i in range(256)] * 20
    errors = []

    def reader():
        try:
            for _ in range(5):
                res = fib.lookup_many(addrs)
                assert all(r is None or r[1] == int(r[0].split(".")[1]) for r in res)
        except Exception as e:  # pragma: no cover
            errors.append(e)

    def writer():
        for i in range(256):
            fib[f"10.{i}.0.0/16"] = i
            fib[f"11.{i}.0.0/16"] = i

    ts = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and len(fib) == 512
