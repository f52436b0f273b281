"""IPv4 / IPv6 packets and fragments built by hand (struct only), independent of htb.

The tests compare what htb does with packets made here, so nothing in this
module calls the library.
"""

import ipaddress
import struct

V4_SRC, V4_DST = "192.0.2.1", "198.51.100.7"
V6_SRC, V6_DST = "2001:db8::1", "2001:db8::2"


def checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum, ready to store."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(payload: bytes, *, ident=1, proto=17, offset=0, mf=False, df=False, tos=0, ttl=64,
         src=V4_SRC, dst=V4_DST) -> bytes:
    """An IPv4 packet (no options) carrying `payload` at fragment `offset` (bytes)."""
    assert offset % 8 == 0
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (offset >> 3)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), ident, flags, ttl, proto, 0,
                      ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + payload


def ipv6(payload: bytes, *, nh=59, src=V6_SRC, dst=V6_DST, hlim=64) -> bytes:
    """An IPv6 packet without extension headers."""
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, hlim,
                       ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed) + payload


def ipv6_frag(payload: bytes, *, ident=1, nh=59, offset=0, mf=False, src=V6_SRC, dst=V6_DST) -> bytes:
    """An IPv6 fragment: the fixed header, a Fragment header, `payload` at `offset`."""
    assert offset % 8 == 0
    fh = struct.pack("!BBHI", nh, 0, offset | (1 if mf else 0), ident)
    return ipv6(fh + payload, nh=44, src=src, dst=dst)


def v4_fields(pkt: bytes) -> dict:
    """The IPv4 header fields the tests look at."""
    ihl = (pkt[0] & 15) * 4
    tot, ident, frag = struct.unpack("!HHH", pkt[2:8])
    return {
        "ihl": ihl, "total_len": tot, "id": ident, "df": bool(frag & 0x4000),
        "mf": bool(frag & 0x2000), "offset": (frag & 0x1FFF) * 8, "proto": pkt[9],
        "checksum_ok": checksum(pkt[:ihl]) == 0, "payload": pkt[ihl:tot],
    }


def v6_frag_fields(pkt: bytes) -> dict:
    """Fields of an IPv6 fragment whose Fragment header follows the fixed header."""
    plen, nh = struct.unpack("!HB", pkt[4:7])
    assert nh == 44, nh
    fnh, _, off, ident = struct.unpack("!BBHI", pkt[40:48])
    return {"plen": plen, "nh": fnh, "offset": off & 0xFFF8, "mf": bool(off & 1), "id": ident,
            "payload": pkt[48:40 + plen]}
