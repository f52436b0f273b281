"""Reassembly and fragmentation from Python: the Novak vectors for every policy, round trips,
timeouts, counters, bad inputs and threads."""

import json
import pathlib
import random
import re
import struct
import threading

import pytest

import htb
from ippkt import V4_DST, V4_SRC, V6_DST, V6_SRC, ipv4, ipv6, ipv6_frag, v4_fields, v6_frag_fields

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is optional
    given = None

ROOT = pathlib.Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests" / "vectors" / "novak-vectors.json").read_text())["vectors"]
S = 1_000_000_000  # ns per second


def build(vector, family, ident=1):
    """The vector's fragments as packets, in send order (ICMP / ICMPv6 as upstream)."""
    out = []
    for f in vector["fragments"]:
        data = bytes.fromhex(f["payload_hex"])
        assert len(data) == f["len"]
        if family == 4:
            out.append(ipv4(data, ident=ident, proto=1, offset=f["offset"], mf=f["mf"]))
        else:
            out.append(ipv6_frag(data, ident=ident, nh=58, offset=f["offset"], mf=f["mf"]))
    return out


def prediction(vector, policy):
    """Upstream expectation if there is one, else the model's. The JSON's `linux` is the
    pre-4.19 kernel, our `linux-legacy`."""
    key = "linux" if policy == "linux-legacy" else policy
    exp = vector.get("expected", {}).get(key)
    model = vector["model_predictions"][key]
    if exp is not None and "payload_hex" in exp:
        assert exp["payload_hex"] == model["payload_hex"]  # the data file agrees with itself
    return model


def overlapping(vector):
    """How many fragments overlap bytes of fragments sent before them."""
    seen, n = set(), 0
    for f in vector["fragments"]:
        span = set(range(f["offset"], f["offset"] + f["len"]))
        n += bool(span & seen)
        seen |= span
    return n


def test_policy_names():
    assert htb.REASM_POLICIES == ("linux", "first", "last", "bsd", "bsd-right", "linux-legacy",
                                  "windows", "solaris")
    for p in htb.REASM_POLICIES:
        assert htb.Reassembler(p).policy == p
    assert htb.Reassembler().policy == "linux"
    assert htb.Reassembler("BSD_Right").policy == "bsd-right"


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("policy", [p for p in htb.REASM_POLICIES if p != "linux"])
@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_novak_vectors_target_policies(vector, policy, family):
    frags = build(vector, family)
    r = htb.Reassembler(policy)
    outs = [r.push(f, now=i * 1000) for i, f in enumerate(frags)]
    done = [o for o in outs if o is not None]
    want = prediction(vector, policy)
    st_ = r.stats
    assert st_["ReasmReqds"] == len(frags)
    # Under these policies an overlap is resolved, not fatal; each fragment that overlaps data
    # sent before it is counted (so an analyser can flag it), without a failure.
    assert st_["ReasmOverlaps"] == overlapping(vector) > 0
    if want.get("incomplete"):
        assert done == [] and len(r) == 1 and st_["ReasmOKs"] == 0
        return
    assert len(done) == 1 and outs[-1] is not None, "completes on the last fragment sent"
    assert len(r) == 0 and r.mem_used == 0 and st_["ReasmOKs"] == 1 and st_["ReasmFails"] == 0
    pkt = done[0]
    if family == 4:
        f = v4_fields(pkt)
        assert f["checksum_ok"] and not f["mf"] and f["offset"] == 0
        assert (f["id"], f["proto"], f["total_len"]) == (1, 1, 20 + vector["total_len"])
        assert pkt[12:20] == frags[0][12:20]  # addresses
        payload = f["payload"]
    else:
        plen, nh = struct.unpack("!HB", pkt[4:7])
        assert (plen, nh) == (vector["total_len"], 58)  # Fragment header removed
        assert pkt[8:40] == frags[0][8:40]
        payload = pkt[40:]
    assert len(pkt) == (20 if family == 4 else 40) + vector["total_len"]
    assert payload.hex() == want["payload_hex"], (policy, want["blocks"])


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_novak_vectors_linux_discards(vector, family):
    """Today's kernel: the first partial overlap discards the datagram (RFC 5722 for both
    families since 4.19); later fragments start a new queue, which never completes."""
    frags = build(vector, family)
    r = htb.Reassembler("linux")
    outs = [r.push(f, now=0) for f in frags]
    assert outs == [None] * len(frags)
    assert r.stats["ReasmOverlaps"] == 1 and r.stats["ReasmOKs"] == 0
    assert r.drops["overlap"] == 1
    assert r.stats_for(family)["ReasmOverlaps"] == 1
    assert r.stats_for(10 - family)["ReasmReqds"] == 0


