#!/usr/bin/python3
"""
Golden cases for mirrorgate's replay, built and checked by scapy, independently of mirrorgate.

    /usr/bin/python3 build_inputs.py build  DIR   # writes DIR/manifest.json, DIR/<case>.in.pcap, DIR/<case>.config.json
    /usr/bin/python3 build_inputs.py verify DIR   # reads DIR/<case>.out.pcap, prints one JSON verdict per case

The case table (`cases()`) is Katran-style: each case is
    { description, input frames (built here), expected verdict (drop reasons or forwarded), expected output }.
Expected output is a list of *whole* datagrams (the inner packet after DNAT to one of the allowed backends,
DF cleared, checksums recomputed by scapy). `verify` reassembles any fragments mirrorgate emitted, checks every
record on its own (IPv4 header checksum, UDP/TCP/ICMP checksum recomputed by scapy, lengths, DF clear, size
within the destination MTU, fragment layout), then matches the datagrams against the expectation byte for byte.

Everything is deterministic: fixed seeds, fixed timestamps. Addresses are only from 198.18.0.0/15 and the
TEST-NET ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).
"""
import copy
import difflib
import json
import logging
import os
import random
import sys
import zlib

logging.getLogger('scapy').setLevel(logging.ERROR)
try:
    from scapy.all import (ARP, ICMP, IP, TCP, UDP, VXLAN, Dot1AD, Dot1Q, Ether, IPOption_Router_Alert, IPOption_RR,
                           IPv6, Padding, Raw, RawPcapReader, RawPcapWriter, conf, defragment, fragment)
    from scapy.contrib.geneve import GENEVE, GeneveOptions
    from scapy.layers.inet6 import IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, defragment6, fragment6
    from scapy.layers.netflow import NetflowHeader, NetflowHeaderV5, NetflowRecordV5
except ImportError as err:  # pragma: no cover - the TS test reports this
    sys.stderr.write('build_inputs.py: cannot import scapy (%s): install the Debian package python3-scapy '
                     'and run this script with /usr/bin/python3\n' % err)
    sys.exit(3)

conf.verb = 0

# ---------------------------------------------------------------------------------------------------------------
# Addresses (198.18.0.0/15 and TEST-NET only)
# ---------------------------------------------------------------------------------------------------------------
ENI = '198.18.1.10'           # mirrored ENI: outer source of the VXLAN copies (in listen.sources)
GWLB = '198.18.1.30'          # Gateway Load Balancer: outer source of GENEVE (in listen.sources)
OUTSIDER = '198.19.1.10'      # outer source NOT in listen.sources
TARGET = '198.18.2.20'        # the mirror target (mirrorgate)
GWLBE = '198.18.2.30'         # GWLB endpoint the mirror session targets
EXP1, EXP2 = '198.18.100.1', '198.18.100.2'   # exporters (allowlisted)
PINGER, PINGER_PORTED = '198.18.100.7', '198.18.100.8'
STRANGER = '198.18.200.1'     # exporter not in the allowlist
COLLECTOR = '198.51.100.10'   # where the exporters send (the address AWS mirrors)
FDI = ('203.0.113.10', 9995)
EXP6, COLLECTOR6, FDI6 = '2001:db8:100::1', '2001:db8:51::10', ('2001:db8:203::10', 9995)
COPIES = [('203.0.113.11', 9995), ('203.0.113.12', 9996), ('203.0.113.13', None)]   # None: port kept
RR = [('203.0.113.21', 4739), ('203.0.113.22', 4739)]
SPREAD = [('203.0.113.31', 2055), ('203.0.113.32', 2055), ('203.0.113.33', 2055)]
SYSLOG = ('203.0.113.50', 1514)
PING = ('203.0.113.40', None)
VNI = 123
VNI_RANDOM = 0xABCDEF         # AWS picks a random 24-bit VNI when the session sets none

ENI_MAC, TARGET_MAC = '02:00:c6:12:01:0a', '02:00:c6:12:02:14'
ROUTER_MAC, COLLECTOR_MAC = '02:00:c6:12:64:fe', '02:00:c6:33:64:0a'
T0 = 1700000000.0

BASE_CONFIG = {
    'listen': {'port': 4789, 'genevePort': 6081, 'sources': ['198.18.1.0/24']},
    'sessions': [{'vni': VNI, 'name': 'prod'}, {'vni': VNI_RANDOM, 'name': 'aws-random'}],
    'allowlist': ['198.18.100.0/24', '2001:db8:100::/48'],
    'rules': [
        {'name': 'netflow6', 'match': {'protocol': 'udp', 'dstPort': 2055, 'dstCidr': ['2001:db8::/32']},
         'destination': 'fdi6'},
        {'name': 'netflow', 'match': {'protocol': 'udp', 'dstPort': 2055, 'dstCidr': ['198.51.100.0/24']},
         'destination': 'fdi'},
        {'name': 'sflow-copies', 'match': {'protocol': 'udp', 'dstPort': 6343}, 'destination': 'copies'},
        {'name': 'ipfix-rr', 'match': {'protocol': 'udp', 'dstPort': 4739}, 'destination': 'rr'},
        {'name': 'netflow-hash', 'match': {'protocol': 'udp', 'dstPort': 2056}, 'destination': 'spread'},
        {'name': 'syslog-tcp', 'match': {'protocol': 'tcp', 'dstPort': 6514}, 'destination': 'syslog'},
        {'name': 'ping', 'match': {'protocol': 'icmp', 'srcCidr': [PINGER + '/32']}, 'destination': 'ping'},
        {'name': 'ping-ported', 'match': {'protocol': 'icmp', 'srcCidr': [PINGER_PORTED + '/32']},
         'destination': 'fdi'},
    ],
    'destinations': {
        'fdi': {'backends': ['%s:%d' % FDI], 'mtu': 1500},
        'fdi6': {'backends': ['[%s]:%d' % FDI6], 'mtu': 1280},
        'copies': {'backends': [b if p is None else '%s:%d' % (b, p) for b, p in COPIES], 'balance': 'replicate'},
        'rr': {'backends': ['%s:%d' % b for b in RR], 'balance': 'round-robin'},
        'spread': {'backends': ['%s:%d' % b for b in SPREAD], 'balance': 'hash'},
        'syslog': {'backends': ['%s:%d' % SYSLOG]},
        'ping': {'backends': [PING[0]]},
    },
    'egress': {'mode': 'raw'},
    'control': {'listen': '127.0.0.1:9090'},
    'reassembly': {'maxDatagrams': 256, 'timeoutMs': 3000},
}


def mtu_of(config):
    """Backend address -> MTU of its destination (each output record must fit)."""
    out = {}
    for d in config['destinations'].values():
        for b in d['backends']:
            addr = b[1:b.index(']')] if b.startswith('[') else b.split(':')[0]
            out[addr] = d.get('mtu', 1500)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------------------------
def payload(n, seed):
    """Deterministic bytes; 'MG' first so no flow dissector in tshark takes them for NetFlow/IPFIX/sFlow."""
    r = random.Random(seed)
    return (b'MG' + bytes(r.getrandbits(8) for _ in range(max(0, n - 2))))[:n]


def netflow_v5(seq):
    recs = [NetflowRecordV5(src='198.18.50.%d' % (k + 1), dst='198.18.60.%d' % (k + 1), srcport=1000 + k,
                            dstport=443, prot=6, dpkts=10 + k, dOctets=1000 * (k + 1)) for k in range(2)]
    nf = NetflowHeader(version=5) / NetflowHeaderV5(count=2, unixSecs=1700000000, flowSequence=seq)
    for r in recs:
        nf = nf / r
    return bytes(nf)


def freeze(pkt):
    """Builds the packet (lengths, checksums) and re-reads it with the L4 payload as plain Raw bytes."""
    return parse_ip(bytes(pkt))


