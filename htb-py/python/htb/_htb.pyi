"""Type stubs for the native module ``htb._htb`` (re-exported by ``htb``)."""

import ipaddress
import os
from collections.abc import Iterable, Iterator
from typing import Any, Literal, Optional, Union, final

__version__: str

ClassId = Union[str, int]
"""``"1:10"`` (tc's hex ``major:minor``) or an int handle ``(major << 16) | minor``."""
Rate = Union[int, str]
"""An int in bits per second, or a tc rate string (``"10mbit"``; ``"mbps"`` is megabytes/s)."""
Size = Union[int, str]
"""An int in bytes, or a tc size string (``"15k"`` = 15360 bytes, ``"1600b"``)."""
Duration = Union[str, int]
"""``"10s"``, ``"100ms"``, ``"250us"`` (a bare number is seconds), or an int in ns."""
Address = Union[str, int, ipaddress.IPv4Address, ipaddress.IPv6Address]
"""An int below 2**32 is IPv4 (as ``ipaddress.ip_address`` decides), larger ints IPv6."""
PrefixLike = Union[
    str, ipaddress.IPv4Network, ipaddress.IPv6Network, ipaddress.IPv4Address, ipaddress.IPv6Address
]
DropReason = Literal["queue_full", "direct_queue_full", "classifier", "classify_loop", "purged", "leaf_queue"]
Packet = Union[bytes, bytearray, memoryview]
"""An IP packet starting at the IP header (``bytes`` is read in place; the others are copied)."""
Policy = Literal["linux", "first", "last", "bsd", "bsd-right", "linux-legacy", "windows", "solaris"]
"""Reassembly overlap policy (case-insensitive, ``_`` for ``-``)."""

class HtbError(ValueError):
    """Base class of every error raised by htb (a ValueError)."""

class ConfigError(HtbError):
    """A configuration call was refused (unknown class, duplicate route, ...)."""

class ParseError(HtbError):
    """Text did not parse: a class id, rate, size, duration, tc script, flows, prefix or route file."""

class PacketError(HtbError):
    """A packet the library cannot take: a size out of range, a malformed IP packet.

    Raised by ``Reassembler.push_many`` with two extra attributes: ``index``
    (the position of the bad packet) and ``results`` (the entries of the
    packets before it, which were processed).
    """

class ParamProblemError(PacketError):
    """An IPv6 fragment the kernel drops with ICMPv6 Parameter Problem (RFC 8200 4.5, RFC 7112).

    ``code``: 0 (erroneous header field: a non-last fragment whose length is
    not a multiple of 8, or data past 65535) or 3 (the first fragment lacks
    the upper-layer header). ``pointer``: offset of the offending byte from
    the start of the packet.
    """

    code: int
    pointer: int

class FragmentationNeededError(PacketError):
    """An IPv4 packet with DF set is larger than the MTU (``fragment`` without ``ignore_df``).

    ``mtu``: what the kernel reports in ICMP "fragmentation needed".
    """

    mtu: int

class HtbWarning(UserWarning):
    """A warning tc would print (e.g. a quantum clamped by r2q)."""

@final
class Dropped:
    """A packet handed back by the shaper, with the reason. Unpacks as ``packet, reason``."""

    packet: Any
    reason: DropReason
    def __init__(self, packet: Any, reason: str) -> None: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __eq__(self, other: object) -> bool: ...

@final
class ClassStats:
    """One class as ``tc -s -d class show`` reports it; ``str()`` gives tc's text.

    Rates in bits/s, sizes in bytes; ``tokens``/``ctokens`` are tc's signed
    credits in 64 ns ticks (negative: over rate/ceil).
    """

    classid: str
    parent: str
    bytes: int
    packets: int
    drops: int
    overlimits: int
    requeues: int
    backlog: int
    qlen: int
    lends: int
    borrows: int
    giants: int
    tokens: int
    ctokens: int
    rate: int
    ceil: int
    burst: int
    cburst: int
    level: int
    prio: int
    quantum: int
    leaf: bool
    mode: Literal["can-send", "may-borrow", "cant-send"]
    def as_dict(self) -> dict[str, Any]: ...

