// The XDP fast path (fast_path.cc): flows the gateway has already decided, forwarded inside the
// XDP program. Shared with xdp.cc, which places it in the ingress program.
#pragma once

#include "bpf.h"

namespace mg {

// Maps the fast path reads; all are fds of this process.
struct FastPathMaps {
  int flows = -1;     // LRU hash: FlowKey → FlowAction
  int counters = -1;  // array (mmap-able): slot → FlowCounters
  int control = -1;   // array (mmap-able) of one u32: the generation entries must carry; 0 = off
  uint16_t vxlan_port = 4789;
};

// Emits the fast path. On entry: r6 the context, r9 the frame's whole length (fragments
// included), the outer Ethernet/IPv4/UDP headers checked. Frames it does not forward jump to
// `slow` with r6 intact; forwarded ones leave the program (XDP_REDIRECT).
void EmitFastPath(Program& p, const FastPathMaps& maps, Program::Label slow);

}  // namespace mg
