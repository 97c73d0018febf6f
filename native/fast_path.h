// The fast path (fast_path.cc): flows the gateway has already decided, forwarded inside a BPF
// program. xdp.cc places it in the XDP ingress program; fast_path.cc also builds it alone as a
// tc ingress program.
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

// {flowsFd, countersFd, controlFd} (from fastPathMaps) at argument i.
FastPathMaps FastPathMapsArg(const Napi::CallbackInfo& info, size_t i, uint16_t vxlan_port);

// Checks the outer headers of a tunnelled frame whose context is in `ctx`: untagged IPv4 without
// options, not a fragment, UDP to port1 or port2, a valid header checksum, to dst_addr (0: any)
// and, when `mac` is given, to that MAC. Frames that fail jump to `fail`.
void EmitOuterChecks(Program& p, uint8_t ctx, Hook hook, const uint8_t* mac, uint32_t dst_addr, uint16_t port1,
                     uint16_t port2, Program::Label fail);

// Emits the fast path. On entry: r6 the context, r9 the frame's whole length (fragments
// included), the outer headers checked (EmitOuterChecks). Frames it does not forward jump to
// `slow` unchanged with r6 intact; forwarded ones leave the program (bpf_redirect's verdict).
void EmitFastPath(Program& p, const FastPathMaps& maps, Program::Label slow, Hook hook);

}  // namespace mg