def parse_ip(b):
    """IPv4 or IPv6 packet from bytes, with whatever follows UDP/TCP/ICMP kept as Raw (no app dissection)."""
    p = IP(b) if b[0] >> 4 == 4 else IPv6(b)
    for layer in (UDP, TCP, ICMP):
        if layer in p and not (IP in p and (p[IP].frag or p[IP].flags.MF)) and IPv6ExtHdrFragment not in p:
            l4 = p[layer]
            data = bytes(l4.payload)
            l4.remove_payload()
            if data:
                l4.add_payload(Raw(data))
            break
    return p


def udp4(src=EXP1, dst=COLLECTOR, sport=50001, dport=2055, data=b'', ip_id=1, df=True, chksum=None, ttl=64,
         options=None, tos=0):
    ip = IP(src=src, dst=dst, id=ip_id, flags='DF' if df else 0, ttl=ttl, tos=tos)
    if options:
        ip.options = options
    u = UDP(sport=sport, dport=dport) if chksum is None else UDP(sport=sport, dport=dport, chksum=chksum)
    return freeze(ip / u / Raw(data))


def udp6(src=EXP6, dst=COLLECTOR6, sport=50006, dport=2055, data=b'', chksum=None, ext=None):
    ip = IPv6(src=src, dst=dst, hlim=64)
    if ext is not None:
        ip = ip / ext
    u = UDP(sport=sport, dport=dport) if chksum is None else UDP(sport=sport, dport=dport, chksum=chksum)
    return freeze(ip / u / Raw(data))


def ether(l3, tags=(), pad=b''):
    """The original (inner) Ethernet frame; tags: (tpid, vid) outermost first."""
    f = Ether(src=ROUTER_MAC, dst=COLLECTOR_MAC)
    for tpid, vid in tags:
        f = f / (Dot1AD(vlan=vid) if tpid == 0x88a8 else Dot1Q(vlan=vid))
    f = f / l3
    if pad:
        f = f / Padding(pad)
    return f


def vxlan(inner, vni=VNI, src=ENI, dport=4789, outer_tags=(), flags=0x08):
    """What AWS Traffic Mirroring delivers: outer IPv4/UDP(4789, checksum 0)/VXLAN(I, VNI)/original frame.
    `inner` may be a scapy frame or raw bytes (a truncated copy)."""
    raw = bytes(inner)
    sport = 49152 + zlib.crc32(raw[:64]) % 16384     # AWS: a hash of the inner flow
    o = Ether(src=ENI_MAC, dst=TARGET_MAC)
    for tpid, vid in outer_tags:
        o = o / Dot1Q(vlan=vid)
    return o / IP(src=src, dst=TARGET, ttl=255, flags='DF', id=0) / UDP(sport=sport, dport=dport, chksum=0) / \
        VXLAN(flags=flags, vni=vni) / Raw(raw)


def geneve_eth(inner, vni=VNI, options=(), proto=0x6558, src=GWLB, version=0):
    g = GENEVE(version=version, vni=vni, proto=proto, options=list(options))
    return Ether(src=ENI_MAC, dst=TARGET_MAC) / IP(src=src, dst=TARGET, ttl=255, id=0) / \
        UDP(sport=50123, dport=6081, chksum=0) / g / Raw(bytes(inner))


def aws_gwlb_tlvs():
    """The three TLVs (class 0x0108) AWS GWLB adds: GWLBE/VPCE id, attachment id, flow cookie (32 bytes)."""
    return [GeneveOptions(classid=0x0108, type=1, data=bytes.fromhex('0123456789abcdef')),
            GeneveOptions(classid=0x0108, type=2, data=bytes.fromhex('fedcba9876543210')),
            GeneveOptions(classid=0x0108, type=3, data=bytes.fromhex('2a5c0de1'))]


def ether4_raw(ip):
    return Ether(src=ROUTER_MAC, dst=COLLECTOR_MAC, type=0x0800) / Raw(bytes(ip))


def tcp4(src=EXP1, dst=COLLECTOR, sport=40000, dport=2055, flags='S'):
    return freeze(IP(src=src, dst=dst, id=9, flags='DF') / TCP(sport=sport, dport=dport, flags=flags, seq=1000,
                                                                window=64240, options=[('MSS', 1460)]))


def icmp4(src=EXP1, dst=COLLECTOR, seq=1):
    return freeze(IP(src=src, dst=dst, id=11) / ICMP(type=8, id=0x4d47, seq=seq) / Raw(payload(32, seq)))


def frags(ip, size):
    """scapy's own IPv4 fragmentation of an inner datagram (as a router before the mirrored ENI did)."""
    return [freeze(f) for f in fragment(ip, fragsize=size)]


def frags6(dg, size, ident, ext=None):
    """scapy's own IPv6 fragmentation (fragment6) of an inner datagram, as its exporter did; `ext` (the
    datagram's own) stays in front of the Fragment header, in every fragment."""
    ip = IPv6(bytes(dg))
    head = IPv6(src=ip.src, dst=ip.dst, hlim=ip.hlim)
    if ext is not None:
        head = head / ext
    return [freeze(f) for f in fragment6(head / IPv6ExtHdrFragment(id=ident) / ip[UDP], size)]


class Out:
    """One expected datagram: `inner` after DNAT to one of `backends` ((ip, port|None) — None keeps the port)."""

    def __init__(self, inner, backends, keep_zero=False, any_id=False, ttl=None, tos=None):
        self.inner, self.backends, self.keep_zero, self.any_id = inner, list(backends), keep_zero, any_id
        self.ttl, self.tos = ttl, tos  # what the destination's ttl / dscp policy makes of them


def dnat(inner, backend, keep_zero=False, ttl=None, tos=None):
    """The expected output, built by scapy: destination rewritten, source kept, DF cleared, checksums redone."""
    ip, port = backend
    p = parse_ip(bytes(inner))
    if IP in p:
        p[IP].dst = ip
        p[IP].flags = int(p[IP].flags) & ~0x2
        if ttl is not None:
            p[IP].ttl = ttl
        if tos is not None:
            p[IP].tos = tos
        del p[IP].chksum
    else:
        p[IPv6].dst = ip
    for layer in (UDP, TCP):
        if layer in p:
            if port is not None:
                p[layer].dport = port
            if not (keep_zero and layer is UDP and IP in p and p[UDP].chksum == 0):
                del p[layer].chksum
    if ICMP in p:
        del p[ICMP].chksum
    return bytes(p)


def case(name, description, frames, forwarded, tx, drops=None, out=(), ordered=True, combine=True, checks=(),
         reassembly=None, drops_total=None, config=None, times=None):
    return dict(name=name, description=description, frames=frames, forwarded=forwarded, tx=tx,
                drops=drops if drops is not None else ({} if drops_total is None else None), drops_total=drops_total,
                out=list(out), ordered=ordered, combine=combine, checks=list(checks), reassembly=reassembly,
                config=config or BASE_CONFIG, times=times)


