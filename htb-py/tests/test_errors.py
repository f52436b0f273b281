"""Bad inputs raise the documented exceptions; nothing crashes the interpreter."""

import random

import pytest

import htb


def test_hierarchy():
    assert issubclass(htb.HtbError, ValueError)
    for e in (htb.ConfigError, htb.ParseError, htb.PacketError):
        assert issubclass(e, htb.HtbError)
    assert issubclass(htb.HtbWarning, UserWarning)


@pytest.fixture
def q():
    q = htb.Qdisc()
    q.add_class("1:1", "1:", "10mbit")
    return q


@pytest.mark.parametrize(
    "args, kwargs, exc, msg",
    [
        (("1:2", "1:", "10mbot"), {}, htb.ParseError, 'rate: unknown unit in "10mbot"'),
        (("1:2", "1:", ""), {}, htb.ParseError, "rate: empty value"),
        (("1:2", "1:", -5), {}, htb.ParseError, "rate"),
        (("1:2", "1:", 10.5), {}, TypeError, "rate must be"),
        (("1:2", "1:", None), {}, TypeError, "rate must be"),
        (("1:2", "1:", 0), {}, htb.ConfigError, "rate must be greater than zero"),
        (("1:2", "1:", "1mbit"), {"burst": "1.5b"}, htb.ParseError, "whole number of bytes"),
        (("1:2", "1:", "1mbit"), {"burst": [1]}, TypeError, "burst"),
        (("1:2", "1:", "1mbit"), {"prio": "high"}, TypeError, "prio"),
        (("1:2", "1:", "1mbit"), {"linklayer": "wifi"}, htb.ParseError, "linklayer"),
        (("1:2", "1:", "1mbit"), {"cburst": 2**40}, htb.ParseError, "cburst"),
        (("1:x", "1:", "1mbit"), {}, htb.ParseError, 'invalid class id "1:x"'),
        (("1:10000", "1:", "1mbit"), {}, htb.ParseError, "invalid class id"),
        (("2:2", "1:", "1mbit"), {}, htb.ConfigError, "does not belong to qdisc"),
        (("1:0", "1:", "1mbit"), {}, htb.ConfigError, "minor 0"),
        (("1:2", "1:9", "1mbit"), {}, htb.ConfigError, "parent class 1:9 does not exist"),
        (("1:1", "1:", "1mbit"), {}, htb.ConfigError, "class 1:1 already exists"),
        ((1.0, "1:", "1mbit"), {}, TypeError, "classid must be"),
        ((2**32, "1:", "1mbit"), {}, htb.ParseError, "out of range"),
        ((-1, "1:", "1mbit"), {}, htb.ParseError, "out of range"),
    ],
)
def test_add_class_errors(q, args, kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        q.add_class(*args, **kwargs)
    assert list(q.stats()) == ["1:1"]  # nothing changed


def test_enqueue_errors(q):
    with pytest.raises(TypeError, match="now"):
        q.enqueue(b"x", "1:1", "now")
    with pytest.raises(TypeError, match="size"):
        q.enqueue(b"x", "1:1", 0, size="big")
    with pytest.raises(htb.PacketError):
        q.enqueue(b"x", "1:1", 0, size=2**32)
    with pytest.raises(htb.PacketError):
        q.enqueue(b"x", "1:1", 0, size=-1)
    with pytest.raises(htb.ParseError):
        q.enqueue(b"x", "1:1", -1)
    with pytest.raises(TypeError):
        q.dequeue(None)
    with pytest.raises(htb.ConfigError, match="does not exist"):
        q.delete_class("1:7")
    with pytest.raises(htb.ParseError):
        htb.Qdisc(default="zz")
    with pytest.raises(htb.ParseError, match=r"^<tc>:1:"):
        htb.Qdisc.from_tc("tc filter add dev x\n")


def test_fuzz_never_crashes():
    rnd = random.Random(7)
    junk = [None, 1.5, -3, 2**70, "", "1:", "1:1", "1:ffff", "x", "10mbit", "1e3kbit", [1], b"1:1",
            "nan", "inf", "1:1:1", "-1:1", 0, 7, True]
    q = htb.Qdisc()
    for _ in range(3000):
        op = rnd.randrange(5)
        a = [rnd.choice(junk) for _ in range(4)]
        try:
            if op == 0:
                q.add_class(a[0], a[1], a[2], ceil=a[3])
            elif op == 1:
                q.enqueue(a[0], a[1], rnd.randrange(10**9), size=rnd.choice([None, 1, 1500]))
            elif op == 2:
                q.dequeue(rnd.randrange(10**10))
            elif op == 3:
                q.delete_class(a[0])
            else:
                q.change_class(a[0], None, a[1], burst=a[2])
        except (TypeError, ValueError):
            pass
        except htb.HtbWarning:
            pass
    assert isinstance(q.stats(), dict)