@pytest.mark.parametrize("family", [4, 6])
def test_linux_after_overlap_clean_retransmit(family):
    """The overlap kill unhashes the queue: a clean retransmission is reassembled."""
    vector = VECTORS[0]
    r = htb.Reassembler()
    for f in build(vector, family):
        assert r.push(f, now=0) is None
    assert len(r) == 1  # the later fragments' new queue
    data = bytes(range(256)) * 2
    frag = ((lambda d, **kw: ipv4(d, ident=1, proto=1, **kw)) if family == 4 else
            (lambda d, **kw: ipv6_frag(d, ident=1, nh=58, **kw)))
    clean = [frag(data[:256], mf=True), frag(data[256:], offset=256)]
    r.expire(now=120 * S)  # forget that queue: the retransmission starts afresh
    outs = [r.push(f, now=121 * S) for f in clean]
    assert outs[0] is None and outs[1] is not None and outs[1].endswith(data)
    assert len(outs[1]) == (20 if family == 4 else 40) + 512


# --- fragment -> reassemble round trips ----------------------------------------------------

def check_fragments_v4(pkt, frags, mtu):
    """What Linux's fragmenter guarantees, checked from the bytes."""
    total = v4_fields(pkt)["total_len"] - 20
    pos = 0
    for i, f in enumerate(frags):
        h = v4_fields(f)
        assert len(f) <= mtu and h["checksum_ok"] and h["id"] == v4_fields(pkt)["id"]
        assert h["offset"] == pos and h["mf"] == (i < len(frags) - 1)
        if h["mf"]:
            assert len(h["payload"]) % 8 == 0 and len(h["payload"]) == (mtu - 20) & ~7
        pos += len(h["payload"])
    assert pos == total


def check_fragments_v6(pkt, frags, mtu, ident=None):
    pos, ids = 0, set()
    for i, f in enumerate(frags):
        h = v6_frag_fields(f)
        assert len(f) <= mtu and h["nh"] == pkt[6] and h["offset"] == pos
        assert h["mf"] == (i < len(frags) - 1)
        if h["mf"]:
            assert len(h["payload"]) == (mtu - 48) & ~7
        ids.add(h["id"])
        pos += len(h["payload"])
    assert pos == len(pkt) - 40 and len(ids) == 1
    if ident is not None:
        assert ids == {ident}


def roundtrip(pkt, frags, policy, rnd, dups):
    """Pushes the fragments shuffled, with exact duplicates of earlier ones mixed in before
    the last new fragment (which must complete the datagram); returns the outputs."""
    order = list(frags)
    rnd.shuffle(order)
    if len(frags) > 1:
        for _ in range(dups):
            i = rnd.randrange(len(order) - 1)  # a copy of order[i], after it, before the last
            order.insert(rnd.randrange(i + 1, len(order)), order[i])
    r = htb.Reassembler(policy)
    outs = [r.push(f, now=i) for i, f in enumerate(order)]
    done = [o for o in outs if o is not None]
    if len(frags) > 1:
        assert r.stats["ReasmReqds"] == len(order) and r.stats["ReasmOKs"] == 1
        assert r.drops["duplicate"] == len(order) - len(frags) or policy != "linux"
    assert outs[-1] is not None and len(r) == 0 and r.mem_used == 0
    return r, done