@final
class Qdisc:
    """An HTB qdisc shaping arbitrary Python objects. Times (``now``) are ints in ns.

    Thread-safe: calls on one qdisc from several threads are serialised.
    """

    def __init__(
        self,
        default: Optional[ClassId] = None,
        r2q: int = 10,
        direct_qlen: int = 1000,
        *,
        handle: int = 1,
    ) -> None:
        """``tc qdisc add ... root handle HANDLE: htb default DEFAULT r2q R2Q direct_qlen N``.

        ``default`` is a class id, tc's bare hex minor (``"20"``), or an int
        below 0x10000 taken as the minor; None sends unclassified packets to
        the direct queue.
        """
    @classmethod
    def from_tc(
        cls, text: str, *, ignore_unsupported: bool = False, link: Optional[Rate] = None
    ) -> "Qdisc":
        """Builds the qdisc of a tc script (text). Raises ParseError with ``<tc>:LINE:COL: error: ...``."""
    @property
    def warnings(self) -> list[str]: ...
    @property
    def handle(self) -> str: ...
    def add_class(
        self,
        classid: ClassId,
        parent: ClassId,
        rate: Rate,
        ceil: Optional[Rate] = None,
        burst: Optional[Size] = None,
        cburst: Optional[Size] = None,
        prio: int = 0,
        quantum: Optional[Size] = None,
        *,
        mtu: Optional[Size] = None,
        mpu: Optional[Size] = None,
        overhead: Optional[Size] = None,
        linklayer: Optional[Literal["ethernet", "atm", "adsl"]] = None,
        now: Optional[int] = None,
    ) -> list[Dropped]:
        """``tc class add``; ``parent`` is ``"1:"`` for a top-level class.

        Returns the packets purged from ``parent`` if it stopped being a leaf.
        Issues ``HtbWarning`` where tc warns (quantum clamped by r2q).
        """
    def change_class(
        self,
        classid: ClassId,
        parent: Optional[ClassId],
        rate: Rate,
        ceil: Optional[Rate] = None,
        burst: Optional[Size] = None,
        cburst: Optional[Size] = None,
        prio: int = 0,
        quantum: Optional[Size] = None,
        *,
        mtu: Optional[Size] = None,
        mpu: Optional[Size] = None,
        overhead: Optional[Size] = None,
        linklayer: Optional[Literal["ethernet", "atm", "adsl"]] = None,
    ) -> list[Dropped]:
        """``tc class change``; ``parent`` may be None, else it must be the class's parent."""
    def delete_class(self, classid: ClassId, *, now: Optional[int] = None) -> list[Dropped]:
        """``tc class del``; returns the packets the class held."""
    def enqueue(
        self, packet: Any, classid: ClassId, now: int, size: Optional[int] = None
    ) -> Optional[Dropped]:
        """Queues ``packet`` (charged ``len(packet)`` bytes unless ``size`` is given).

        ``classid``: a leaf, the qdisc handle ``"1:"`` (direct queue), or
        anything else such as 0 (unclassified: the default class). Returns
        None when queued, else ``Dropped(packet, reason)``.
        """
    def dequeue(self, now: int) -> Optional[Any]:
        """The next packet allowed to leave at ``now``, or None."""
    def next_wakeup(self) -> Optional[int]:
        """When to call dequeue again (ns), or None when nothing is queued."""
    def stats(self) -> dict[str, ClassStats]:
        """Every class, keyed by class id (``"1:10"``), in tree order."""
    def qdisc_stats(self) -> dict[str, int]:
        """bytes, packets, drops, overlimits, requeues, backlog, qlen, direct_packets."""
    def show(self) -> str:
        """``tc -s -d qdisc show`` + ``tc -s -d class show`` text."""
    def reset(self) -> list[Dropped]:
        """Empties every queue; returns the packets (reason ``"purged"``)."""
    def __len__(self) -> int: ...

@final
class SimResult:
    """Rates in bits/s. ``series[c][i]`` is class c's rate during the step ending at ``times[i]`` (s)."""

    classes: list[str]
    times: list[float]
    series: dict[str, list[float]]
    rates: dict[str, float]
    direct_rate: float
    dropped: int
    duration: float
    warmup: float
    step: float
    warnings: list[str]
    @property
    def window(self) -> dict[str, dict[str, float]]:
        """Per class: bytes, packets, drops, overlimits, lends, borrows, rate over the window."""

