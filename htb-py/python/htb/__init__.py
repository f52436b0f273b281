"""htb: the Linux HTB traffic shaper (``sch_htb``), a longest-prefix-match FIB, and
Linux-exact IP reassembly and fragmentation.

A thin binding of the Rust ``htb`` crate (the native module ``htb._htb``)::

    import htb

    q = htb.Qdisc(default="1:20")
    q.add_class("1:1", "1:", "30mbit")
    q.add_class("1:10", "1:1", "5mbit", ceil="30mbit")
    q.add_class("1:20", "1:1", "10mbit", ceil="30mbit", prio=1)
    q.enqueue(b"x" * 1042, "1:10", now=0)
    pkt = q.dequeue(now=0)

    r = htb.Reassembler()                  # today's Linux; policy="bsd", ...
    for frag in htb.fragment(datagram, mtu=576):
        whole = r.push(frag, now=0)        # the datagram once complete, else None

Rates are ints in bits/s or tc strings (``"10mbit"``), sizes ints in bytes or
tc strings (``"15k"``), class ids ``"1:10"`` or int handles, times ints in ns.
Errors are :class:`HtbError` (a ``ValueError``) or its subclasses
:class:`ConfigError`, :class:`ParseError` and :class:`PacketError` (with
:class:`ParamProblemError` and :class:`FragmentationNeededError`); wrong
argument types raise ``TypeError``.
"""

from ._htb import (
    ClassStats,
    ConfigError,
    Dropped,
    Fib,
    FragKey,
    FragmentationNeededError,
    HtbError,
    HtbWarning,
    PacketError,
    ParamProblemError,
    ParseError,
    Qdisc,
    REASM_POLICIES,
    ReasmEvent,
    Reassembler,
    RouteType,
    SimResult,
    __version__,
    fragment,
    simulate,
)

__all__ = [
    "ClassStats",
    "ConfigError",
    "Dropped",
    "Fib",
    "FragKey",
    "FragmentationNeededError",
    "HtbError",
    "HtbWarning",
    "PacketError",
    "ParamProblemError",
    "ParseError",
    "Qdisc",
    "REASM_POLICIES",
    "ReasmEvent",
    "Reassembler",
    "RouteType",
    "SimResult",
    "__version__",
    "fragment",
    "simulate",
]