# ---------------------------------------------------------------------------------------------------------------
# The case table
# ---------------------------------------------------------------------------------------------------------------
def cases():
    C = []

    # --- DNAT basics -------------------------------------------------------------------------------------------
    nf = udp4(data=netflow_v5(1), ip_id=0x1001)
    C.append(case('dnat_basic', 'NetFlow v5 over IPv4/UDP, DF set: dst -> 203.0.113.10:9995, src ip:port kept, '
                  'DF cleared, IP and UDP checksums valid', [vxlan(ether(nf))], 1, 1, out=[Out(nf, [FDI])]))

    p = udp4(data=payload(40, 2), ip_id=0x1002)
    C.append(case('vni_mismatch', 'VXLAN VNI 124 is not a configured session', [vxlan(ether(p), vni=124)], 0, 0,
                  {'unknown_vni': 1}))

    p = udp4(data=payload(60, 3), ip_id=0x1003)
    C.append(case('vni_24bit_random', 'AWS-style random 24-bit VNI 0xabcdef (configured) is accepted',
                  [vxlan(ether(p), vni=VNI_RANDOM)], 1, 1, out=[Out(p, [FDI])]))

    # --- inner Ethernet encapsulations ---------------------------------------------------------------------------
    p = udp4(data=payload(80, 4), ip_id=0x1004, sport=50004)
    C.append(case('vlan_8021q', 'inner frame with one 802.1Q tag (VID 100)',
                  [vxlan(ether(p, tags=[(0x8100, 100)]))], 1, 1, out=[Out(p, [FDI])]))
    p = udp4(data=payload(80, 5), ip_id=0x1005, sport=50005)
    C.append(case('qinq_88a8', 'inner QinQ frame: 802.1ad S-tag 10 + 802.1Q C-tag 20',
                  [vxlan(ether(p, tags=[(0x88a8, 10), (0x8100, 20)]))], 1, 1, out=[Out(p, [FDI])]))
    p = udp4(data=payload(80, 6), ip_id=0x1006, sport=50006)
    C.append(case('qinq_8100x2', 'inner double 802.1Q (0x8100 0x8100) frame',
                  [vxlan(ether(p, tags=[(0x8100, 30), (0x8100, 40)]))], 1, 1, out=[Out(p, [FDI])]))
    p = udp4(data=payload(80, 7), ip_id=0x1007)
    C.append(case('triple_tag', 'three VLAN tags on the inner frame (documented: malformed)',
                  [vxlan(ether(p, tags=[(0x88a8, 1), (0x8100, 2), (0x8100, 3)]))], 0, 0, {'inner_eth_malformed': 1}))
    p = udp4(data=payload(70, 8), ip_id=0x1008, sport=50008)
    C.append(case('outer_vlan', 'outer (capture) frame carries an 802.1Q tag', [vxlan(ether(p), outer_tags=[(0x8100, 7)])],
                  1, 1, out=[Out(p, [FDI])]))
    p = udp4(data=b'MGpd', ip_id=0x1009, sport=50009)
    C.append(case('eth_padding', 'minimum-size inner frame with 14 bytes of Ethernet padding: padding not forwarded',
                  [vxlan(ether(p, pad=b'\xaa' * 14))], 1, 1, out=[Out(p, [FDI])]))

    # --- IPv6 ----------------------------------------------------------------------------------------------------
    p = udp6(data=payload(120, 10))
    C.append(case('ipv6_udp', 'IPv6/UDP to [2001:db8:51::10]:2055 -> [2001:db8:203::10]:9995, UDP checksum valid',
                  [vxlan(ether(p))], 1, 1, out=[Out(p, [FDI6])]))
    p = udp6(data=payload(64, 11), sport=50011, chksum=0)
    C.append(case('ipv6_udp_zero_checksum', 'IPv6/UDP with checksum 0 (illegal, RFC 8200 8.1): sent with a valid one',
                  [vxlan(ether(p))], 1, 1, out=[Out(p, [FDI6])]))
    p = udp6(data=payload(90, 12), sport=50012, ext=IPv6ExtHdrDestOpt())
    C.append(case('ipv6_ext_header', 'IPv6 with a Destination Options header before UDP',
                  [vxlan(ether(p))], 1, 1, out=[Out(p, [FDI6])]))
    p = udp6(data=payload(1400, 13), sport=50013)
    C.append(case('ipv6_fragmented_out', 'IPv6/UDP of 1448 bytes to a 1280-MTU destination: IPv6 fragments '
                  '(fragment header), defragment6 gives the datagram back', [vxlan(ether(p))], 1, 2, out=[Out(p, [FDI6])]))
    whole = udp6(data=payload(1400, 14), sport=50014)
    truncated = bytes(ether(whole))[:14 + 40 + 8 + 100]
    C.append(case('ipv6_truncated', 'inner IPv6 cut by the mirror (Payload Length larger than captured)',
                  [vxlan(truncated)], 0, 0, {'ip6_truncated': 1}))

    # --- inner IPv6 fragments ------------------------------------------------------------------------------------
    dg = udp6(data=payload(1000, 40), sport=50040)
    fs = frags6(dg, 400, 0x6001)
    C.append(case('frag6_in_order', 'inner IPv6 datagram in 3 fragment6 fragments, in order: reassembled without its '
                  'Fragment header, sent whole', [vxlan(ether(f)) for f in fs], 1, 1, out=[Out(dg, [FDI6])],
                  reassembly={'merged': len(fs) - 1, 'reassembled': 1, 'waiting': 0}))
    hbh = IPv6ExtHdrHopByHop()
    dg = udp6(data=payload(1000, 41), sport=50041, ext=hbh)
    fs = frags6(dg, 400, 0x6002, ext=hbh)
    C.append(case('frag6_hop_by_hop_reversed', 'IPv6 fragments after a Hop-by-Hop header, last first: the '
                  'datagram keeps the Hop-by-Hop header', [vxlan(ether(f)) for f in reversed(fs)], 1, 1,
                  out=[Out(dg, [FDI6])], reassembly={'merged': len(fs) - 1, 'reassembled': 1, 'waiting': 0}))
    dg = udp6(data=payload(1000, 42), sport=50042)
    fs = frags6(dg, 400, 0x6003)
    C.append(case('frag6_duplicate', 'an IPv6 fragment repeated: the copy is dropped, the datagram goes (RFC 5722 '
                  'errata)', [vxlan(ether(f)) for f in [fs[0], fs[1], fs[1], fs[2]]], 1, 1, {'frag6_duplicate': 1},
                  out=[Out(dg, [FDI6])], reassembly={'merged': 2, 'reassembled': 1, 'waiting': 0}))
    dg = udp6(data=payload(1000, 43), sport=50043)
    fs = frags6(dg, 400, 0x6004)
    shifted = fs[1].copy()
    shifted[IPv6ExtHdrFragment].offset -= 1
    C.append(case('frag6_overlap', 'an IPv6 fragment partly overlapping the one held: both dropped (RFC 5722)',
                  [vxlan(ether(fs[0])), vxlan(ether(freeze(shifted)))], 0, 0, {'frag6_overlap': 2},
                  reassembly={'merged': 0, 'reassembled': 0, 'waiting': 0}, combine=False))
    dg = udp6(data=payload(100, 44), sport=50044)
    fs = frags6(dg, 1280, 0x6005)
    C.append(case('frag6_atomic', 'an atomic IPv6 fragment (offset 0, M clear; RFC 6946) is the datagram: sent '
                  'without its Fragment header', [vxlan(ether(f)) for f in fs], 1, 1, out=[Out(dg, [FDI6])],
                  reassembly={'merged': 0, 'reassembled': 1, 'waiting': 0}))
    dg = udp6(data=payload(1000, 45), sport=50045)
    C.append(case('frag6_incomplete', 'only the first IPv6 fragment: held, counted as waiting',
                  [vxlan(ether(frags6(dg, 400, 0x6006)[0]))], 0, 0,
                  reassembly={'merged': 0, 'reassembled': 0, 'waiting': 1}, combine=False))

    # --- inner IPv4 fragments ------------------------------------------------------------------------------------
    dg = udp4(data=payload(1000, 20), ip_id=0x2001, df=False, sport=50020)
    C.append(case('frag_in_order', 'inner datagram in 3 scapy fragments, in order: reassembled, sent whole',
                  [vxlan(ether(f)) for f in frags(dg, 400)], 1, 1, out=[Out(dg, [FDI])],
                  reassembly={'merged': 2, 'reassembled': 1, 'waiting': 0}))
    dg = udp4(data=payload(1000, 21), ip_id=0x2002, df=False, sport=50021)
    C.append(case('frag_reverse_order', 'inner datagram in 3 fragments, last first: reassembled, sent whole',
                  [vxlan(ether(f)) for f in reversed(frags(dg, 400))], 1, 1, out=[Out(dg, [FDI])],
                  reassembly={'merged': 2, 'reassembled': 1, 'waiting': 0}))
    dg = udp4(data=payload(2400, 22), ip_id=0x2003, df=False, sport=50022)
    C.append(case('frag_refragment', 'inner 2428-byte datagram in 3 fragments: reassembled, then re-fragmented to '
                  'MTU 1500; defragment gives the original payload', [vxlan(ether(f)) for f in frags(dg, 1000)], 1, 2,
                  out=[Out(dg, [FDI])], reassembly={'merged': 2, 'reassembled': 1, 'waiting': 0}))
    dg = udp4(data=payload(1000, 23), ip_id=0x2004, df=False, sport=50023)
    fs = frags(dg, 400)
    C.append(case('frag_duplicate', 'a fragment repeated: the copy is dropped as an overlap, the datagram goes',
                  [vxlan(ether(f)) for f in [fs[0], fs[1], fs[1], fs[2]]], 1, 1, {'frag_overlap': 1},
                  out=[Out(dg, [FDI])], reassembly={'merged': 2, 'reassembled': 1, 'waiting': 0}))
    dg = udp4(data=payload(1000, 24), ip_id=0x2005, df=False, sport=50024)
    C.append(case('frag_incomplete', 'only the first of 2 fragments: held, counted as waiting',
                  [vxlan(ether(frags(dg, 504)[0]))], 0, 0, reassembly={'merged': 0, 'reassembled': 0, 'waiting': 1},
                  combine=False))
    dg = udp4(data=payload(1000, 25), ip_id=0x2006, df=False, sport=50025)
    fs = frags(dg, 504)
    C.append(case('frag_timeout_same_batch', 'fragment 1 at t=0, fragment 2 at t=10 s (timeout 3 s): the first has '
                  'expired (reassembly_timeout), the second waits', [vxlan(ether(f)) for f in fs], 0, 0,
                  {'reassembly_timeout': 1}, reassembly={'merged': 0, 'reassembled': 0, 'waiting': 1},
                  combine=False, times=[0.0, 10.0]))
    dg = udp4(data=payload(1000, 26), ip_id=0x2007, df=False, sport=50026)
    fs = frags(dg, 504)
    fill = [udp4(src='198.18.100.%d' % (1 + k % 40), data=payload(48, 1000 + k), ip_id=0x3000 + k, sport=51000 + k)
            for k in range(300)]
    C.append(case('frag_timeout_across_batches', 'fragment 1 at t=0, 300 packets, fragment 2 at t=10 s: the first '
                  'expired, 300 forwarded', [vxlan(ether(fs[0]))] + [vxlan(ether(f)) for f in fill] +
                  [vxlan(ether(fs[1]))], 300, 300, {'reassembly_timeout': 1}, out=[Out(f, [FDI]) for f in fill],
                  ordered=False, reassembly={'merged': 0, 'reassembled': 0, 'waiting': 1}, combine=False,
                  times=[0.0] + [0.001 * (k + 1) for k in range(300)] + [10.0]))

    # --- AWS truncation ------------------------------------------------------------------------------------------
    whole = udp4(data=payload(1372, 30), ip_id=0x1030)
    C.append(case('truncated_ipv4', 'inner IPv4 Total Length 1400, mirror copy cut to 128 bytes of IP '
                  '(PacketLength truncation)', [vxlan(bytes(ether(whole))[:14 + 128])], 0, 0, {'ip4_truncated': 1}))

    # --- DF set, larger than the destination MTU ----------------------------------------------------------------
    big = udp4(data=payload(2852, 31), ip_id=0x5151, sport=50031)
    C.append(case('big_df_2852', '2852-byte payload, DF set, to MTU 1500: fragments <= 1500, DF clear, one IP ID, '
                  'contiguous offsets, tshark/scapy reassemble the exact payload', [vxlan(ether(big))], 1, 2,
                  out=[Out(big, [FDI])]))
    big0 = udp4(data=payload(2852, 32), ip_id=0, sport=50032)
    C.append(case('big_df_id0', 'as big_df_2852 but IP ID 0 (Linux DF packets): fragments get one non-zero ID',
                  [vxlan(ether(big0))], 1, 2, out=[Out(big0, [FDI], any_id=True)]))
    bigo = udp4(data=payload(2852, 33), ip_id=0x5153, sport=50033,
                options=[IPOption_RR(routers=['198.18.1.1']), IPOption_Router_Alert()])
    C.append(case('big_ip_options', '2852-byte payload with IP options (Record Route, Router Alert): later fragments '
                  'carry only the copied option (RFC 791)', [vxlan(ether(bigo))], 1, 2, out=[Out(bigo, [FDI])]))
    p1500 = udp4(data=payload(1472, 34), ip_id=0x1034, sport=50034)
    C.append(case('mtu_exact', 'IPv4 packet of exactly 1500 bytes: sent whole', [vxlan(ether(p1500))], 1, 1,
                  out=[Out(p1500, [FDI])]))
    p1501 = udp4(data=payload(1473, 35), ip_id=0x1035, sport=50035)
    C.append(case('mtu_plus_one', 'IPv4 packet of 1501 bytes: two fragments', [vxlan(ether(p1501))], 1, 2,
                  out=[Out(p1501, [FDI])]))

    # --- egress policies (destination ttl / dscp) -------------------------------------------------------------------
    policy = copy.deepcopy(BASE_CONFIG)
    policy['destinations']['fdi'].update({'ttl': 'decrement', 'dscp': 46})
    p = udp4(data=payload(60, 36), ip_id=0x1036, sport=50036, ttl=64, tos=0x01)
    C.append(case('ttl_decrement_dscp', 'ttl: decrement, dscp: 46: TTL 64 -> 63, TOS 0x01 -> 0xb9 (ECN kept)',
                  [vxlan(ether(p))], 1, 1, out=[Out(p, [FDI], ttl=63, tos=(46 << 2) | 0x01)], config=policy,
                  combine=False))
    p = udp4(data=payload(60, 37), ip_id=0x1037, sport=50037, ttl=1)
    C.append(case('ttl_expired', 'ttl: decrement of a packet with TTL 1: dropped as a router would', [vxlan(ether(p))],
                  0, 0, {'ttl_expired': 1}, config=policy, combine=False))
    fixed = copy.deepcopy(BASE_CONFIG)
    fixed['destinations']['fdi']['ttl'] = 200
    p = udp4(data=payload(60, 38), ip_id=0x1038, sport=50038, ttl=3)
    C.append(case('ttl_set', 'ttl: 200 sets it whatever came in', [vxlan(ether(p))], 1, 1,
                  out=[Out(p, [FDI], ttl=200)], config=fixed, combine=False))

    # --- rules ---------------------------------------------------------------------------------------------------
    C.append(case('tcp_no_rule', 'TCP SYN to 198.51.100.10:2055 (rules select UDP)', [vxlan(ether(tcp4()))], 0, 0,
                  {'no_rule': 1}))
    C.append(case('icmp_no_rule', 'ICMP echo from an exporter no rule selects', [vxlan(ether(icmp4()))], 0, 0,
                  {'no_rule': 1}))
    p = udp4(dport=53, data=payload(30, 40), ip_id=0x1040)
    C.append(case('udp_other_port', 'UDP to port 53', [vxlan(ether(p))], 0, 0, {'no_rule': 1}))
    t = tcp4(dport=6514, sport=40001)
    C.append(case('tcp_rule', 'TCP SYN selected by a tcp rule: dst -> 203.0.113.50:1514, TCP checksum valid',
                  [vxlan(ether(t))], 1, 1, out=[Out(t, [SYSLOG])]))
    i = icmp4(src=PINGER, seq=2)
    C.append(case('icmp_portless_backend', 'ICMP to a portless backend: dst -> 203.0.113.40, ICMP checksum valid',
                  [vxlan(ether(i))], 1, 1, out=[Out(i, [PING])]))
    i = icmp4(src=PINGER_PORTED, seq=3)
    C.append(case('icmp_ported_backend', 'ICMP to a backend that names a port', [vxlan(ether(i))], 0, 0,
                  {'no_port_to_rewrite': 1}))

    # --- allowlists ----------------------------------------------------------------------------------------------
    p = udp4(src=STRANGER, data=payload(40, 50), ip_id=0x1050)
    C.append(case('exporter_not_allowed', 'inner source 198.18.200.1 not in the allowlist', [vxlan(ether(p))], 0, 0,
                  {'exporter_not_allowed': 1}))
    p = udp4(data=payload(40, 51), ip_id=0x1051)
    C.append(case('source_not_allowed', 'outer source 198.19.1.10 not in listen.sources',
                  [vxlan(ether(p), src=OUTSIDER)], 0, 0, {'source_not_allowed': 1}))

    # --- checksums -----------------------------------------------------------------------------------------------
    p = udp4(data=netflow_v5(2), ip_id=0x1060, sport=50060, chksum=0)
    C.append(case('udp_zero_checksum', 'inner IPv4 UDP checksum 0 ("none") stays 0 after DNAT',
                  [vxlan(ether(p))], 1, 1, out=[Out(p, [FDI], keep_zero=True)]))
    p = craft_checksum(target_out=0xFFFF, seed=61, sport=50061)
    C.append(case('udp_checksum_to_ffff', 'datagram whose checksum after DNAT computes to 0: sent as 0xffff '
                  '(RFC 768), never 0', [vxlan(ether(p))], 1, 1, out=[Out(p, [FDI])]))
    p = craft_checksum(target_in=0xFFFF, seed=62, sport=50062)
    C.append(case('udp_checksum_from_ffff', 'datagram arriving with checksum 0xffff (computed 0): updated correctly',
                  [vxlan(ether(p))], 1, 1, out=[Out(p, [FDI])]))

    # --- balancing -----------------------------------------------------------------------------------------------
    p = udp4(dport=6343, data=payload(200, 70), ip_id=0x1070, sport=50070)
    C.append(case('replicate_3', 'replicate destination with 3 backends: 3 packets, each valid',
                  [vxlan(ether(p))], 1, 3, out=[Out(p, [b]) for b in COPIES], ordered=False))
    big = udp4(dport=6343, data=payload(2852, 71), ip_id=0x1071, sport=50071)
    C.append(case('replicate_big', 'replicate x fragmentation: a 2852-byte DF datagram to 3 backends -> 3 x 2 '
                  'fragments, each train reassembles', [vxlan(ether(big))], 1, 6,
                  out=[Out(big, [b]) for b in COPIES], ordered=False))
    rr = [udp4(dport=4739, data=payload(100, 80 + k), ip_id=0x1080 + k, sport=50080) for k in range(4)]
    C.append(case('round_robin', 'round-robin over 2 backends: 4 packets alternate',
                  [vxlan(ether(x)) for x in rr], 4, 4, out=[Out(x, RR) for x in rr], checks=['rr_alternates']))
    hs = [udp4(src=s, dport=2056, data=payload(60, 90 + k), ip_id=0x1090 + k, sport=50090)
          for k, s in enumerate([EXP1, EXP2, EXP1, EXP2, EXP1, EXP2])]
    C.append(case('hash_sticky', 'hash balance: each exporter stays on one backend',
                  [vxlan(ether(x)) for x in hs], 6, 6, out=[Out(x, SPREAD) for x in hs], checks=['hash_sticky']))

    # AWS VPCs run a 9001-byte MTU: exporters inside one may send jumbo datagrams, and the mirror keeps them whole.
    jumbo = [udp4(src='198.18.100.%d' % (1 + k % 40), data=payload(8972, 700 + k), ip_id=0x7000 + k, sport=54000 + k)
             for k in range(200)]
    C.append(case('jumbo_burst', '200 mirrored 9000-byte DF datagrams (VPC jumbo MTU) to MTU 1500: 7 fragments each, '
                  'none lost', [vxlan(ether(p)) for p in jumbo], 200, 1400, out=[Out(p, [FDI]) for p in jumbo],
                  ordered=False, combine=False, times=[0.0001 * k for k in range(200)]))

    # --- GENEVE --------------------------------------------------------------------------------------------------
    p = udp4(data=payload(100, 100), ip_id=0x1100, sport=50100)
    opts = [GeneveOptions(classid=0x0108, type=1, data=bytes.fromhex('0123456789abcdef')),
            GeneveOptions(classid=0x0108, type=3, data=bytes.fromhex('2a5c0de1'))]
    C.append(case('geneve_options', 'GENEVE on 6081 with two options (20 bytes), Ethernet payload, VNI 123',
                  [geneve_eth(ether(p), options=opts)], 1, 1, out=[Out(p, [FDI])]))
    p = udp4(data=payload(100, 101), ip_id=0x1101)
    C.append(case('geneve_unknown_vni', 'GENEVE with VNI 9 (not a session)', [geneve_eth(ether(p), vni=9)], 0, 0,
                  {'geneve_unknown_vni': 1}))
    p = udp4(data=payload(100, 102), ip_id=0x1102, sport=50102)
    mirrored = IP(src=ENI, dst=GWLBE, ttl=255, flags='DF') / UDP(sport=50102, dport=4789, chksum=0) / \
        VXLAN(vni=VNI) / ether(p)
    C.append(case('geneve_gwlb_aws', 'AWS GWLB endpoint as mirror target: GENEVE (protocol 0x0800, the three AWS '
                  'TLVs, 68 bytes overhead) wrapping the VXLAN mirror copy', [geneve_eth(mirrored, vni=0,
                  options=aws_gwlb_tlvs(), proto=0x0800)], 1, 1, out=[Out(p, [FDI])],
                  combine=False))   # kept out of `combined`: it fails on its own (see the report)

    # --- garbage -------------------------------------------------------------------------------------------------
    g, reasons = structured_garbage()
    C.append(case('garbage_structured', 'one malformed packet per drop reason of the decoders', g, 0, 0, reasons))
    C.append(case('garbage_random', '300 random frames / random VXLAN payloads / short frames: no crash, all '
                  'accounted', random_garbage(), 0, 0, drops_total=300, combine=False))

    # --- many packets across batch boundaries ---------------------------------------------------------------------
    C.append(bulk_case())

    # --- everything that shares the base config, in one capture ---------------------------------------------------
    C.append(combined_case(C))
    return C