def test_duplicate_after_completion_starts_new_queue():
    a, b = htb.fragment(ipv4(bytes(2000)), 1500)
    r = htb.Reassembler()
    assert r.push(a, 0) is None and r.push(b, 0) is not None
    assert r.push(a, 0) is None and len(r) == 1  # the finished queue is gone
    assert r.push(b, 0) is not None  # and delivers again, as the kernel would


def test_fragment_known_sizes():
    """The kernel's sizes (reassembly-anchors.md section 3, measured on the live kernel)."""
    udp = lambda n: ipv4(bytes(n), proto=17)  # noqa: E731
    sizes = lambda fs: [len(f) - 20 for f in fs]  # noqa: E731
    assert sizes(htb.fragment(udp(4000), 1500)) == [1480, 1480, 1040]
    assert sizes(htb.fragment(udp(4000), 1000)) == [976, 976, 976, 976, 96]
    assert sizes(htb.fragment(udp(1480), 576)) == [552, 552, 376]
    assert len(htb.fragment(udp(65507 + 8), 1500)) == 45
    v6 = htb.fragment(ipv6(bytes(4000), nh=17), 1500, ipv6_id=7)
    assert [len(v6_frag_fields(f)["payload"]) for f in v6] == [1448, 1448, 1104]
    check_fragments_v6(ipv6(bytes(4000), nh=17), v6, 1500, ident=7)


def test_fragment_fits_is_unchanged():
    p = ipv4(b"abc" * 100, df=True)
    assert htb.fragment(p, 1500) == [p]
    q = ipv6(bytes(1200))
    assert htb.fragment(bytearray(q), 1280) == [q]


@pytest.mark.parametrize("policy", htb.REASM_POLICIES)
def test_roundtrip_seeded(policy):
    rnd = random.Random(policy)
    for _ in range(40):
        v6 = rnd.random() < 0.5
        n = rnd.randrange(0, 12000)
        data = rnd.randbytes(n)
        if v6:
            pkt, mtu = ipv6(data), rnd.randrange(1280, 9000)
            frags = htb.fragment(pkt, mtu, ipv6_id=rnd.getrandbits(32))
            if len(frags) > 1:
                check_fragments_v6(pkt, frags, mtu)
        else:
            data = data[: 65535 - 20]
            pkt, mtu = ipv4(data, ident=rnd.getrandbits(16)), rnd.randrange(68, 9000)
            frags = htb.fragment(pkt, mtu)
            check_fragments_v4(pkt, frags, mtu)
        r, done = roundtrip(pkt, frags, policy, rnd, dups=rnd.randrange(4))
        assert done == [pkt]


if given is not None:

    @settings(max_examples=150, deadline=None)
    @given(
        st.booleans(),
        st.integers(0, 20000),
        st.integers(0, 8000),
        st.sampled_from(htb.REASM_POLICIES),
        st.integers(0, 3),
        st.randoms(use_true_random=False),
    )
    def test_property_roundtrip(v6, n, extra_mtu, policy, dups, rnd):
        data = bytes(i * 7 % 251 for i in range(n))
        if v6:
            pkt, mtu = ipv6(data), 1280 + extra_mtu
        else:
            pkt, mtu = ipv4(data), 68 + extra_mtu
        frags = htb.fragment(pkt, mtu)
        assert all(len(f) <= mtu for f in frags)
        r, done = roundtrip(pkt, frags, policy, rnd, dups)
        assert done == [pkt]


