// The fast path: mirror packets of flows the gateway has already decided are forwarded by a BPF
// program, with no copy to user space and no send: decapsulated, DNATed and redirected to the
// egress device with the next hop's Ethernet header. The same instructions run at two hooks:
// inside the XDP ingress program (xdp.cc), or alone at the device's tc ingress (tcx), where they
// work on the kernel's skb.
//
// The gateway decides; the program only repeats a decision. A worker that forwards a packet
// eligible for the fast path (unfragmented IPv4/UDP, one backend, nothing per-packet to do in
// user space) proposes its flow; the main thread writes the action under the flow's key:
//
//   key (20 bytes)    outer source, VNI (3 bytes + 0), inner source, inner destination,
//                     source port, destination port: all as on the wire. That is everything the
//                     allowlist, sessions and first-match rules look at.
//   action (48 bytes) generation u32, backend address (wire) u32, backend port (wire) u16,
//                     IP checksum delta u16, UDP checksum delta u16, MTU u16, next hop's MAC [6],
//                     our MAC [6], egress ifindex u32, counter slot u32, flags u8 (1: clear DF,
//                     2: decrement TTL), export kind u8 (0: none, 1: NetFlow v5, 2: v9, 3: sFlow
//                     v5 with an IPv4 agent), 2 bytes of padding, the export stream's domain
//                     (wire) u32 (v5: engine type and id; v9: source ID; sFlow: sub-agent ID),
//                     sFlow agent address (wire) u32. Deltas are RFC 1624's ~m + m' over the
//                     rewritten words, read little-endian as the program reads them.
//   counters (64 bytes per slot) packets u64, IP bytes u64, DF cleared u64, aborted u64 (frames
//                     dropped because the kernel refused a change after the strip), expected
//                     sequence u32, known u32 (0: the next datagram sets the expectation), gaps
//                     u64, units lost in them u64, resets u64 (the sequence went backwards).
//
// The export header's sequence is the program's to follow while it holds a flow, since the
// workers see none of its datagrams: every datagram of the flow's stream that reaches the program
// is counted here, whichever path then forwards it, and the workers leave that stream's gaps to
// the program until the generation ends. A datagram of another kind or domain than the action's
// takes the normal path, which follows that stream itself; so does a v9 datagram carrying
// templates, for the normal path's template cache.
//
// An action holds only while its generation is the control map's: the main thread bumps it on
// every change of what decided it (config, health, next hops) and while a trace runs, and the
// flows learn again. Anything the program does not recognise takes the normal path: another
// generation, no entry, a packet longer than the MTU (fragmentation), a bad inner header
// checksum, a TTL about to expire, truncated or padded frames, IP options, VLAN tags.
//
//   fastPathMaps(maxFlows, slots) -> {flowsFd, countersFd, controlFd, counters, control}
//   fastPathPut(flowsFd, key: Uint8Array(20), action: Uint8Array(48))
//   tcAttach(ifindex, dstAddr, vxlanPort, fast, how) -> {fd, via}
//   tcDetachFilter(ifindex, progFd) -> boolean
//
// counters and control are ArrayBuffers over the maps' memory, shared with the program.

#include "fast_path.h"

#include "tc_filter.h"

#include <sys/mman.h>