def craft_checksum(seed, sport, target_out=None, target_in=None):
    """A datagram whose UDP checksum (after DNAT, or as received) computes to zero, so 0xffff goes on the wire."""
    data = bytearray(payload(64, seed))
    data[2:4] = b'\x00\x00'
    p = udp4(data=bytes(data), ip_id=0x1000 + seed, sport=sport)
    ref = parse_ip(dnat(p, FDI)) if target_out is not None else p
    s = ~ref[UDP].chksum & 0xFFFF       # one's complement sum of everything (word at data[2:4] is 0)
    data[2:4] = (0xFFFF - s).to_bytes(2, 'big')
    p = udp4(data=bytes(data), ip_id=0x1000 + seed, sport=sport)
    if target_out is not None:
        assert parse_ip(dnat(p, FDI))[UDP].chksum == 0xFFFF and p[UDP].chksum not in (0, 0xFFFF)
    else:
        assert p[UDP].chksum == 0xFFFF
    return p


def structured_garbage():
    good = udp4(data=payload(40, 200), ip_id=0x1200)
    frames, reasons = [], {}

    def add(reason, f):
        frames.append(f)
        reasons[reason] = reasons.get(reason, 0) + 1

    outer = Ether(src=ENI_MAC, dst=TARGET_MAC)
    oip = IP(src=ENI, dst=TARGET, ttl=255)
    add('outer_eth_truncated', Raw(b'\x02\x00\xc6\x12\x02\x14\x02\x00\xc6\x12'))
    add('outer_not_ipv4', outer / ARP(psrc=ENI, pdst=TARGET))
    add('outer_not_ipv4', outer / IPv6(src='2001:db8:1::10', dst='2001:db8:2::20') / UDP(sport=1, dport=4789) /
        VXLAN(vni=VNI) / ether(good))
    add('outer_ip_truncated', Ether(src=ENI_MAC, dst=TARGET_MAC, type=0x0800) / Raw(b'\x45\x00\x00\x40' + b'\x00' * 8))
    add('outer_ip_malformed', outer / oip / UDP(sport=1, dport=4789, len=4) / Raw(b'\x08\x00\x00\x00'))
    add('outer_not_udp', outer / oip / TCP(sport=1, dport=4789) / Raw(bytes(VXLAN(vni=VNI) / ether(good))))
    add('outer_fragment', outer / IP(src=ENI, dst=TARGET, flags='MF', id=7) / UDP(sport=1, dport=4789) /
        VXLAN(vni=VNI) / ether(good))
    add('not_tunnel_port', vxlan(ether(good), dport=4790))
    add('vxlan_truncated', outer / oip / UDP(sport=1, dport=4789) / Raw(b'\x08\x00\x00'))
    add('vxlan_truncated', outer / oip / UDP(sport=2, dport=4789))
    add('vxlan_malformed', vxlan(ether(good), flags=0x00))
    add('inner_eth_truncated', vxlan(b'\x02\x00\x00\x00\x00\x01'))
    add('inner_not_ip', vxlan(Ether(src=ROUTER_MAC, dst='ff:ff:ff:ff:ff:ff') / ARP(psrc=EXP1, pdst=COLLECTOR)))
    add('ip4_malformed', vxlan(Ether(src=ROUTER_MAC, dst=COLLECTOR_MAC, type=0x0800) / Raw(b'\x55' + b'\x00' * 40)))
    bad = bytearray(bytes(good))
    bad[10] ^= 0x55
    add('ip4_bad_checksum', vxlan(Ether(src=ROUTER_MAC, dst=COLLECTOR_MAC, type=0x0800) / Raw(bytes(bad))))
    # deliberately inconsistent packets travel as raw bytes, so no re-dissection can "repair" them
    add('udp_malformed', vxlan(ether4_raw(IP(src=EXP1, dst=COLLECTOR, id=0x1201) / UDP(sport=1, dport=2055, len=100) /
                                          Raw(payload(40, 201)))))
    add('l4_truncated', vxlan(ether4_raw(IP(src=EXP1, dst=COLLECTOR, id=0x1202, proto=17) / Raw(b'\xc3\x51\x08\x07'))))
    add('frag6_malformed', vxlan(Ether(src=ROUTER_MAC, dst=COLLECTOR_MAC, type=0x86dd) /
                                 Raw(bytes(IPv6(src=EXP6, dst=COLLECTOR6) / IPv6ExtHdrFragment(id=99, m=1, nh=17) /
                                           Raw(payload(60, 202))))))
    add('geneve_malformed', geneve_eth(ether(good), version=1))
    add('geneve_truncated', Ether(src=ENI_MAC, dst=TARGET_MAC) / IP(src=GWLB, dst=TARGET) / UDP(sport=1, dport=6081) /
        Raw(b'\x08\x00\x65\x58\x00\x00\x7b\x00' + b'\x00' * 8))
    return frames, reasons