def test_push_many_interleaved_datagrams():
    """Many datagrams, fragments interleaved, one batch; per-packet times."""
    rnd = random.Random(5)
    pkts = [ipv4(rnd.randbytes(rnd.randrange(100, 5000)), ident=i) for i in range(30)]
    pkts += [ipv6(rnd.randbytes(rnd.randrange(1300, 5000))) for _ in range(30)]
    pkts.append(ipv4(b"not a fragment"))
    split = [htb.fragment(p, 1280) for p in pkts]
    frags = [f for fs in split for f in fs]
    rnd.shuffle(frags)
    # One source sends all of them, far out of order: without max_dist=0 the kernel's
    # per-source disorder bound would flush the oldest queues (see test_max_dist).
    r = htb.Reassembler(max_dist=0)
    outs = r.push_many(frags, now=list(range(len(frags))))
    assert len(outs) == len(frags)
    assert sorted(o for o in outs if o is not None) == sorted(pkts)
    assert len(r) == 0
    assert r.stats["ReasmOKs"] == sum(len(fs) > 1 for fs in split) > 40
    # A generator of bytearrays and a single time work too.
    r2 = htb.Reassembler(max_dist=0)
    outs2 = r2.push_many((bytearray(f) for f in frags), now=0)
    assert sorted(o for o in outs2 if o is not None) == sorted(pkts)


def test_not_a_fragment_passes_through():
    r = htb.Reassembler()
    p = ipv4(b"x" * 100)
    assert r.push(p, now=0) is p  # the same object, untouched
    assert r.push(bytearray(p), now=0) == p
    assert r.push(memoryview(p), now=0) == p
    q = ipv6(b"y" * 100)
    assert r.push(q, now=0) is q
    assert r.stats["ReasmReqds"] == 0 and len(r) == 0


def test_context_separates_queues():
    pkt = ipv4(bytes(3000))
    a, b, c = htb.fragment(pkt, 1500)
    r = htb.Reassembler()
    assert r.push(a, 0, context=1) is None
    assert r.push(b, 0, context=2) is None
    assert r.push(c, 0, context=1) is None
    assert len(r) == 2
    assert r.push(b, 0, context=1) == pkt
    assert len(r) == 1


def test_ipv6_atomic_fragment_delivered_at_once():
    """RFC 6946: offset 0 and M=0 is not queued; the kernel counts it as reassembled."""
    r = htb.Reassembler()
    assert r.push(ipv6_frag(b"payload!", ident=5), now=0) == ipv6(b"payload!")
    assert r.stats["ReasmOKs"] == 1 and len(r) == 0


def test_kernel_edge_cases():
    """Edge cases of reassembly-anchors.md section 1.3 (each checked on the live kernel)."""
    r = htb.Reassembler()
    # A non-last IPv4 fragment whose length is not a multiple of 8 is trimmed, not dropped.
    out = r.push_many([ipv4(b"A" * 13, ident=1, mf=True), ipv4(b"B" * 8, ident=1, offset=8)], 0)
    assert out[1] == ipv4(b"A" * 8 + b"B" * 8, ident=1)
    # A zero-length fragment kills its queue.
    assert r.push_many([ipv4(b"A" * 8, ident=2, mf=True), ipv4(b"", ident=2, offset=8, mf=True),
                        ipv4(b"B" * 8, ident=2, offset=8)], 0) == [None] * 3
    assert r.drops["inconsistent"] == 1 and len(r) == 1  # B started a new queue
    # ECN (RFC 3168): Not-ECT with CE is dropped; ECT(0) with CE delivers CE.
    assert r.push_many([ipv4(b"A" * 8, ident=3, mf=True, tos=0),
                        ipv4(b"B" * 8, ident=3, offset=8, tos=3)], 0) == [None, None]
    assert r.drops["ecn_mismatch"] == 1
    out = r.push_many([ipv4(b"A" * 8, ident=4, mf=True, tos=2),
                       ipv4(b"B" * 8, ident=4, offset=8, tos=3)], 0)
    assert out[1] == ipv4(b"A" * 8 + b"B" * 8, ident=4, tos=3)
    # DF on every fragment: the reassembled datagram keeps DF.
    out = r.push_many([ipv4(b"A" * 8, ident=5, mf=True, df=True),
                       ipv4(b"B" * 8, ident=5, offset=8, df=True)], 0)
    assert out[1] == ipv4(b"A" * 8 + b"B" * 8, ident=5, df=True)
    # The protocol is part of the IPv4 key.
    assert r.push_many([ipv4(b"A" * 8, ident=6, proto=253, mf=True),
                        ipv4(b"B" * 8, ident=6, proto=254, offset=8)], 0) == [None, None]
    assert r.stats["ReasmOKs"] == 3