def simulate(
    script: Union[str, "os.PathLike[str]"],
    flows: Union[str, "os.PathLike[str]"],
    duration: Duration = "10s",
    step: Duration = "100ms",
    *,
    warmup: Duration = "1s",
    link: Optional[Rate] = None,
    backlog: int = 128,
    ignore_unsupported: bool = False,
) -> SimResult:
    """Runs ``htb simulate``: a tc script and a flows file (each as text, or a path).

    Flows lines: ``CLASSID OFFERED PACKET_SIZE [START [STOP]]``, e.g.
    ``1:10 max 1042`` (backlogged) or ``- 4mbit 1500 2s 8s`` (unclassified, paced).
    The GIL is released while the simulation runs.
    """

@final
class RouteType:
    """Non-unicast route types; use one as a value to make such a route."""

    BLACKHOLE: "RouteType"
    UNREACHABLE: "RouteType"
    PROHIBIT: "RouteType"
    def __int__(self) -> int: ...

@final
class Fib:
    """IPv4 + IPv6 longest-prefix match with per-prefix metrics (lowest wins).

    Thread-safe; lookups may run concurrently.
    """

    def __init__(self) -> None: ...
    def insert(
        self, prefix: PrefixLike, value: Any, metric: int = 0, *, replace: bool = False
    ) -> None:
        """``ip route add`` (ConfigError if prefix+metric exists) or, with replace, ``ip route replace``."""
    def __setitem__(self, prefix: PrefixLike, value: Any) -> None:
        """The metric-0 route of ``prefix``, replaced if present."""
    def __getitem__(self, prefix: PrefixLike) -> Any:
        """Value of the best route of exactly ``prefix``; KeyError if absent."""
    def __delitem__(self, prefix: PrefixLike) -> None:
        """Removes every route of ``prefix``; KeyError if absent."""
    def remove(self, prefix: PrefixLike, metric: Optional[int] = None) -> Any:
        """Removes one route (or all of the prefix); returns its value; KeyError if absent."""
    def __contains__(self, prefix: object) -> bool: ...
    def __len__(self) -> int:
        """Number of distinct prefixes."""
    @property
    def route_count(self) -> int: ...
    def __iter__(self) -> Iterator[str]:
        """The prefixes, IPv4 then IPv6, in address order (a snapshot)."""
    def items(self) -> list[tuple[str, Any]]: ...
    def routes(self) -> list[tuple[str, int, Any]]: ...
    def lookup(self, addr: Address) -> Optional[tuple[str, Any]]:
        """``(prefix, value)`` of the longest prefix holding ``addr``, or None."""
    def lookup_many(self, addrs: Iterable[Address]) -> list[Optional[tuple[str, Any]]]:
        """``lookup`` for each address, with the GIL released during the lookups."""
    def load(self, path: Union[str, "os.PathLike[str]"]) -> int:
        """Adds a route file's routes (all or nothing); returns how many."""

REASM_POLICIES: tuple[str, ...]
"""Every reassembly policy name, the default (``"linux"``) first."""

@final
class FragKey:
    """A reassembly queue's key, as the kernel keys it. Hashable."""

    family: Literal[4, 6]
    src: str
    dst: str
    id: int
    proto: Optional[int]
    """IPv4 protocol; None for IPv6 (not part of the IPv6 key)."""
    context: int
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ReasmEvent:
    """A queue ended by ``Reassembler.expire``. Unpacks as ``kind, key, icmp_quote``."""

    kind: Literal["timeout"]
    key: FragKey
    icmp_quote: Optional[bytes]
    """The offset-0 fragment from its IP header on, cut at 548 bytes (IPv4) or
    1232 (IPv6): what the kernel quotes in ICMP Time Exceeded (code 1); None
    when that fragment never arrived (no ICMP is sent)."""
    def __iter__(self) -> Iterator[Any]: ...
    def __eq__(self, other: object) -> bool: ...

