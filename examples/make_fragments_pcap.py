#!/usr/bin/env python3
"""Writes examples/fragments.pcap: a small Ethernet capture for `htb reasm`.

Standard library only. What is in it (times from 2023-11-14 22:13:20 UTC, 1 ms
apart), so that every counter of `htb reasm` moves:

  1  IPv4 UDP, not a fragment
  2  IPv4 datagram A (4000 bytes, id 0x1000): fragment 2 of 3
  3  ARP request (not IP)
  4  A fragment 1 of 3
  5  A fragment 3 of 3             -> A complete, written here
  6  IPv6 datagram B (2040 bytes, id 0xb0b0b0b0): fragment 1 of 2
  7  IPv6 ICMPv6 echo, not a fragment
  8  B fragment 2 of 2             -> B complete (fragment header removed)
  9  IPv4 datagram C (id 0x2000): bytes 0..16 = "a", MF
 10  C bytes 8..24 = "b", last     -> partial overlap: Linux drops C; the
                                      IDS policies keep "a" or "b" at 8..16
 11  IPv4 datagram D (id 0x3000, 1500 bytes): fragment 1 of 2
 12  D fragment 1 again, same bytes -> duplicate, ignored
 13  D fragment 2 of 2             -> D complete

`htb reasm examples/fragments.pcap out.pcap` (policy linux) writes 6
packets: 1, 3, A, 7, B, D; ReasmReqds 10, ReasmOKs 3, ReasmOverlaps 1.
"""
import os
import struct


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(ident, frag, proto, payload, src=b"\xc0\x00\x02\x01", dst=b"\xc6\x33\x64\x02"):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0, src, dst)
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def frag4(dgram_payload, ident, off, n, mf, proto=17):
    return ipv4(ident, (off // 8) | (0x2000 if mf else 0), proto, dgram_payload[off:off + n])


SRC6 = bytes.fromhex("20010db8000000000000000000000001")
DST6 = bytes.fromhex("20010db8000000000000000000000002")


def ipv6(nh, payload):
    return struct.pack("!IHBB", 6 << 28, len(payload), nh, 64) + SRC6 + DST6 + payload


def frag6(payload, nh, ident, off, n, mf):
    fh = struct.pack("!BBHI", nh, 0, off | (1 if mf else 0), ident)
    return ipv6(44, fh + payload[off:off + n])


def eth(ethertype, payload, src=b"\x02\x00\x00\x00\x00\x01", dst=b"\x02\x00\x00\x00\x00\x02"):
    return dst + src + struct.pack("!H", ethertype) + payload


def udp(n, seed):
    body = bytes((i * 7 + seed) & 0xFF for i in range(n - 8))
    return struct.pack("!HHHH", 40000, 9, n, 0) + body


def main():
    a = udp(3980, 1)
    b = udp(2000, 2)
    c = b"a" * 16 + b"b" * 16
    d = udp(1480, 3)
    echo = struct.pack("!BBHHH", 128, 0, 0, 1, 1) + b"ping"
    frames = [
        eth(0x0800, ipv4(0x0001, 0x4000, 17, udp(40, 0))),
        eth(0x0800, frag4(a, 0x1000, 1480, 1480, True)),
        eth(0x0806, bytes.fromhex("0001080006040001020000000001c0000201000000000000c6336402")),
        eth(0x0800, frag4(a, 0x1000, 0, 1480, True)),
        eth(0x0800, frag4(a, 0x1000, 2960, 1020, False)),
        eth(0x86DD, frag6(b, 17, 0xB0B0B0B0, 0, 1232, True)),
        eth(0x86DD, ipv6(58, echo)),
        eth(0x86DD, frag6(b, 17, 0xB0B0B0B0, 1232, 768, False)),
        eth(0x0800, ipv4(0x2000, 0x2000, 17, c[:16])),
        eth(0x0800, ipv4(0x2000, 1, 17, c[16:])),
        eth(0x0800, frag4(d, 0x3000, 0, 752, True)),
        eth(0x0800, frag4(d, 0x3000, 0, 752, True)),
        eth(0x0800, frag4(d, 0x3000, 752, 728, False)),
    ]
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, f in enumerate(frames):
        if len(f) < 60:
            f += b"\0" * (60 - len(f))  # Ethernet minimum frame, as captured
        out += struct.pack("<IIII", 1_700_000_000, i * 1000, len(f), len(f)) + f
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fragments.pcap")
    with open(path, "wb") as fh:
        fh.write(out)
    print(f"{path}: {len(frames)} packets, {len(out)} bytes")


if __name__ == "__main__":
    main()