def random_garbage():
    r = random.Random(4789)
    out = []
    for k in range(300):
        kind = k % 4
        if kind == 0:   # random bytes as the UDP payload to 4789
            out.append(Ether(src=ENI_MAC, dst=TARGET_MAC) / IP(src=ENI, dst=TARGET) /
                       UDP(sport=49152 + k, dport=4789) / Raw(bytes(r.getrandbits(8) for _ in range(r.randrange(0, 200)))))
        elif kind == 1:  # valid VXLAN, random inner frame
            out.append(vxlan(bytes(r.getrandbits(8) for _ in range(r.randrange(0, 200)))))
        elif kind == 2:  # valid VXLAN + Ethernet, random "IPv4" after a plausible first byte
            out.append(vxlan(bytes(Ether(src=ROUTER_MAC, dst=COLLECTOR_MAC, type=0x0800)) + b'\x45' +
                             bytes(r.getrandbits(8) for _ in range(r.randrange(0, 120)))))
        else:            # short random frames
            out.append(Raw(bytes(r.getrandbits(8) for _ in range(r.randrange(1, 60)))))
    return out


def bulk_case():
    """600 packets: valid ones, every 10th with the wrong VNI, and fragmented datagrams straddling the
    256-packet receive batches (fragments at 255|256 and 510|511|512)."""
    frames, outs, drops, fwd = [], [], 0, 0
    d1 = udp4(data=payload(900, 300), ip_id=0x6001, df=False, sport=52001)
    d2 = udp4(data=payload(1100, 301), ip_id=0x6002, df=False, sport=52002)
    f1, f2 = frags(d1, 504), frags(d2, 400)
    special = {255: f1[0], 256: f1[1], 510: f2[0], 511: f2[1], 512: f2[2]}
    for k in range(600):
        if k in special:
            frames.append(vxlan(ether(special[k])))
            continue
        p = udp4(src='198.18.100.%d' % (1 + k % 50), data=payload(40 + k % 64, 400 + k), ip_id=0x4000 + k,
                 sport=53000 + k)
        if k % 10 == 9:
            frames.append(vxlan(ether(p), vni=124))
            drops += 1
        else:
            frames.append(vxlan(ether(p)))
            outs.append(Out(p, [FDI]))
            fwd += 1
    outs += [Out(d1, [FDI]), Out(d2, [FDI])]
    return case('bulk_batches', '600 packets over 3 receive batches, 10% wrong VNI, fragments straddling batches',
                frames, fwd + 2, fwd + 2, {'unknown_vni': drops}, out=outs, ordered=False, combine=False,
                reassembly={'merged': 3, 'reassembled': 2, 'waiting': 0})