# --- timeouts and ICMP quotes ---------------------------------------------------------------

@pytest.mark.parametrize("family, lifetime", [(4, 30), (6, 60)])
def test_expire_default_lifetimes(family, lifetime):
    if family == 4:
        pkt = ipv4(bytes(3000), ident=0x4242, proto=17)
        quote_len = 548  # the whole first fragment, cut at 548 bytes as Linux does
    else:
        pkt = ipv6(bytes(4000), nh=17)
        quote_len = 1232  # the IPv6 cut: 1280 minus the ICMPv6 error's own headers
    first, _, *rest = htb.fragment(pkt, 1280, ipv6_id=99) if family == 6 else htb.fragment(pkt, 1280)
    r = htb.Reassembler()
    t0 = 5 * S
    assert r.push(first, now=t0) is None
    assert r.push(rest[-1], now=t0 + S) is None
    assert r.next_expiry() == t0 + lifetime * S  # armed once at creation, not refreshed
    assert r.expire(now=t0 + lifetime * S - 1) == []
    (ev,) = r.expire(now=t0 + lifetime * S + 1)
    assert ev.kind == "timeout" and ev.icmp_quote == first[:quote_len]
    kind, key, quote = ev
    assert (kind, quote) == ("timeout", first[:quote_len])
    assert key.family == family and key.context == 0
    if family == 4:
        assert (key.src, key.dst, key.id, key.proto) == (V4_SRC, V4_DST, 0x4242, 17)
    else:
        assert (key.src, key.dst, key.id, key.proto) == (V6_SRC, V6_DST, 99, None)
    assert hash(key) == hash(ev.key) and key == ev.key and "FragKey(" in repr(key)
    assert r.stats["ReasmTimeout"] == 1 and r.stats["ReasmFails"] == 1
    assert len(r) == 0 and r.mem_used == 0 and r.next_expiry() is None
    assert r.expire(now=10**18) == []


def test_expire_without_first_fragment_has_no_quote():
    a, b, c = htb.fragment(ipv4(bytes(3000)), 1500)
    r = htb.Reassembler(timeout=1.5)
    assert (r.timeout_v4, r.timeout_v6) == (1.5, 1.5)
    r.push(b, now=0, context=3)
    r.push(c, now=0, context=3)
    (ev,) = r.expire(now=2 * S)
    assert ev.icmp_quote is None and ev.key.context == 3
    assert repr(ev).startswith("ReasmEvent(kind=\"timeout\"")


def test_timeout_defaults_and_ints():
    r = htb.Reassembler()
    assert (r.timeout_v4, r.timeout_v6) == (30.0, 60.0)
    assert (r.high_thresh, r.max_dist, r.max_datagram) == (4 * 1024 * 1024, 64, 65535)
    r = htb.Reassembler("bsd", 1 << 20, 2, max_dist=0, max_datagram=9000)
    assert (r.timeout_v4, r.high_thresh, r.max_dist, r.max_datagram) == (2.0, 1 << 20, 0, 9000)


# --- limits ---------------------------------------------------------------------------------

def test_memory_limit_refuses_and_recovers():
    r = htb.Reassembler(high_thresh=20000)
    firsts = [htb.fragment(ipv4(bytes(3000), ident=i), 1500)[0] for i in range(200)]
    assert r.push_many(firsts, now=0) == [None] * 200
    refused = r.drops["memory_limit"]
    assert 0 < refused < 200
    assert r.stats["ReasmFails"] == refused
    assert r.mem_used < 2 * 20000  # bounded: nothing is taken once above high_thresh
    held = len(r)
    assert held == 200 - refused
    r.expire(now=31 * S)
    assert len(r) == 0 and r.mem_used == 0
    pkt = ipv4(bytes(3000), ident=7)
    assert r.push_many(htb.fragment(pkt, 1500), now=32 * S)[-1] == pkt


