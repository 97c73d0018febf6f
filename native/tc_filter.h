// A BPF program as a direct-action filter on a device's clsact ingress, added over rtnetlink: the
// tc hook for kernels without tcx links (before Linux 6.6: Amazon Linux 2023's 6.1, Debian 12).
#pragma once

#include <napi.h>

#include <cstdint>

namespace mg {

// The filter's preference and handle. A filter outlives the process that added it, so each
// gateway uses the same ones: a restarted gateway replaces what a killed one left behind, and
// an operator can remove it with `tc filter del dev <if> ingress pref 49152`.
constexpr uint32_t kTcFilterPref = 49152, kTcFilterHandle = 0x6d67;

// Adds the device's clsact qdisc if it has none, then adds (or replaces) the filter running
// prog_fd's program. Errors carry the kernel's extended ack message when it sent one.
void AttachTcFilter(Napi::Env env, uint32_t ifindex, int prog_fd, const char* name);

// Removes the filter if it still runs prog_fd's program (another gateway may have replaced it);
// returns whether it did.
bool DetachTcFilter(Napi::Env env, uint32_t ifindex, int prog_fd);

}  // namespace mg