def combined_case(table):
    """Every combinable case in one capture: the verdicts and outputs must be the sum of the parts."""
    frames, outs, drops, fwd, tx = [], [], {}, 0, 0
    ra = {'merged': 0, 'reassembled': 0, 'waiting': 0}
    checks = set()
    for c in table:
        if not c['combine'] or c['config'] is not BASE_CONFIG:
            continue
        frames += [copy.deepcopy(f) for f in c['frames']]
        outs += c['out']
        for k, v in c['drops'].items():
            drops[k] = drops.get(k, 0) + v
        fwd += c['forwarded']
        tx += c['tx']
        for k in ra:
            ra[k] += (c['reassembly'] or {}).get(k, 0)
        checks.update(c['checks'])
    return case('combined', 'all combinable cases in one capture (one receive batch): totals add up', frames, fwd, tx,
                drops, out=outs, ordered=False, combine=False, checks=sorted(checks), reassembly=ra)


# ---------------------------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------------------------
def write_pcap(path, frames, times):
    w = RawPcapWriter(path, linktype=1)   # Ethernet, what a capture on the mirror target holds
    w.write_header(None)
    for f, t in zip(frames, times):
        sec = int(t)
        w.write_packet(bytes(f), sec=sec, usec=int(round((t - sec) * 1e6)))
    w.close()


def case_times(c):
    if c['times'] is not None:
        return [T0 + t for t in c['times']]
    return [T0 + 0.001 * k for k in range(len(c['frames']))]


def build(outdir):
    os.makedirs(outdir, exist_ok=True)
    manifest = []
    for c in cases():
        name = c['name']
        write_pcap(os.path.join(outdir, name + '.in.pcap'), c['frames'], case_times(c))
        with open(os.path.join(outdir, name + '.config.json'), 'w') as fh:
            json.dump(c['config'], fh, indent=1)
        manifest.append({
            'name': name,
            'description': c['description'],
            'input': name + '.in.pcap',
            'config': name + '.config.json',
            'output': name + '.out.pcap',
            'packets': len(c['frames']),
            'expect': {
                'forwarded': c['forwarded'],
                'tx': c['tx'],
                'drops': c['drops'],
                'dropsTotal': c['drops_total'],
                'reassembly': c['reassembly'],
                'keepZero': any(o.keep_zero for o in c['out']),
            },
        })
    with open(os.path.join(outdir, 'manifest.json'), 'w') as fh:
        json.dump(manifest, fh, indent=1)
    print(json.dumps({'cases': len(manifest)}))