def test_max_dist():
    """The oracle's edge/max-dist-exceeded: X's first fragment, 70 other 2-fragment datagrams
    from the same source, then X's last: 70 delivered, X not; with max_dist=0 all 71."""
    x = htb.fragment(ipv4(bytes(2000), ident=9999), 1500)
    others = [htb.fragment(ipv4(bytes(2000), ident=i), 1500) for i in range(70)]
    seq = [x[0]] + [f for o in others for f in o] + [x[1]]
    for max_dist, delivered in ((64, 70), (0, 71)):
        r = htb.Reassembler(max_dist=max_dist)
        outs = r.push_many(seq, now=0)
        assert sum(o is not None for o in outs) == delivered
        assert (outs[-1] is not None) == (max_dist == 0)
    # IPv6 has no such bound.
    x6 = htb.fragment(ipv6(bytes(2000)), 1280)
    o6 = [htb.fragment(ipv6(bytes(2000)), 1280) for _ in range(70)]
    outs = htb.Reassembler().push_many([x6[0]] + [f for o in o6 for f in o] + [x6[1]], now=0)
    assert sum(o is not None for o in outs) == 71


def test_max_datagram():
    pkt = ipv4(bytes(3000))
    r = htb.Reassembler(max_datagram=2000)
    assert r.push_many(htb.fragment(pkt, 1500), now=0) == [None] * 3
    assert r.drops["oversize"] == 1 and r.stats["ReasmOKs"] == 0 and len(r) == 0


def test_reassembled_65535_limit():
    """20 + 65515 = 65535 is delivered; one more byte is not (the kernel's check at reasm)."""
    for n, ok in ((65515, True), (65516, False)):
        frags = [ipv4(bytes(65000), mf=True), ipv4(bytes(n - 65000), offset=65000)]
        r = htb.Reassembler()
        out = r.push_many(frags, now=0)
        assert (out[-1] is not None) == ok, n


# --- errors ---------------------------------------------------------------------------------

def test_exception_hierarchy():
    assert issubclass(htb.ParamProblemError, htb.PacketError)
    assert issubclass(htb.FragmentationNeededError, htb.PacketError)
    assert issubclass(htb.PacketError, ValueError)


@pytest.mark.parametrize(
    "packet, msg",
    [
        (b"", "malformed packet"),
        (b"\x45" + bytes(10), "malformed packet"),
        (bytes([0x55]) + bytes(30), "IP version 5"),
        (ipv4(b"x" * 8, mf=True)[:24], "malformed packet"),
        (ipv6_frag(b"x" * 16, mf=True)[:50], "malformed packet"),
        (ipv4(b"x" * 8, mf=True)[:10] + b"\0\0" + ipv4(b"x" * 8, mf=True)[12:], "checksum"),
    ],
    ids=["empty", "short-v4", "version-5", "v4-total-length", "v6-payload-length", "v4-checksum"],
)
def test_push_malformed(packet, msg):
    r = htb.Reassembler()
    with pytest.raises(htb.PacketError, match=msg):
        r.push(packet, now=0)
    assert len(r) == 0


@pytest.mark.parametrize(
    "packet, code, pointer",
    [
        # Non-last fragment whose length is not a multiple of 8 (RFC 8200 4.5).
        (ipv6_frag(b"x" * 13, mf=True), 0, 4),
        # Offset + length beyond 65535: points at the Fragment Offset field.
        (ipv6_frag(b"x" * 16, offset=65528, mf=False), 0, 42),
        # A first fragment without the whole TCP header (RFC 7112).
        (ipv6_frag(b"x" * 16, nh=6, mf=True), 3, 0),
    ],
    ids=["nonlast-not-multiple-of-8", "beyond-65535", "first-without-tcp-header"],
)
def test_push_ipv6_parameter_problem(packet, code, pointer):
    r = htb.Reassembler()
    with pytest.raises(htb.ParamProblemError, match="parameter problem") as e:
        r.push(packet, now=0)
    assert (e.value.code, e.value.pointer) == (code, pointer)
    assert isinstance(e.value, htb.PacketError)