@final
class Reassembler:
    """IP reassembly (IPv4 and IPv6), as today's Linux kernel does it, or an IDS target-based policy.

    Times (``now``) are ints in ns; the caller owns the clock. Thread-safe:
    calls on one reassembler from several threads are serialised.
    """

    def __init__(
        self,
        policy: Policy = "linux",
        high_thresh: Size = 4194304,
        timeout: Optional[float] = None,
        *,
        max_dist: int = 64,
        max_datagram: int = 65535,
    ) -> None:
        """Kernel sysctls: ``high_thresh`` = ``ipfrag_high_thresh`` (bytes held above which
        new fragments are refused), ``timeout`` = ``ipfrag_time`` and ``ip6frag_time`` in
        seconds (None: the kernel defaults, 30 s for IPv4 and 60 s for IPv6; a number sets
        both), ``max_dist`` = ``ipfrag_max_dist`` (IPv4; 0 disables), ``max_datagram``:
        largest reassembled datagram.

        ``policy``: ``"linux"`` (today's kernel: any overlap discards the datagram),
        ``"linux-legacy"`` (pre-4.19 trimming, the IDS literature's "linux"), ``"first"``,
        ``"last"``, ``"bsd"``, ``"bsd-right"``, ``"windows"``, ``"solaris"``; anything else
        raises ParseError.
        """
    def push(self, packet: Packet, now: int, *, context: int = 0) -> Optional[bytes]:
        """Takes one IP packet (IPv4 or IPv6) received at ``now`` (ns).

        Returns the whole datagram when this fragment completes it (IPv4 header
        rewritten; IPv6 Fragment header removed), the packet itself, unchanged, when it
        is not a fragment (the same object when it is ``bytes``), else None: held for
        later, or dropped (counted in ``stats`` and ``drops``). ``context`` separates
        queues like the kernel's defrag ``user``/VRF. A malformed packet raises
        PacketError; an IPv6 fragment the kernel answers with Parameter Problem raises
        ParamProblemError.
        """
    def push_many(
        self, packets: Iterable[Packet], now: Union[int, Iterable[int]], *, context: int = 0
    ) -> list[Optional[bytes]]:
        """``push`` for each packet, in order, with the GIL released; one entry per packet.

        ``now``: one time for all, or one per packet. A malformed packet stops the batch:
        the PacketError has ``index`` and ``results`` (entries of the packets before it).
        """
    def expire(self, now: int) -> list[ReasmEvent]:
        """Ends every queue whose lifetime is over at ``now`` (ns); one event each, oldest first."""
    def next_expiry(self) -> Optional[int]:
        """When the oldest queue expires (ns), or None when nothing is held."""
    @property
    def stats(self) -> dict[str, int]:
        """``ReasmReqds``, ``ReasmOKs``, ``ReasmFails``, ``ReasmTimeout``, ``ReasmOverlaps``
        (IPv4 and IPv6 together), as in ``/proc/net/snmp`` and ``nstat``.

        Non-fragments are not counted. Under ``"linux"`` ``ReasmOverlaps`` counts datagrams
        discarded for an overlap (as the kernel); under the IDS policies it counts fragments
        that overlapped held data (resolved by the policy, not a failure)."""
    def stats_for(self, family: Literal[4, 6]) -> dict[str, int]:
        """``stats`` of one family: 4 (``Ip:``) or 6 (``Ip6``)."""
    @property
    def drops(self) -> dict[str, int]:
        """Fragments not kept, by reason: ``duplicate``, ``overlap``, ``inconsistent``,
        ``memory_limit``, ``oversize``, ``ecn_mismatch``."""
    @property
    def mem_used(self) -> int:
        """Bytes held now (compared with ``high_thresh``)."""
    @property
    def queues(self) -> int:
        """Queues held now (also ``len()``)."""
    @property
    def policy(self) -> Policy: ...
    @property
    def high_thresh(self) -> int: ...
    @property
    def timeout_v4(self) -> float:
        """IPv4 queue lifetime, seconds."""
    @property
    def timeout_v6(self) -> float:
        """IPv6 queue lifetime, seconds."""
    @property
    def max_dist(self) -> int: ...
    @property
    def max_datagram(self) -> int: ...
    def __len__(self) -> int: ...

def fragment(
    packet: Packet, mtu: int, *, ipv6_id: Optional[int] = None, ignore_df: bool = False
) -> list[bytes]:
    """Fragments an IPv4 or IPv6 packet for a link of ``mtu`` bytes, as Linux does.

    A packet that fits is returned as its only fragment. IPv4 keeps the packet's id;
    IPv6 uses ``ipv6_id`` (None: random, as Linux). IPv4 with DF set raises
    FragmentationNeededError unless ``ignore_df``; an MTU too small for the packet
    (IPv6: below 1280) raises ConfigError with ``mtu`` and ``min``; a malformed packet
    raises PacketError.
    """