# ---------------------------------------------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------------------------------------------
def rebuilt_equal(b, layer):
    """scapy recomputes the checksum of `layer` (del + rebuild); the packet must come out byte-identical."""
    p = parse_ip(b)
    if layer not in p:
        return True
    del p[layer].chksum
    return bytes(p) == b


def ip_options(b, hl):
    """RFC 791 option list -> [(type, bytes)], stopping at End of Option List."""
    out, p = [], 20
    while p < hl:
        t = b[p]
        if t == 0:
            break
        if t == 1:
            out.append((1, b[p:p + 1]))
            p += 1
            continue
        ln = b[p + 1] if p + 1 < hl else 0
        if ln < 2 or p + ln > hl:
            out.append((t, b[p:hl]))
            break
        out.append((t, b[p:p + ln]))
        p += ln
    return out


def check_record(k, b, mtus, keep_zero, errors):
    """Checks one output record on its own. Returns ('whole'|'frag4'|'frag6', parsed) or None."""
    v = b[0] >> 4
    where = 'record %d' % k
    if v == 4:
        p = IP(b)
        hl = p.ihl * 4
        if p.len != len(b):
            errors.append('%s: IPv4 total length %d but record is %d bytes' % (where, p.len, len(b)))
        q = IP(b)
        del q.chksum
        if IP(bytes(q)).chksum != p.chksum:
            errors.append('%s: IPv4 header checksum 0x%04x, scapy computes 0x%04x' % (where, p.chksum, IP(bytes(q)).chksum))
        if p.flags.DF:
            errors.append('%s: DF still set' % where)
        mtu = mtus.get(p.dst)
        if mtu is None:
            errors.append('%s: destination %s is no configured backend' % (where, p.dst))
        elif len(b) > mtu:
            errors.append('%s: %d bytes exceeds MTU %d of %s' % (where, len(b), mtu, p.dst))
        if p.flags.MF or p.frag:
            return ('frag4', p)
        if p.proto == 17:
            u = parse_ip(b)[UDP]
            if u.len != len(b) - hl:
                errors.append('%s: UDP length %d, IP payload %d' % (where, u.len, len(b) - hl))
            if u.chksum == 0:
                if not keep_zero:
                    errors.append('%s: UDP checksum 0 on output (input had one)' % where)
            elif not rebuilt_equal(b, UDP):
                errors.append('%s: UDP checksum 0x%04x wrong (scapy recomputes 0x%04x)' % (where, u.chksum, recompute(b, UDP)))
        elif p.proto == 6 and not rebuilt_equal(b, TCP):
            errors.append('%s: TCP checksum wrong (scapy recomputes 0x%04x)' % (where, recompute(b, TCP)))
        elif p.proto == 1 and not rebuilt_equal(b, ICMP):
            errors.append('%s: ICMP checksum wrong (scapy recomputes 0x%04x)' % (where, recompute(b, ICMP)))
        return ('whole', p)
    if v == 6:
        p = IPv6(b)
        if 40 + p.plen != len(b):
            errors.append('%s: IPv6 payload length %d but record is %d bytes' % (where, p.plen, len(b)))
        mtu = mtus.get(p.dst)
        if mtu is None:
            errors.append('%s: destination %s is no configured backend' % (where, p.dst))
        elif len(b) > mtu:
            errors.append('%s: %d bytes exceeds MTU %d of %s' % (where, len(b), mtu, p.dst))
        if IPv6ExtHdrFragment in p:
            return ('frag6', p)
        q = parse_ip(b)
        if UDP in q:
            if q[UDP].chksum == 0:
                errors.append('%s: IPv6 UDP checksum 0 (forbidden, RFC 8200 8.1)' % where)
            elif not rebuilt_equal(b, UDP):
                errors.append('%s: IPv6 UDP checksum 0x%04x wrong (scapy recomputes 0x%04x)' % (where, q[UDP].chksum, recompute(b, UDP)))
        return ('whole', p)
    errors.append('%s: not an IP packet (version nibble %d)' % (where, v))
    return None


def recompute(b, layer):
    p = parse_ip(b)
    del p[layer].chksum
    return parse_ip(bytes(p))[layer].chksum


def reassemble4(group, errors):
    """Strict checks of one IPv4 fragment train; returns the whole datagram's bytes (first header, all data)."""
    group = sorted(group, key=lambda kp: kp[1].frag)
    first_k, first = group[0]
    key = '%s>%s id 0x%04x' % (first.src, first.dst, first.id)
    if len({p.id for _, p in group}) != 1 or first.id == 0:
        errors.append('fragments %s: IP IDs %s (must be one non-zero ID)' % (key, sorted({p.id for _, p in group})))
    hl0 = first.ihl * 4
    b0 = bytes(first)
    copied = [o for o in ip_options(b0, hl0) if o[0] & 0x80]
    expected_off, data = 0, b''
    for n, (k, p) in enumerate(group):
        b = bytes(p)
        hl = p.ihl * 4
        chunk = b[hl:p.len]
        last = n == len(group) - 1
        if p.frag * 8 != expected_off:
            errors.append('fragments %s: record %d at offset %d, expected %d (gap or overlap)' % (key, k, p.frag * 8, expected_off))
        if bool(p.flags.MF) == last:
            errors.append('fragments %s: record %d MF=%d but it is %s' % (
                key, k, int(p.flags.MF), 'the last of its train (fragments missing, or carrying another IP ID)'
                if last else 'not the last'))
        if not last and len(chunk) % 8:
            errors.append('fragments %s: record %d carries %d bytes, not a multiple of 8' % (key, k, len(chunk)))
        if n > 0 and ip_options(b, hl) != copied:
            errors.append('fragments %s: record %d options %s, expected only the copied ones %s (RFC 791)' % (
                key, k, b[20:hl].hex(), b''.join(o[1] for o in copied).hex()))
        for f in ('version', 'tos', 'ttl', 'proto', 'src', 'dst'):
            if getattr(p, f) != getattr(first, f):
                errors.append('fragments %s: record %d %s differs from the first fragment' % (key, k, f))
        expected_off += len(chunk)
        data += chunk
    h = IP(b0[:hl0])
    h.len = hl0 + len(data)
    h.flags = int(first.flags) & ~0x1
    h.frag = 0
    del h.chksum
    whole = bytes(h)[:hl0] + data
    # scapy's own reassembly must agree, byte for byte on the payload
    sd = defragment([IP(bytes(p)) for _, p in group])
    if len(sd) != 1 or bytes(sd[0][IP].payload) != data:
        errors.append('fragments %s: scapy defragment disagrees (%d packets)' % (key, len(sd)))
    return whole


def reassemble6(group, errors):
    group = sorted(group, key=lambda kp: kp[1][IPv6ExtHdrFragment].offset)
    first = group[0][1]
    fh0 = first[IPv6ExtHdrFragment]
    key = '%s>%s ident 0x%08x' % (first.src, first.dst, fh0.id)
    expected_off, data = 0, b''
    for n, (k, p) in enumerate(group):
        fh = p[IPv6ExtHdrFragment]
        chunk = bytes(fh.payload)
        last = n == len(group) - 1
        if fh.id != fh0.id:
            errors.append('fragments %s: record %d has ident 0x%08x' % (key, k, fh.id))
        if fh.offset * 8 != expected_off:
            errors.append('fragments %s: record %d at offset %d, expected %d' % (key, k, fh.offset * 8, expected_off))
        if bool(fh.m) == last:
            errors.append('fragments %s: record %d M=%d but it is %s' % (key, k, fh.m, 'the last' if last else 'not the last'))
        if not last and len(chunk) % 8:
            errors.append('fragments %s: record %d carries %d bytes, not a multiple of 8' % (key, k, len(chunk)))
        expected_off += len(chunk)
        data += chunk
    if IPv6ExtHdrFragment in first and first.nh != 44:
        errors.append('fragments %s: extension headers before the fragment header are not expected here' % key)
    h = IPv6(bytes(first)[:40])
    h.nh = fh0.nh
    h.plen = len(data)
    whole = bytes(h)[:40] + data
    sd = defragment6([IPv6(bytes(p)) for _, p in group])
    if bytes(sd[IPv6].payload) != data:
        errors.append('fragments %s: scapy defragment6 disagrees' % key)
    return whole