def test_push_bad_arguments():
    r = htb.Reassembler()
    p = ipv4(b"x")
    with pytest.raises(TypeError, match="packet must be"):
        r.push("a string", 0)
    with pytest.raises(TypeError, match="packet must be"):
        r.push(None, 0)
    with pytest.raises(TypeError, match="now"):
        r.push(p, "0")
    with pytest.raises(TypeError, match="now"):
        r.push(p, 1.5)
    with pytest.raises(htb.ParseError, match="now"):
        r.push(p, -1)
    with pytest.raises(htb.ParseError, match="context"):
        r.push(p, 0, context=-1)
    with pytest.raises(htb.ParseError, match="context"):
        r.push(p, 0, context=2**32)
    with pytest.raises(TypeError, match="context"):
        r.push(p, 0, context="1")
    with pytest.raises(TypeError):
        r.expire("later")
    with pytest.raises(htb.ParseError, match="family"):
        r.stats_for(5)
    with pytest.raises(TypeError, match="family"):
        r.stats_for("4")


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        ({"policy": "nope"}, htb.ParseError, 'unknown reassembly policy "nope"'),
        ({"policy": 3}, TypeError, "policy must be a str"),
        ({"timeout": -1}, htb.ConfigError, "timeout"),
        ({"timeout": -0.5}, htb.ConfigError, "timeout"),
        ({"timeout": float("nan")}, htb.ConfigError, "timeout"),
        ({"timeout": float("inf")}, htb.ConfigError, "timeout"),
        ({"timeout": 2**64}, htb.ConfigError, "timeout"),
        ({"timeout": "30s"}, TypeError, "timeout must be"),
        ({"timeout": True}, TypeError, "timeout must be"),
        ({"high_thresh": -1}, htb.ParseError, "high_thresh"),
        ({"high_thresh": 1.5}, TypeError, "high_thresh"),
        ({"max_dist": -1}, htb.ParseError, "max_dist"),
        ({"max_dist": "64"}, TypeError, "max_dist"),
        ({"max_datagram": None, "max_dist": 2**32}, htb.ParseError, "max_dist"),
        ({"max_datagram": []}, TypeError, "max_datagram"),
    ],
)
def test_config_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        htb.Reassembler(**kwargs)


def test_high_thresh_size_string():
    assert htb.Reassembler(high_thresh="64k").high_thresh == 65536


def test_push_many_stops_at_malformed():
    a, b, c = htb.fragment(ipv4(bytes(3000)), 1500)
    r = htb.Reassembler()
    with pytest.raises(htb.PacketError, match="malformed") as e:
        r.push_many([a, b, b"\x45junk", c], now=0)
    assert e.value.index == 2 and e.value.results == [None, None]
    assert r.stats["ReasmReqds"] == 2 and len(r) == 1  # c was not processed
    with pytest.raises(TypeError, match="packet must be"):
        r.push_many([a, 5], now=0)
    with pytest.raises(TypeError):
        r.push_many(7, now=0)
    with pytest.raises(htb.ParseError, match="2 times for 3 packets"):
        r.push_many([a, b, c], now=[0, 1])
    with pytest.raises(TypeError, match="now"):
        r.push_many([a], now="0")
    assert r.stats["ReasmReqds"] == 2  # the refused calls did nothing


