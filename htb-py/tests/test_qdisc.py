"""The shaper: configuration, enqueue/dequeue/drop semantics, stats, threads."""

import threading

import pytest

import htb

STATS_FIELDS = [
    "bytes", "packets", "drops", "overlimits", "backlog", "qlen", "lends", "borrows",
    "giants", "tokens", "ctokens", "rate", "ceil", "level", "prio", "quantum",
]


def uplink(**kw) -> htb.Qdisc:
    q = htb.Qdisc(**kw)
    q.add_class("1:1", "1:", "30mbit")
    q.add_class("1:10", "1:1", "5mbit", ceil="30mbit")
    q.add_class("1:20", "1:1", 10_000_000, ceil="30mbit", prio=1)
    return q


def drain(q: htb.Qdisc, now: int = 0, limit: int = 100_000):
    out = []
    for _ in range(limit):
        p = q.dequeue(now)
        if p is not None:
            out.append((now, p))
            continue
        w = q.next_wakeup()
        if w is None:
            return out
        now = max(now, w)
    raise AssertionError("did not drain")


def test_readme_example():
    q = uplink(default="1:20")
    assert q.enqueue(b"\0" * 1042, "1:10", now=0) is None
    assert q.enqueue(bytearray(1042), 0, now=0) is None  # unclassified -> default 1:20
    assert len(q) == 2
    sent = drain(q)
    assert [len(p) for _, p in sent] == [1042, 1042]
    s = q.stats()
    assert list(s) == ["1:1", "1:10", "1:20"]
    assert s["1:10"].packets == 1 and s["1:20"].packets == 1
    assert s["1:1"].bytes == 2084
    assert q.next_wakeup() is None and len(q) == 0


def test_stats_fields_match_tc():
    q = uplink()
    st = q.stats()["1:10"]
    for f in STATS_FIELDS:
        assert isinstance(getattr(st, f), int), f
    assert (st.rate, st.ceil, st.prio, st.level, st.quantum) == (5_000_000, 30_000_000, 0, 0, 62_500)
    assert st.classid == "1:10" and st.parent == "1:1" and st.leaf
    assert q.stats()["1:1"].level == 7 and q.stats()["1:1"].parent == "1:"
    assert str(st).startswith("class htb 1:10 parent 1:1 prio 0 quantum 62500 rate 5Mbit ceil 30Mbit")
    d = st.as_dict()
    assert set(STATS_FIELDS) <= set(d) and d["rate"] == 5_000_000
    assert "class htb 1:20" in q.show() and q.show().startswith("qdisc htb 1: root")


def test_any_object_with_size():
    q = uplink()
    pkt = object()
    with pytest.raises(TypeError, match="size="):
        q.enqueue(pkt, "1:10", 0)
    assert q.enqueue(pkt, "1:10", 0, size=1500) is None
    assert q.stats()["1:10"].backlog == 1500
    assert q.dequeue(0) is pkt  # the very object comes back


def test_shaping_follows_rate():
    q = htb.Qdisc()
    q.add_class("1:1", "1:", "8mbit", burst=1600, cburst=1600)  # 1 MB/s
    for i in range(200):
        assert q.enqueue(i, "1:1", 0, size=1000) is None
    sent = drain(q)
    assert [p for _, p in sent] == list(range(200))  # FIFO order
    t_last = sent[-1][0]
    # 200 kB at 1 MB/s, less the initial burst.
    assert 0.19e9 <= t_last <= 0.2e9


def test_direct_queue_and_drops():
    q = htb.Qdisc(direct_qlen=2)  # no default: unclassified -> direct queue
    q.add_class("1:1", "1:", "1mbit")
    assert q.enqueue("a", 0, 0) is None
    assert q.enqueue("b", "1:", 0) is None  # the handle = the direct queue
    d = q.enqueue("c", 0, 0)
    assert isinstance(d, htb.Dropped)
    assert d.packet == "c" and d.reason == "direct_queue_full"
    packet, reason = d
    assert (packet, reason) == ("c", "direct_queue_full")
    assert d == htb.Dropped("c", "direct_queue_full")
    assert "direct_queue_full" in repr(d)
    assert q.qdisc_stats()["drops"] == 1
    assert [q.dequeue(0), q.dequeue(0)] == ["a", "b"]


def test_leaf_queue_full():
    q = htb.Qdisc()
    q.add_class("1:1", "1:", "1mbit")
    results = [q.enqueue(i, "1:1", 0, size=100) for i in range(1001)]
    assert results[:1000] == [None] * 1000
    assert results[1000] == htb.Dropped(1000, "queue_full")
    assert q.stats()["1:1"].drops == 1 and q.stats()["1:1"].qlen == 1000


def test_delete_change_and_purge():
    q = uplink()
    for i in range(3):
        q.enqueue(i, "1:20", 0, size=100)
    purged = q.delete_class("1:20")
    assert [(d.packet, d.reason) for d in purged] == [(0, "purged"), (1, "purged"), (2, "purged")]
    assert "1:20" not in q.stats()
    # A leaf that gets a child hands its packets back.
    q.enqueue("x", "1:10", 0, size=100)
    out = q.add_class("1:11", "1:10", "1mbit")
    assert [d.packet for d in out] == ["x"]
    assert q.change_class("1:11", "1:10", "2mbit", prio=3) == []
    st = q.stats()["1:11"]
    assert (st.rate, st.prio) == (2_000_000, 3)
    assert q.change_class("1:11", None, "3mbit") == []
    with pytest.raises(htb.ConfigError, match="parent"):
        q.change_class("1:11", "1:1", "3mbit")
    with pytest.raises(htb.ConfigError, match="in use"):
        q.delete_class("1:1")
    q.enqueue("y", "1:11", 0, size=10)
    assert [d.packet for d in q.reset()] == ["y"]


def test_from_tc_and_warnings():
    with pytest.warns(htb.HtbWarning, match="quantum of class 10001 is big"):
        q = htb.Qdisc.from_tc(
            "tc qdisc add dev eth0 root handle 1: htb default 20\n"
            "tc class add dev eth0 parent 1: classid 1:1 htb rate 30mbit\n"
            "tc class add dev eth0 parent 1:1 classid 1:20 htb rate 10mbit ceil 30mbit\n"
        )
    assert q.handle == "1:" and len(q.warnings) == 1
    assert q.enqueue(b"x" * 100, 0, 0) is None
    assert q.stats()["1:20"].qlen == 1
    with pytest.warns(htb.HtbWarning, match="small"):
        htb.Qdisc().add_class("1:1", "1:", "10kbit")


def test_int_handles_and_default_forms():
    for d in ("1:20", "20", 0x20, 0x10020):
        q = htb.Qdisc(default=d)
        q.add_class(0x10001, 0x10000, "10mbit")
        q.add_class("1:20", 0x10001, "1mbit", burst="15k", quantum="1500b")
        q.enqueue(1, 0, 0, size=64)
        assert q.stats()["1:20"].qlen == 1, d
        st = q.stats()["1:20"]
        assert abs(st.burst - 15 * 1024) <= 64 and st.quantum == 1500


def test_threads_share_a_qdisc():
    q = htb.Qdisc(default="1:1")
    q.add_class("1:1", "1:", "1gbit")

    def worker(base):
        for i in range(500):
            q.enqueue(base + i, "1:1", 0, size=64)

    ts = [threading.Thread(target=worker, args=(k * 1000,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    # The leaf's pfifo holds 1000; the rest came back as drops, none lost.
    assert len(q) == 1000 and q.stats()["1:1"].drops == 1000
    got = {p for _, p in drain(q)}
    assert len(got) == 1000