def normalize(b, any_id):
    """A reassembled IPv4 datagram compares as its header with fragment fields cleared (and, for any_id, ID 0)."""
    if b[0] >> 4 != 4:
        return b
    p = parse_ip(b)
    p.flags = 0
    p.frag = 0
    if any_id:
        p.id = 0
    del p.chksum
    return bytes(p)


def field_diff(expected, actual):
    e = parse_ip(expected).show2(dump=True).splitlines()
    a = parse_ip(actual).show2(dump=True).splitlines()
    d = [l for l in difflib.unified_diff(e, a, 'expected', 'actual', n=0, lineterm='') if not l.startswith('@@')]
    if len(d) <= 2 and expected != actual:
        n = next((i for i in range(min(len(expected), len(actual))) if expected[i] != actual[i]), min(len(expected), len(actual)))
        d.append('first differing byte at %d (lengths %d vs %d)' % (n, len(expected), len(actual)))
    return '\n    '.join(d[:24])


def summary(b):
    p = parse_ip(b)
    l4 = p[UDP] if UDP in p else p[TCP] if TCP in p else None
    src = p.src
    dst = p.dst
    return {'src': src, 'dst': dst, 'proto': 17 if UDP in p else 6 if TCP in p else p.proto if IP in p else -1,
            'sport': l4.sport if l4 else None, 'dport': l4.dport if l4 else None, 'length': len(b)}


def verify_case(c, outdir):
    errors = []
    path = os.path.join(outdir, c['name'] + '.out.pcap')
    if not os.path.exists(path):
        return {'errors': ['no output file %s' % path], 'records': 0, 'datagrams': []}
    reader = RawPcapReader(path)
    linktype = reader.linktype
    records = [bytes(data) for data, _ in reader]
    reader.close()
    if linktype != 101:
        errors.append('output linktype %d, expected 101 (LINKTYPE_RAW)' % linktype)
    mtus = mtu_of(c['config'])
    keep_zero = any(o.keep_zero for o in c['out'])

    # 1. every record on its own; collect fragment trains
    items = []    # (position, kind, bytes)
    trains4, trains6 = {}, {}
    for k, b in enumerate(records):
        r = check_record(k, b, mtus, keep_zero, errors)
        if r is None:
            continue
        kind, p = r
        if kind == 'whole':
            items.append((k, 'whole', b))
        elif kind == 'frag4':
            key = (p.src, p.dst, p.id, p.proto)
            if key not in trains4:
                items.append((k, 'frag4', key))
            trains4.setdefault(key, []).append((k, p))
        else:
            key = (p.src, p.dst, p[IPv6ExtHdrFragment].id)
            if key not in trains6:
                items.append((k, 'frag6', key))
            trains6.setdefault(key, []).append((k, p))

    # 2. datagrams, in order of their first record
    datagrams = []   # (bytes, reassembled?, fragments)
    for k, kind, x in items:
        if kind == 'whole':
            datagrams.append((x, False, 1))
        elif kind == 'frag4':
            whole = reassemble4(trains4[x], errors)
            if not (parse_ip(whole).proto != 17 or rebuilt_equal(whole, UDP) or parse_ip(whole)[UDP].chksum == 0):
                errors.append('reassembled datagram %s: UDP checksum wrong (scapy recomputes 0x%04x)' % (x, recompute(whole, UDP)))
            datagrams.append((whole, True, len(trains4[x])))
        else:
            whole = reassemble6(trains6[x], errors)
            q = parse_ip(whole)
            if UDP in q and (q[UDP].chksum == 0 or not rebuilt_equal(whole, UDP)):
                errors.append('reassembled IPv6 datagram: UDP checksum 0x%04x wrong' % q[UDP].chksum)
            datagrams.append((whole, True, len(trains6[x])))

    # 3. match against the expected datagrams
    exp = c['out']
    if len(datagrams) != len(exp):
        errors.append('%d datagrams out (from %d records), expected %d' % (len(datagrams), len(records), len(exp)))
    expected_bytes = [[dnat(o.inner, be, o.keep_zero, o.ttl, o.tos) for be in o.backends] for o in exp]
    used = [False] * len(exp)

    def matches(j, b, reassembled):
        o = exp[j]
        for eb in expected_bytes[j]:
            if not reassembled and not o.any_id and b == eb:
                return True
            if (reassembled or o.any_id) and normalize(b, o.any_id) == normalize(eb, o.any_id):
                if o.any_id and b[0] >> 4 == 4 and parse_ip(b).id == 0:
                    return False
                return True
        return False

    for n, (b, reassembled, nfr) in enumerate(datagrams):
        cands = [n] if c['ordered'] else range(len(exp))
        hit = next((j for j in cands if j < len(exp) and not used[j] and matches(j, b, reassembled)), None)
        if hit is None:
            ref = n if c['ordered'] and n < len(exp) else next((j for j in range(len(exp)) if not used[j]), None)
            msg = 'datagram %d (%s%s) matches no expected output' % (
                n, 'reassembled from %d fragments, ' % nfr if reassembled else '', '%(src)s:%(sport)s > %(dst)s:%(dport)s' % summary(b))
            if ref is not None:
                msg += '; closest expected #%d:\n    %s' % (ref, field_diff(expected_bytes[ref][0], b))
            errors.append(msg)
        else:
            used[hit] = True
    # 4. per-case policies
    sums = [summary(b) for b, _, _ in datagrams]
    if 'rr_alternates' in c['checks']:
        seq = [s['dst'] for s in sums if s['dst'] in {b for b, _ in RR}]
        if len(set(seq)) != len(RR) or any(seq[i] == seq[i + 1] for i in range(len(seq) - 1)):
            errors.append('round-robin does not alternate: %s' % seq)
    if 'hash_sticky' in c['checks']:
        by = {}
        for s in sums:
            if s['dst'] in {b for b, _ in SPREAD}:
                by.setdefault(s['src'], set()).add((s['dst'], s['dport']))
        for src, dsts in by.items():
            if len(dsts) != 1:
                errors.append('hash balance sent exporter %s to %s' % (src, sorted(dsts)))
    # 5. what tshark should see (the TS test compares)
    tuples = sorted('%s %s %s %s %s' % ({17: 'udp', 6: 'tcp'}[s['proto']], s['src'], s['sport'], s['dst'], s['dport'])
                    for s in sums if s['proto'] in (17, 6))
    re4 = sorted(len(b) - (b[0] & 0x0F) * 4 for b, r, _ in datagrams if r and b[0] >> 4 == 4)
    re6 = sorted(len(b) - 40 for b, r, _ in datagrams if r and b[0] >> 4 == 6)
    return {'errors': errors, 'records': len(records), 'datagrams': len(datagrams), 'tuples': tuples,
            'reassembled4': re4, 'reassembled6': re6}


def verify(outdir):
    result = {}
    for c in cases():
        try:
            result[c['name']] = verify_case(c, outdir)
        except Exception as err:  # a verifier crash is a failed case, reported with its cause
            import traceback
            result[c['name']] = {'errors': ['verifier exception: %r\n%s' % (err, traceback.format_exc())], 'records': -1}
    print(json.dumps(result))


if __name__ == '__main__':
    if len(sys.argv) != 3 or sys.argv[1] not in ('build', 'verify'):
        sys.stderr.write(__doc__)
        sys.exit(2)
    (build if sys.argv[1] == 'build' else verify)(sys.argv[2])