def test_fragment_errors():
    big_df = ipv4(bytes(3000), df=True)
    with pytest.raises(htb.FragmentationNeededError, match="DF") as e:
        htb.fragment(big_df, 1500)
    assert e.value.mtu == 1500 and isinstance(e.value, htb.PacketError)
    frags = htb.fragment(big_df, 1500, ignore_df=True)
    assert len(frags) == 3
    with pytest.raises(htb.ConfigError, match="MTU 1000 too small") as e:
        htb.fragment(ipv6(bytes(3000)), 1000)
    assert (e.value.mtu, e.value.min) == (1000, 1280)
    with pytest.raises(htb.ConfigError, match="too small") as e:
        htb.fragment(ipv4(bytes(3000)), 27)
    assert e.value.mtu == 27 and e.value.min == 28
    with pytest.raises(htb.PacketError, match="malformed packet"):
        htb.fragment(b"\x45junk", 1500)
    with pytest.raises(htb.PacketError, match="already has a fragment header"):
        htb.fragment(ipv6_frag(bytes(2000), mf=True), 1280)
    with pytest.raises(TypeError, match="packet must be"):
        htb.fragment("x", 1500)
    with pytest.raises(TypeError, match="mtu must be"):
        htb.fragment(big_df, 1500.0)
    with pytest.raises(htb.ParseError, match="mtu"):
        htb.fragment(big_df, -1)
    with pytest.raises(htb.ParseError, match="ipv6_id"):
        htb.fragment(ipv6(bytes(3000)), 1280, ipv6_id=2**32)
    with pytest.raises(TypeError):
        htb.fragment(ipv6(bytes(3000)), 1280, ignore_df="yes")


def test_fuzz_never_crashes():
    """Random bytes and mutated fragments: a result or an htb error, never anything else."""
    rnd = random.Random(11)
    seeds = (htb.fragment(ipv4(rnd.randbytes(3000)), 576)
             + htb.fragment(ipv6(rnd.randbytes(3000)), 1280)
             + build(VECTORS[0], 4) + build(VECTORS[0], 6))
    for policy in htb.REASM_POLICIES:
        r = htb.Reassembler(policy, high_thresh=1 << 16)
        for i in range(1500):
            if rnd.random() < 0.2:
                p = rnd.randbytes(rnd.randrange(64))
            else:
                p = bytearray(rnd.choice(seeds))
                for _ in range(rnd.randrange(1, 4)):
                    p[rnd.randrange(min(len(p), 60))] = rnd.randrange(256)
                p = bytes(p[: rnd.randrange(len(p) + 1)] if rnd.random() < 0.3 else p)
            try:
                out = r.push(p, now=i * 1000, context=rnd.randrange(3))
                assert out is None or isinstance(out, bytes)
            except htb.PacketError:
                pass
            if rnd.random() < 0.01:
                for ev in r.expire(now=i * 1000 + 40 * S):
                    assert ev.kind == "timeout"
            try:
                for f in htb.fragment(p, rnd.choice([68, 576, 1280, 1500])):
                    assert isinstance(f, bytes)
            except htb.HtbError:
                pass
        assert all(isinstance(v, int) for v in r.stats.values())


# --- threads --------------------------------------------------------------------------------

def test_threads_share_one_reassembler():
    r = htb.Reassembler()
    n_threads, per = 4, 40
    results = [[] for _ in range(n_threads)]
    # One source per thread: each thread's fragments are in order from its source's view,
    # so the per-source max_dist bound holds however the threads interleave.
    expected = [[ipv4(bytes([t]) * (2000 + i), ident=i, src=f"192.0.2.{t + 1}") for i in range(per)]
                for t in range(n_threads)]

    def work(t):
        rnd = random.Random(t)
        for i, p in enumerate(expected[t]):
            frags = htb.fragment(p, 576)
            rnd.shuffle(frags)
            if i % 2:
                results[t] += [o for o in r.push_many(frags, now=0) if o is not None]
            else:
                results[t] += [o for o in (r.push(f, now=0) for f in frags) if o is not None]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == expected
    assert r.stats["ReasmOKs"] == n_threads * per and len(r) == 0


# --- README ---------------------------------------------------------------------------------

def readme_example():
    """The README's Python block about reassembly, as it is written there."""
    readme = pathlib.Path(__file__).resolve().parents[2] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    (block,) = [b for b in blocks if "htb.Reassembler()" in b]
    return block


def test_readme_example(capsys):
    exec(compile(readme_example(), "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[1280, 1280, 1280, 352]"
    assert lines[1].startswith("{'ReasmReqds': 4, 'ReasmOKs': 1, 'ReasmFails': 0, 'ReasmTimeout': 0,")
    assert lines[2] == "timeout 2001:db8::1 1232"