namespace mg {

namespace {

constexpr int kKeySize = 20, kActionSize = 48, kCounterSize = 64;

// Frame offsets: outer Ethernet, IPv4 (no options) and UDP, VXLAN, inner Ethernet, IPv4, UDP.
constexpr int16_t kOuterSrc = 26, kOuterDport = 36, kVxlan = 42, kVni = 46, kInnerEth = 50, kInnerType = 62;
constexpr int16_t kIp = 64, kIpLen = 66, kIpFrag = 70, kIpTtl = 72, kIpProto = 73, kIpSum = 74, kIpSrc = 76, kIpDst = 80;
constexpr int16_t kUdp = 84, kUdpDport = 86, kUdpLen = 88, kUdpSum = 90, kHeadersEnd = 92;
// The export header: the inner UDP payload.
constexpr int16_t kExport = kHeadersEnd;
// What decapsulation takes off: everything between the outer Ethernet header and the inner IP
// packet. A field at offset X before it is at X - kStrip after.
constexpr int16_t kStrip = kIp - 14;

// Action fields.
constexpr int16_t kGeneration = 0, kAddr = 4, kPort = 8, kIpDelta = 10, kUdpDelta = 12, kMtu = 14, kDstMac = 16,
                  kSrcMac = 22, kIfindex = 28, kSlot = 32, kFlags = 36, kKind = 37, kDomain = 40, kAgent = 44;
constexpr int32_t kClearDf = 1, kDecrementTtl = 2;
constexpr int32_t kKindNone = 0, kKindV5 = 1, kKindV9 = 2, kKindSflow = 3;
// Counter fields.
constexpr int16_t kPackets = 0, kBytes = 8, kDfCleared = 16, kAborted = 24, kExpected = 32, kKnown = 36, kGaps = 40,
                  kLost = 48, kResets = 56;
// v9 flowsets looked at for templates; a datagram with more goes to the normal path.
constexpr int kFlowSets = 4;
// Flowset IDs below this are templates and options templates (RFC 3954 section 5).
constexpr int32_t kMinDataFlowSet = 256;
// tc verdicts (tcx; the same numbers as TC_ACT_UNSPEC and TC_ACT_SHOT for a clsact filter): on
// to the next program or the stack; dropped.
constexpr int32_t kTcxNext = -1, kTcxDrop = 2;
// The program's name, as bpftool and `tc filter show` list it.
constexpr const char* kTcProgramName = "mirrorgate_tc";

// Registers kept across helper calls.
constexpr uint8_t kCtx = 6, kAction = 7, kLen = 8, kCounters = 9;
// Stack: the flow key, and a 4-byte array key after it.
constexpr int16_t kKeyAt = -24, kIndexAt = -4;

// The packet pointers (again: calls clobber them, and helpers may move the packet), and the
// first `bytes` of the frame in reach, else `fail`.
void InReach(Program& p, Hook hook, int32_t bytes, Program::Label fail) {
  p.LoadPointers(kCtx, hook);
  p.MovReg(4, Program::kData);
  p.Alu(BPF_ADD, 4, bytes);
  p.JumpReg(BPF_JGT, 4, Program::kEnd, fail);
}

// Follows the export stream's sequence in the flow's counters (r9), for the action's kind and
// domain (r7): a datagram of another stream, or a v9 one carrying templates, jumps to `slow`
// (the latter once counted). Clobbers r0-r5.
void EmitSequence(Program& p, Hook hook, Program::Label slow) {
  using P = Program;
  P::Label v9 = p.NewLabel(), sflow = p.NewLabel(), compare = p.NewLabel(), done = p.NewLabel(), back = p.NewLabel();
  // The datagram's field at `at` is the action's `field`, else the datagram is another stream's.
  auto same = [&](uint8_t size, int16_t at, int16_t field) {
    p.LoadPacket(size, 5, at);
    p.Load(size, 4, kAction, field);
    p.JumpReg(BPF_JNE, 5, 4, slow);
  };
  p.Load(BPF_B, 5, kAction, kKind);
  p.Jump(BPF_JEQ, 5, kKindNone, done);
  p.Jump(BPF_JEQ, 5, kKindV9, v9);
  p.Jump(BPF_JEQ, 5, kKindSflow, sflow);
  // NetFlow v5: flow_sequence counts flows, `count` of them per datagram.
  InReach(p, hook, kExport + 24, slow);
  p.LoadPacket(BPF_H, 5, kExport);
  p.Jump(BPF_JNE, 5, Le16(0, 5), slow);
  same(BPF_H, kExport + 20, kDomain);  // engine type and id
  p.LoadPacket(BPF_W, 0, kExport + 16);
  p.LoadPacket(BPF_H, 1, kExport + 2);
  p.Ntohs(1);
  p.Goto(compare);
  // NetFlow v9: the sequence counts datagrams per source ID.
  p.Place(v9);
  InReach(p, hook, kExport + 20, slow);
  p.LoadPacket(BPF_H, 5, kExport);
  p.Jump(BPF_JNE, 5, Le16(0, 9), slow);
  same(BPF_W, kExport + 16, kDomain);
  p.LoadPacket(BPF_W, 0, kExport + 12);
  p.Mov(1, 1);
  p.Goto(compare);
  // sFlow v5 from an IPv4 agent: the sequence counts datagrams per agent and sub-agent.
  p.Place(sflow);
  InReach(p, hook, kExport + 20, slow);
  const uint8_t five[4] = {0, 0, 0, 5}, ipv4[4] = {0, 0, 0, 1};
  p.LoadPacket(BPF_W, 5, kExport);
  p.Jump(BPF_JNE, 5, Le32(five), slow, false);
  p.LoadPacket(BPF_W, 5, kExport + 4);
  p.Jump(BPF_JNE, 5, Le32(ipv4), slow, false);
  same(BPF_W, kExport + 8, kAgent);
  same(BPF_W, kExport + 12, kDomain);
  p.LoadPacket(BPF_W, 0, kExport + 16);
  p.Mov(1, 1);

  // r0: the sequence (wire order), r1: the units this datagram adds to it. As the workers
  // compare (flow/exporters.ts advance): a jump forward of under 2^31 is a gap, a step back a reset.
  p.Place(compare);
  p.Ins(BPF_ALU | BPF_END | BPF_TO_BE, 0, 0, 0, 32);
  p.Load(BPF_W, 4, kCounters, kKnown);
  p.Load(BPF_W, 5, kCounters, kExpected);
  p.AluReg(BPF_ADD, 1, 0);
  p.Store(BPF_W, kCounters, kExpected, 1);
  p.Mov(1, 1);
  p.Store(BPF_W, kCounters, kKnown, 1);
  p.Jump(BPF_JEQ, 4, 0, done);
  p.AluReg(BPF_SUB, 0, 5);
  p.Alu(BPF_LSH, 0, 32);
  p.Alu(BPF_ARSH, 0, 32);
  p.Jump(BPF_JEQ, 0, 0, done);
  p.Jump(BPF_JSLT, 0, 0, back);
  p.AtomicAdd(kCounters, kLost, 0);
  p.AtomicAdd(kCounters, kGaps, 1);
  p.Goto(done);
  p.Place(back);
  p.AtomicAdd(kCounters, kResets, 1);
  p.Place(done);

  // A v9 datagram's flowsets: templates go on to the normal path's cache.
  P::Label end = p.NewLabel();
  p.Load(BPF_B, 5, kAction, kKind);
  p.Jump(BPF_JNE, 5, kKindV9, end);
  p.Mov(1, kExport + 20);  // r1: where the next flowset starts
  for (int k = 0; k <= kFlowSets; k++) {
    p.LoadPointers(kCtx, hook);
    p.MovReg(4, P::kData);
    p.AluReg(BPF_ADD, 4, 1);
    p.JumpReg(BPF_JGE, 4, P::kEnd, end);  // no more flowsets
    if (k == kFlowSets) {
      p.Goto(slow);
      break;
    }
    p.MovReg(5, 4);
    p.Alu(BPF_ADD, 5, 4);
    p.JumpReg(BPF_JGT, 5, P::kEnd, slow);  // a torn flowset header: the normal path counts it
    p.Load(BPF_H, 5, 4, 0);
    p.Ntohs(5);
    p.Jump(BPF_JLT, 5, kMinDataFlowSet, slow);
    p.Load(BPF_H, 5, 4, 2);
    p.Ntohs(5);
    p.Jump(BPF_JLT, 5, 4, slow);
    p.AluReg(BPF_ADD, 1, 5);
    p.Jump(BPF_JGT, 1, 0xfff0, slow);  // the verifier takes packet offsets below 64 KiB
  }
  p.Place(end);
}

}  // namespace

void EmitFastPath(Program& p, const FastPathMaps& m, Program::Label slow, Hook hook) {
  using P = Program;
  Program::Label lost = p.NewLabel();
  // Switched on? r7 = the generation actions must carry.
  p.Ins(BPF_ST | BPF_MEM | BPF_W, P::kFp, 0, kIndexAt, 0);
  p.MovReg(2, P::kFp);
  p.Alu(BPF_ADD, 2, kIndexAt);
  p.LoadMap(1, m.control);
  p.Call(BPF_FUNC_map_lookup_elem);
  p.Jump(BPF_JEQ, 0, 0, slow);
  p.Load(BPF_W, kAction, 0, 0);
  p.Jump(BPF_JEQ, kAction, 0, slow);

  // The whole frame is in the first buffer (r9: its length with fragments), and holds every header.
  InReach(p, hook, kHeadersEnd, slow);
  p.MovReg(4, P::kData);
  p.AluReg(BPF_ADD, 4, kCounters);
  p.JumpReg(BPF_JGT, 4, P::kEnd, slow);
  // VXLAN with the I flag, carrying untagged IPv4 without options, UDP, not a fragment.
  p.LoadPacket(BPF_H, 5, kOuterDport);
  p.Jump(BPF_JNE, 5, Le16(m.vxlan_port >> 8, m.vxlan_port & 0xff), slow);
  p.LoadPacket(BPF_B, 5, kVxlan);
  p.Alu(BPF_AND, 5, 0x08);
  p.Jump(BPF_JEQ, 5, 0, slow);
  p.LoadPacket(BPF_H, 5, kInnerType);
  p.Jump(BPF_JNE, 5, Le16(0x08, 0x00), slow);
  p.LoadPacket(BPF_B, 5, kIp);
  p.Jump(BPF_JNE, 5, 0x45, slow);
  p.LoadPacket(BPF_B, 5, kIpProto);
  p.Jump(BPF_JNE, 5, 17, slow);
  p.LoadPacket(BPF_H, 5, kIpFrag);
  p.Alu(BPF_AND, 5, Le16(0x3f, 0xff));  // MF and fragment offset
  p.Jump(BPF_JNE, 5, 0, slow);
  // The IP packet fills the frame exactly (not truncated by the mirror, no Ethernet padding),
  // and UDP's length agrees: r8 = its length.
  p.LoadPacket(BPF_H, kLen, kIpLen);
  p.Ntohs(kLen);
  p.MovReg(4, P::kData);
  p.Alu(BPF_ADD, 4, kIp);
  p.AluReg(BPF_ADD, 4, kLen);
  p.JumpReg(BPF_JGT, 4, P::kEnd, slow);
  p.JumpReg(BPF_JLT, 4, P::kEnd, slow);
  p.LoadPacket(BPF_H, 5, kUdpLen);
  p.Ntohs(5);
  p.Alu(BPF_ADD, 5, kUdp - kIp);
  p.JumpReg(BPF_JNE, 5, kLen, slow);

  // The flow key, as on the wire.
  const int16_t fields[][2] = {{kOuterSrc, 0}, {kVni, 4}, {kIpSrc, 8}, {kIpDst, 12}, {kUdp, 16}};
  for (auto [from, to] : fields) {
    p.LoadPacket(BPF_W, 5, from);
    if (from == kVni) p.Alu(BPF_AND, 5, 0x00ffffff);  // not the reserved byte after it
    p.Store(BPF_W, P::kFp, static_cast<int16_t>(kKeyAt + to), 5);
  }
  // A bad inner header checksum is the normal path's to drop and count.
  p.MovReg(3, P::kData);
  p.Alu(BPF_ADD, 3, kIp);
  p.Mov(1, 0);
  p.Mov(2, 0);
  p.Mov(4, 20);
  p.Mov(5, 0);
  p.Call(BPF_FUNC_csum_diff);
  p.Fold(0, 1);
  p.Jump(BPF_JNE, 0, 0xffff, slow);

  // The action, if it is this generation's and the packet fits the MTU unfragmented.
  p.LoadMap(1, m.flows);
  p.MovReg(2, P::kFp);
  p.Alu(BPF_ADD, 2, kKeyAt);
  p.Call(BPF_FUNC_map_lookup_elem);
  p.Jump(BPF_JEQ, 0, 0, slow);
  p.Load(BPF_W, 5, 0, kGeneration);
  p.JumpReg(BPF_JNE, 5, kAction, slow);
  p.MovReg(kAction, 0);
  // Its counters (r9), and the export stream's sequence, whichever path the datagram then takes.
  p.Load(BPF_W, 5, kAction, kSlot);
  p.Store(BPF_W, P::kFp, kIndexAt, 5);
  p.LoadMap(1, m.counters);
  p.MovReg(2, P::kFp);
  p.Alu(BPF_ADD, 2, kIndexAt);
  p.Call(BPF_FUNC_map_lookup_elem);
  p.Jump(BPF_JEQ, 0, 0, slow);
  p.MovReg(kCounters, 0);
  EmitSequence(p, hook, slow);
  p.Load(BPF_H, 5, kAction, kMtu);
  p.JumpReg(BPF_JGT, kLen, 5, slow);
  // A TTL about to expire is the normal path's to drop and count.
  Program::Label ttl_ok = p.NewLabel();
  p.Load(BPF_B, 5, kAction, kFlags);
  p.Alu(BPF_AND, 5, kDecrementTtl);
  p.Jump(BPF_JEQ, 5, 0, ttl_ok);
  InReach(p, hook, kHeadersEnd, slow);
  p.LoadPacket(BPF_B, 5, kIpTtl);
  p.Jump(BPF_JLE, 5, 1, slow);
  p.Place(ttl_ok);

  // Off with the outer headers, VXLAN and the inner Ethernet header, keeping the outer Ethernet
  // header's place: the inner IP packet follows it. Nothing is written before this succeeds, so
  // a refusal leaves the frame as it came for the normal path.
  p.MovReg(1, kCtx);
  if (hook == Hook::kXdp) {
    p.Mov(2, kStrip);
    p.Call(BPF_FUNC_xdp_adjust_head);
  } else {
    p.Mov(2, -kStrip);
    p.Mov(3, BPF_ADJ_ROOM_MAC);
    p.Mov(4, 0);
    p.Call(BPF_FUNC_skb_adjust_room);
  }
  p.Jump(BPF_JNE, 0, 0, slow);

  // The UDP checksum follows the DNAT, and "none" (0) stays none.
  if (hook == Hook::kXdp) {
    InReach(p, hook, kHeadersEnd - kStrip, lost);
    Program::Label udp_done = p.NewLabel(), udp_store = p.NewLabel();
    p.LoadPacket(BPF_H, 1, kUdpSum - kStrip);
    p.Jump(BPF_JEQ, 1, 0, udp_done);
    p.Alu(BPF_XOR, 1, 0xffff);
    p.Load(BPF_H, 4, kAction, kUdpDelta);
    p.AluReg(BPF_ADD, 1, 4);
    p.Fold(1, 0);
    p.Alu(BPF_XOR, 1, 0xffff);
    p.Jump(BPF_JNE, 1, 0, udp_store);
    p.Mov(1, 0xffff);  // a computed zero is sent as all ones (RFC 768)
    p.Place(udp_store);
    p.StorePacket(BPF_H, kUdpSum - kStrip, 1);
    p.Place(udp_done);
  } else {
    // An skb may carry a checksum still to be completed by the device (CHECKSUM_PARTIAL, from a
    // local sender) or the device's sum of the whole packet (CHECKSUM_COMPLETE): the kernel's
    // helper updates whichever it holds. The IP header's own changes leave the sum unchanged.
    const struct { int16_t at; int16_t action; uint8_t size; uint32_t flags; } changes[] = {
        {kIpDst, kAddr, BPF_W, BPF_F_PSEUDO_HDR | 4},
        {kUdpDport, kPort, BPF_H, 2},
    };
    for (const auto& c : changes) {
      InReach(p, hook, kHeadersEnd - kStrip, lost);
      p.LoadPacket(c.size, 3, c.at - kStrip);
      p.Load(c.size, 4, kAction, c.action);
      p.MovReg(1, kCtx);
      p.Mov(2, kUdpSum - kStrip);
      p.Mov(5, BPF_F_MARK_MANGLED_0 | c.flags);
      p.Call(BPF_FUNC_l4_csum_replace);
      p.Jump(BPF_JNE, 0, 0, lost);
    }
  }

  InReach(p, hook, kHeadersEnd - kStrip, lost);
  // r1: the IP header checksum, updated as ~HC + Σ(~m + m') (RFC 1624 eqn. 3).
  p.LoadPacket(BPF_H, 1, kIpSum - kStrip);
  p.Alu(BPF_XOR, 1, 0xffff);
  p.Load(BPF_H, 5, kAction, kIpDelta);
  p.AluReg(BPF_ADD, 1, 5);
  p.Load(BPF_B, 5, kAction, kFlags);
  Program::Label keep_ttl = p.NewLabel(), keep_df = p.NewLabel();
  p.MovReg(4, 5);
  p.Alu(BPF_AND, 4, kDecrementTtl);
  p.Jump(BPF_JEQ, 4, 0, keep_ttl);
  p.LoadPacket(BPF_H, 4, kIpTtl - kStrip);  // TTL in the low byte, protocol in the high one
  p.MovReg(0, 4);
  p.Alu(BPF_XOR, 0, 0xffff);
  p.AluReg(BPF_ADD, 1, 0);
  p.Alu(BPF_SUB, 4, 1);
  p.AluReg(BPF_ADD, 1, 4);
  p.StorePacket(BPF_H, kIpTtl - kStrip, 4);
  p.Place(keep_ttl);
  p.Alu(BPF_AND, 5, kClearDf);
  p.Jump(BPF_JEQ, 5, 0, keep_df);
  p.LoadPacket(BPF_H, 4, kIpFrag - kStrip);
  p.MovReg(0, 4);
  p.Alu(BPF_AND, 0, Le16(0x40, 0));
  p.Jump(BPF_JEQ, 0, 0, keep_df);
  p.MovReg(0, 4);
  p.Alu(BPF_XOR, 0, 0xffff);
  p.AluReg(BPF_ADD, 1, 0);
  p.Alu(BPF_AND, 4, 0xffff & ~Le16(0x40, 0));
  p.AluReg(BPF_ADD, 1, 4);
  p.StorePacket(BPF_H, kIpFrag - kStrip, 4);
  p.Mov(0, 1);
  p.AtomicAdd(kCounters, kDfCleared, 0);
  p.Place(keep_df);
  p.Fold(1, 0);
  p.Alu(BPF_XOR, 1, 0xffff);
  p.StorePacket(BPF_H, kIpSum - kStrip, 1);

  // DNAT: the backend's address and port.
  p.Load(BPF_W, 4, kAction, kAddr);
  p.StorePacket(BPF_W, kIpDst - kStrip, 4);
  p.Load(BPF_H, 4, kAction, kPort);
  p.StorePacket(BPF_H, kUdpDport - kStrip, 4);

  // The Ethernet header becomes the next hop's.
  p.Load(BPF_W, 4, kAction, kDstMac);
  p.StorePacket(BPF_W, 0, 4);
  p.Load(BPF_H, 4, kAction, kDstMac + 4);
  p.StorePacket(BPF_H, 4, 4);
  p.Load(BPF_H, 4, kAction, kSrcMac);
  p.StorePacket(BPF_H, 6, 4);
  p.Load(BPF_W, 4, kAction, kSrcMac + 2);
  p.StorePacket(BPF_W, 8, 4);

  // Count and send.
  p.Mov(0, 1);
  p.AtomicAdd(kCounters, kPackets, 0);
  p.AtomicAdd(kCounters, kBytes, kLen);
  p.Load(BPF_W, 1, kAction, kIfindex);
  p.Mov(2, 0);
  p.Call(BPF_FUNC_redirect);
  p.Ins(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

  // A frame the kernel refused to change after it was stripped cannot take the normal path: it
  // is counted and dropped. (The helpers fail only without memory, after the strip unshared the
  // frame; the bounds were checked before it.)
  p.Place(lost);
  p.Mov(0, 1);
  p.AtomicAdd(kCounters, kAborted, 0);
  p.Return(hook == Hook::kXdp ? XDP_ABORTED : kTcxDrop);
}

void EmitOuterChecks(Program& p, uint8_t ctx, Hook hook, const uint8_t* mac, uint32_t dst_addr, uint16_t port1,
                     uint16_t port2, Program::Label fail) {
  using P = Program;
  constexpr int kEthLen = 14, kIpLen = 20, kUdpLen = 8;
  constexpr uint8_t kTmp = 4, kVal = 5;
  p.LoadPointers(ctx, hook);
  // Bounds before any read: every header we look at is in the first buffer.
  p.MovReg(kTmp, P::kData);
  p.Alu(BPF_ADD, kTmp, kEthLen + kIpLen + kUdpLen);
  p.JumpReg(BPF_JGT, kTmp, P::kEnd, fail);
  if (mac) {  // addressed to us: the kernel would not deliver another host's frame either
    p.LoadPacket(BPF_W, kVal, 0);
    p.Jump(BPF_JNE, kVal, Le32(mac), fail, false);
    p.LoadPacket(BPF_H, kVal, 4);
    p.Jump(BPF_JNE, kVal, Le16(mac[4], mac[5]), fail);
  }
  p.LoadPacket(BPF_H, kVal, 12);
  p.Jump(BPF_JNE, kVal, Le16(0x08, 0x00), fail);  // IPv4, untagged
  p.LoadPacket(BPF_B, kVal, kEthLen);
  p.Jump(BPF_JNE, kVal, 0x45, fail);  // version 4, no options
  p.LoadPacket(BPF_B, kVal, kEthLen + 9);
  p.Jump(BPF_JNE, kVal, 17, fail);  // UDP
  p.LoadPacket(BPF_H, kVal, kEthLen + 6);
  p.Alu(BPF_AND, kVal, Le16(0x3f, 0xff));  // MF and fragment offset
  p.Jump(BPF_JNE, kVal, 0, fail);
  if (dst_addr != 0) {
    uint8_t a[4] = {uint8_t(dst_addr >> 24), uint8_t(dst_addr >> 16), uint8_t(dst_addr >> 8), uint8_t(dst_addr)};
    p.LoadPacket(BPF_W, kVal, kEthLen + 16);
    p.Jump(BPF_JNE, kVal, Le32(a), fail, false);
  }
  P::Label port_ok = p.NewLabel();
  p.LoadPacket(BPF_H, kVal, kEthLen + kIpLen + 2);
  p.Jump(BPF_JEQ, kVal, Le16(port1 >> 8, port1 & 0xff), port_ok);
  p.Jump(BPF_JNE, kVal, Le16(port2 >> 8, port2 & 0xff), fail);
  p.Place(port_ok);
  // The IPv4 header checksum, which the kernel would verify: a bad one is left to the kernel,
  // which drops and counts it (InCsumErrors).
  p.MovReg(3, P::kData);
  p.Alu(BPF_ADD, 3, kEthLen);
  p.Mov(1, 0);
  p.Mov(2, 0);
  p.Mov(4, kIpLen);
  p.Mov(5, 0);
  p.Call(BPF_FUNC_csum_diff);  // the 32-bit sum of the header
  p.Fold(0, 1);
  p.Jump(BPF_JNE, 0, 0xffff, fail);
}

FastPathMaps FastPathMapsArg(const Napi::CallbackInfo& info, size_t i, uint16_t vxlan_port) {
  Napi::Env env = info.Env();
  if (!info[i].IsObject()) ThrowType(env, "fast must be {flowsFd, countersFd, controlFd}");
  Napi::Object f = info[i].As<Napi::Object>();
  auto fd = [&](const char* name) {
    Napi::Value v = f.Get(name);
    if (!v.IsNumber() || v.As<Napi::Number>().Int32Value() < 0) ThrowType(env, std::string("fast.") + name + " must be an fd");
    return v.As<Napi::Number>().Int32Value();
  };
  FastPathMaps m;
  m.flows = fd("flowsFd");
  m.counters = fd("countersFd");
  m.control = fd("controlFd");
  m.vxlan_port = vxlan_port;
  return m;
}

namespace {

// ---- the tc program --------------------------------------------------------------------
//
// The fast path alone at the device's tc ingress hook, for devices where XDP is not wanted or not
// possible: any driver, any MTU, and the egress device needs no XDP support of its own, since
// what it is handed is an ordinary skb. Frames it does not forward go on to the next program and
// the kernel's receive path, to the workers' sockets. It is attached by a tcx link (Linux 6.6) or,
// on older kernels, as a direct-action clsact filter (tc_filter.h); -1 means "go on" to both.

// The largest frame the program pulls into reach when the device received it into pages.
constexpr uint32_t kTcMaxFrame = 9216 + 14;
// enum bpf_attach_type's BPF_TCX_INGRESS (Linux 6.6), which older uapi headers lack.
constexpr uint32_t kTcxIngress = 46;

std::vector<bpf_insn> BuildTcProgram(const FastPathMaps& m, uint32_t dst_addr) {
  using P = Program;
  Program p;
  P::Label next = p.NewLabel(), linear = p.NewLabel();
  p.MovReg(kCtx, P::kCtx);
  // A frame that arrived VLAN-tagged (the device took the tag off), or for another host, is the
  // kernel's to handle as it would.
  p.Load(BPF_W, 5, kCtx, offsetof(__sk_buff, vlan_present));
  p.Jump(BPF_JNE, 5, 0, next);
  p.Load(BPF_W, 5, kCtx, offsetof(__sk_buff, pkt_type));
  p.Jump(BPF_JNE, 5, 0, next);  // PACKET_HOST
  // The whole frame within direct reach: pulled in when the device received it into pages.
  p.Load(BPF_W, kCounters, kCtx, offsetof(__sk_buff, len));
  p.Jump(BPF_JGT, kCounters, kTcMaxFrame, next);
  p.LoadPointers(kCtx, Hook::kTc);
  p.MovReg(4, P::kData);
  p.AluReg(BPF_ADD, 4, kCounters);
  p.JumpReg(BPF_JLE, 4, P::kEnd, linear);
  p.MovReg(1, kCtx);
  p.MovReg(2, kCounters);
  p.Call(BPF_FUNC_skb_pull_data);
  p.Jump(BPF_JNE, 0, 0, next);
  p.Place(linear);
  EmitOuterChecks(p, kCtx, Hook::kTc, nullptr, dst_addr, m.vxlan_port, m.vxlan_port, next);
  EmitFastPath(p, m, next, Hook::kTc);
  p.Place(next);
  p.Return(kTcxNext);
  return p.Finish();
}

FdGuard CreateMap(Napi::Env env, uint32_t type, uint32_t key, uint32_t value, uint32_t entries, uint32_t flags, const char* name) {
  bpf_attr a{};
  a.map_type = type;
  a.key_size = key;
  a.value_size = value;
  a.max_entries = entries;
  a.map_flags = flags;
  CopyBpfName(a.map_name, name);
  FdGuard fd{Bpf(BPF_MAP_CREATE, &a)};
  if (fd.fd < 0) ThrowErrno(env, "bpf(BPF_MAP_CREATE)", errno);
  return fd;
}

// An ArrayBuffer over an mmap-able array map's values; unmapped when the buffer is collected.
Napi::ArrayBuffer MapMemory(Napi::Env env, int fd, size_t bytes) {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t len = (bytes + page - 1) / page * page;
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) ThrowErrno(env, "mmap(BPF map)", errno);
  return Napi::ArrayBuffer::New(env, m, bytes, [len](Napi::Env, void* data) { munmap(data, len); });
}

// fastPathMaps(maxFlows, slots) -> {flowsFd, countersFd, controlFd, counters, control}
Napi::Value FastPathMapsNew(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t max_flows = U32Arg(info, 0, "maxFlows", 1 << 24);
  uint32_t slots = U32Arg(info, 1, "slots", 1 << 24);
  if (max_flows == 0 || slots == 0) ThrowType(env, "maxFlows and slots must be > 0");
  FdGuard flows = CreateMap(env, BPF_MAP_TYPE_LRU_HASH, kKeySize, kActionSize, max_flows, 0, "mg_fast_flows");
  FdGuard counters = CreateMap(env, BPF_MAP_TYPE_ARRAY, 4, kCounterSize, slots, BPF_F_MMAPABLE, "mg_fast_count");
  FdGuard control = CreateMap(env, BPF_MAP_TYPE_ARRAY, 4, 4, 1, BPF_F_MMAPABLE, "mg_fast_ctl");
  Napi::Object r = Napi::Object::New(env);
  r.Set("counters", MapMemory(env, counters.fd, size_t(slots) * kCounterSize));
  r.Set("control", MapMemory(env, control.fd, 4));
  r.Set("flowsFd", flows.release());
  r.Set("countersFd", counters.release());
  r.Set("controlFd", control.release());
  return r;
}

// fastPathPut(flowsFd, key, action): adds or replaces the flow's action.
Napi::Value FastPathPut(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  const uint8_t* key = ArrayArg<uint8_t>(info, 1, "key", napi_uint8_array, "Uint8Array", kKeySize);
  const uint8_t* action = ArrayArg<uint8_t>(info, 2, "action", napi_uint8_array, "Uint8Array", kActionSize);
  bpf_attr u{};
  u.map_fd = static_cast<uint32_t>(fd);
  u.key = reinterpret_cast<uint64_t>(key);
  u.value = reinterpret_cast<uint64_t>(action);
  u.flags = BPF_ANY;
  if (Bpf(BPF_MAP_UPDATE_ELEM, &u) < 0) ThrowErrno(env, "bpf(BPF_MAP_UPDATE_ELEM)", errno);
  return env.Undefined();
}

// tcAttach(ifindex, dstAddr, vxlanPort, fast, how) -> {fd, via}: the fast path at the device's
// tc ingress. fast: {flowsFd, countersFd, controlFd}. how: "link" (tcx), "filter" (clsact) or
// "auto" (a link where the kernel has tcx, else a filter). via "link": attached while fd (the
// link's) is open. via "filter": attached until tcDetachFilter; fd is the program's.
Napi::Value TcAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex = U32Arg(info, 0, "ifindex", INT32_MAX);
  uint32_t dst = U32Arg(info, 1, "dstAddr", UINT32_MAX);
  uint32_t port = U32Arg(info, 2, "vxlanPort", 65535);
  FastPathMaps fast = FastPathMapsArg(info, 3, static_cast<uint16_t>(port));
  std::string how = StrArg(info, 4, "how");
  if (how != "link" && how != "filter" && how != "auto") ThrowType(env, "how must be link, filter or auto");
  std::vector<bpf_insn> code = BuildTcProgram(fast, dst);
  FdGuard prog{LoadProgram(env, BPF_PROG_TYPE_SCHED_CLS, code, kTcProgramName, 0)};
  Napi::Object r = Napi::Object::New(env);
  if (how != "filter") {
    int fd = CreateLink(prog.fd, ifindex, kTcxIngress);
    // A kernel without tcx does not know the attach type.
    if (fd < 0 && (how == "link" || errno != EINVAL)) ThrowErrno(env, "bpf(BPF_LINK_CREATE)", errno);
    if (fd >= 0) {
      r.Set("fd", fd);
      r.Set("via", "link");
      return r;
    }
  }
  AttachTcFilter(env, ifindex, prog.fd, kTcProgramName);
  r.Set("fd", prog.release());
  r.Set("via", "filter");
  return r;
}

// tcDetachFilter(ifindex, progFd) -> whether the filter was still this program's and is gone.
Napi::Value TcDetachFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex = U32Arg(info, 0, "ifindex", INT32_MAX);
  return Napi::Boolean::New(env, DetachTcFilter(env, ifindex, FdArg(info, 1)));
}

}  // namespace

void InitFastPath(Napi::Env env, Napi::Object exports) {
  exports.Set("fastPathMaps", Napi::Function::New(env, FastPathMapsNew));
  exports.Set("fastPathPut", Napi::Function::New(env, FastPathPut));
  exports.Set("tcAttach", Napi::Function::New(env, TcAttach));
  exports.Set("tcDetachFilter", Napi::Function::New(env, TcDetachFilter));
  exports.Set("tcFilterPref", Napi::Number::New(env, kTcFilterPref));
}

}  // namespace mg
