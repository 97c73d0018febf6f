// XDP ingress: mirror packets taken off the device before the kernel's IP and UDP receive path.
//
// A small XDP program (built here, instruction by instruction: no compiler, no libbpf) passes
// every frame to the kernel except the ones the gateway would receive anyway: unfragmented
// IPv4/UDP with a valid header checksum to our MAC, address and tunnel ports, short enough for
// one frame of the ring. It
// handles multi-buffer frames (BPF_F_XDP_HAS_FRAGS, Linux 5.18), so jumbo-MTU links can run it. Those it
// redirects to an AF_XDP socket per receive queue, through an XSKMAP keyed by queue index. A
// queue without a socket, and every frame the program does not select (fragments, IPv6, jumbo
// frames, IP options), takes the kernel path to the UDP sockets, which stay bound: nothing is
// lost when a worker is missing, and the kernel never answers port-unreachable. With the fast
// path's maps (fast_path.cc), frames of flows it holds an action for are forwarded by the
// program itself before any of this.
//
//   xdpAttach(ifindex, queues, mac, dstAddr, port1, port2, maxFrame, fast?) -> {linkFd, mapFd}
//   xskOpen(ifindex, queue, mapFd, frames, frameSize) -> {fd, zeroCopy}
//   xskRecv(fd, arena, slotSize, max, lengths) -> count of whole Ethernet frames copied
//   xskDrops(fd) -> packets the kernel dropped at this socket (ring full, no free frame)
//   xskClose(fd)
//
// The program stays attached while linkFd is open: closing it, or the process ending, detaches
// it. Needs CAP_NET_ADMIN, CAP_BPF (or CAP_SYS_ADMIN) and CAP_NET_RAW.

#include "fast_path.h"

#include <linux/if_xdp.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

namespace {

using namespace mg;

// ---- the program ---------------------------------------------------------------------

constexpr uint8_t kSavedCtx = 6, kFrameLen = 9;

// dstAddr 0 accepts any destination address; port2 may repeat port1. With `fast`, the fast path
// (fast_path.cc) looks at every selected frame first.
std::vector<bpf_insn> BuildProgram(int map_fd, const uint8_t mac[6], uint32_t dst_addr, uint16_t port1, uint16_t port2,
                                   uint32_t max_frame, const FastPathMaps* fast) {
  using P = Program;
  Program p;
  P::Label pass = p.NewLabel();
  // The whole frame must fit one ring frame. Counting its fragments too (a multi-buffer frame on
  // a jumbo-MTU link), which the program may see since it declares BPF_F_XDP_HAS_FRAGS.
  p.MovReg(kSavedCtx, P::kCtx);
  p.Call(BPF_FUNC_xdp_get_buff_len);
  p.Jump(BPF_JGT, 0, static_cast<int32_t>(max_frame), pass);
  p.MovReg(kFrameLen, 0);
  EmitOuterChecks(p, kSavedCtx, Hook::kXdp, mac, dst_addr, port1, port2, pass);
  P::Label to_socket = p.NewLabel();
  if (fast) EmitFastPath(p, *fast, to_socket, Hook::kXdp);
  p.Place(to_socket);
  // bpf_redirect_map(map, rx_queue_index, XDP_PASS): the flags' low bits are what a queue
  // without a socket returns, so its frames go on to the kernel.
  p.Load(BPF_W, 2, kSavedCtx, 16);
  p.LoadMap(1, map_fd);
  p.Mov(3, XDP_PASS);
  p.Call(BPF_FUNC_redirect_map);
  p.Ins(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  p.Place(pass);
  p.Return(XDP_PASS);
  return p.Finish();
}

// xdpAttach(ifindex, queues, mac: Uint8Array(6), dstAddr, port1, port2, maxFrame, fast?) -> {linkFd, mapFd}
// fast: {flowsFd, countersFd, controlFd} from fastPathMaps; its VXLAN port is port1.
Napi::Value XdpAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex = U32Arg(info, 0, "ifindex", INT32_MAX);
  uint32_t queues = U32Arg(info, 1, "queues", 4096);
  const uint8_t* mac = ArrayArg<uint8_t>(info, 2, "mac", napi_uint8_array, "Uint8Array", 6);
  uint32_t dst = U32Arg(info, 3, "dstAddr", UINT32_MAX);
  uint32_t port1 = U32Arg(info, 4, "port1", 65535);
  uint32_t port2 = U32Arg(info, 5, "port2", 65535);
  uint32_t max_frame = U32Arg(info, 6, "maxFrame", 65535);
  if (queues == 0) ThrowType(env, "queues must be > 0");
  bool with_fast = info.Length() > 7 && info[7].IsObject();
  FastPathMaps fast = with_fast ? FastPathMapsArg(info, 7, static_cast<uint16_t>(port1)) : FastPathMaps{};
  bpf_attr m{};
  m.map_type = BPF_MAP_TYPE_XSKMAP;
  m.key_size = 4;
  m.value_size = 4;
  m.max_entries = queues;
  CopyBpfName(m.map_name, "mirrorgate_xsk");
  FdGuard map{Bpf(BPF_MAP_CREATE, &m)};
  if (map.fd < 0) ThrowErrno(env, "bpf(BPF_MAP_CREATE)", errno);

  std::vector<bpf_insn> code = BuildProgram(map.fd, mac, dst, uint16_t(port1), uint16_t(port2), max_frame, with_fast ? &fast : nullptr);
  FdGuard prog{LoadProgram(env, BPF_PROG_TYPE_XDP, code, "mirrorgate", BPF_F_XDP_HAS_FRAGS)};
  FdGuard link{AttachLink(env, prog.fd, ifindex, BPF_XDP)};
  // The link holds the program from here on.
  Napi::Object r = Napi::Object::New(env);
  r.Set("linkFd", link.release());
  r.Set("mapFd", map.release());
  return r;
}

// ---- the sockets ---------------------------------------------------------------------

// One ring of an AF_XDP socket: producer and consumer indices shared with the kernel.
struct Ring {
  uint32_t* producer = nullptr;
  uint32_t* consumer = nullptr;
  uint32_t* flags = nullptr;
  void* descs = nullptr;
  uint32_t mask = 0;
  void* map = nullptr;
  size_t map_len = 0;
};

struct Xsk {
  int fd = -1;
  uint8_t* umem = nullptr;
  size_t umem_len = 0;
  uint32_t frame_size = 0;
  Ring rx, fill, completion;
  ~Xsk() {
    for (Ring* r : {&rx, &fill, &completion})
      if (r->map) munmap(r->map, r->map_len);
    if (umem) munmap(umem, umem_len);
    if (fd >= 0) ::close(fd);
  }
};

// Sockets by fd: JS holds plain fds, as for the other sockets. The lock is taken once per batch;
// only the owning worker receives on or closes a socket.
std::mutex g_xsks_lock;
std::unordered_map<int, std::unique_ptr<Xsk>> g_xsks;

Xsk* Find(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  std::lock_guard<std::mutex> hold(g_xsks_lock);
  auto it = g_xsks.find(fd);
  if (it == g_xsks.end()) ThrowType(info.Env(), "fd " + std::to_string(fd) + " is not an open XDP socket");
  return it->second.get();
}

void MapRing(Napi::Env env, Xsk& x, Ring& r, const xdp_ring_offset& off, uint32_t size, size_t desc_size, off_t pgoff) {
  r.map_len = off.desc + size * desc_size;
  void* m = mmap(nullptr, r.map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, x.fd, pgoff);
  if (m == MAP_FAILED) {
    r.map_len = 0;
    ThrowErrno(env, "mmap(XDP ring)", errno);
  }
  auto* base = static_cast<uint8_t*>(m);
  r.map = m;
  r.producer = reinterpret_cast<uint32_t*>(base + off.producer);
  r.consumer = reinterpret_cast<uint32_t*>(base + off.consumer);
  r.flags = reinterpret_cast<uint32_t*>(base + off.flags);
  r.descs = base + off.desc;
  r.mask = size - 1;
}

void SetRing(Napi::Env env, int fd, int opt, uint32_t size, const char* name) {
  if (setsockopt(fd, SOL_XDP, opt, &size, sizeof size) < 0) ThrowErrno(env, name, errno);
}

bool PowerOfTwo(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

// xskOpen(ifindex, queue, mapFd, frames, frameSize) -> {fd, zeroCopy}
Napi::Value XskOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex = U32Arg(info, 0, "ifindex", INT32_MAX);
  uint32_t queue = U32Arg(info, 1, "queue", 4095);
  int map_fd = static_cast<int>(U32Arg(info, 2, "mapFd", INT32_MAX));
  uint32_t frames = U32Arg(info, 3, "frames", 1 << 20);
  uint32_t frame_size = U32Arg(info, 4, "frameSize", 1 << 16);
  if (!PowerOfTwo(frames)) ThrowType(env, "frames must be a power of two");
  if (!PowerOfTwo(frame_size) || frame_size < 2048 || frame_size > 4096) ThrowType(env, "frameSize must be 2048 or 4096");

  auto x = std::make_unique<Xsk>();
  x->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (x->fd < 0) ThrowErrno(env, "socket(AF_XDP)", errno);
  x->frame_size = frame_size;
  x->umem_len = size_t(frames) * frame_size;
  void* area = mmap(nullptr, x->umem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) {
    x->umem_len = 0;
    ThrowErrno(env, "mmap(UMEM)", errno);
  }
  x->umem = static_cast<uint8_t*>(area);

  xdp_umem_reg reg{};
  reg.addr = reinterpret_cast<uint64_t>(x->umem);
  reg.len = x->umem_len;
  reg.chunk_size = frame_size;
  if (setsockopt(x->fd, SOL_XDP, XDP_UMEM_REG, &reg, sizeof reg) < 0) ThrowErrno(env, "setsockopt(XDP_UMEM_REG)", errno);
  // Every frame is always in exactly one place (fill ring, kernel, rx ring, being copied), so
  // rings as large as the frame count never overflow. We never transmit: completion stays tiny.
  SetRing(env, x->fd, XDP_UMEM_FILL_RING, frames, "setsockopt(XDP_UMEM_FILL_RING)");
  SetRing(env, x->fd, XDP_UMEM_COMPLETION_RING, 64, "setsockopt(XDP_UMEM_COMPLETION_RING)");
  SetRing(env, x->fd, XDP_RX_RING, frames, "setsockopt(XDP_RX_RING)");
  xdp_mmap_offsets off{};
  socklen_t optlen = sizeof off;
  if (getsockopt(x->fd, SOL_XDP, XDP_MMAP_OFFSETS, &off, &optlen) < 0) ThrowErrno(env, "getsockopt(XDP_MMAP_OFFSETS)", errno);
  MapRing(env, *x, x->rx, off.rx, frames, sizeof(xdp_desc), XDP_PGOFF_RX_RING);
  MapRing(env, *x, x->fill, off.fr, frames, sizeof(uint64_t), XDP_UMEM_PGOFF_FILL_RING);
  MapRing(env, *x, x->completion, off.cr, 64, sizeof(uint64_t), XDP_UMEM_PGOFF_COMPLETION_RING);

  auto* fill = static_cast<uint64_t*>(x->fill.descs);
  for (uint32_t i = 0; i < frames; i++) fill[i] = uint64_t(i) * frame_size;
  __atomic_store_n(x->fill.producer, frames, __ATOMIC_RELEASE);

  // No mode flag: zero-copy where the driver has it, copy mode otherwise.
  sockaddr_xdp sxdp{};
  sxdp.sxdp_family = AF_XDP;
  sxdp.sxdp_flags = XDP_USE_NEED_WAKEUP;
  sxdp.sxdp_ifindex = ifindex;
  sxdp.sxdp_queue_id = queue;
  if (bind(x->fd, reinterpret_cast<sockaddr*>(&sxdp), sizeof sxdp) < 0) ThrowErrno(env, "bind(AF_XDP)", errno);
  bpf_attr u{};
  u.map_fd = static_cast<uint32_t>(map_fd);
  u.key = reinterpret_cast<uint64_t>(&queue);
  u.value = reinterpret_cast<uint64_t>(&x->fd);
  u.flags = BPF_ANY;
  if (Bpf(BPF_MAP_UPDATE_ELEM, &u) < 0) ThrowErrno(env, "bpf(BPF_MAP_UPDATE_ELEM)", errno);

  xdp_options opts{};
  optlen = sizeof opts;
  bool zero_copy = getsockopt(x->fd, SOL_XDP, XDP_OPTIONS, &opts, &optlen) == 0 && (opts.flags & XDP_OPTIONS_ZEROCOPY);
  Napi::Object r = Napi::Object::New(env);
  r.Set("fd", x->fd);
  r.Set("zeroCopy", zero_copy);
  std::lock_guard<std::mutex> hold(g_xsks_lock);
  g_xsks[x->fd] = std::move(x);
  return r;
}

// xskRecv(fd, arena, slotSize, max, lengths) -> count. Frame i (from its Ethernet header) lands
// at arena[i*slotSize]; its frame goes straight back to the fill ring. Never blocks.
Napi::Value XskRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Xsk* x = Find(info);
  uint32_t slot = U32Arg(info, 2, "slotSize", 1u << 20);
  uint32_t max = U32Arg(info, 3, "max", 1u << 20);
  if (slot == 0) ThrowType(env, "slotSize must be > 0");
  uint8_t* arena = ArrayArg<uint8_t>(info, 1, "arena", napi_uint8_array, "Uint8Array or ArrayBuffer", uint64_t(slot) * max);
  uint32_t* lengths = ArrayArg<uint32_t>(info, 4, "lengths", napi_uint32_array, "Uint32Array", max);

  uint32_t cons = *x->rx.consumer;  // only we write it
  uint32_t avail = __atomic_load_n(x->rx.producer, __ATOMIC_ACQUIRE) - cons;
  uint32_t n = avail < max ? avail : max;
  if (n == 0) return Napi::Number::New(env, 0);
  auto* descs = static_cast<const xdp_desc*>(x->rx.descs);
  auto* fill = static_cast<uint64_t*>(x->fill.descs);
  uint32_t fill_prod = *x->fill.producer;
  const uint64_t chunk_mask = ~uint64_t(x->frame_size - 1);
  for (uint32_t i = 0; i < n; i++) {
    const xdp_desc& d = descs[(cons + i) & x->rx.mask];
    uint32_t len = d.len < slot ? d.len : slot;  // the program only redirects frames shorter than a slot
    memcpy(arena + size_t(i) * slot, x->umem + d.addr, len);
    lengths[i] = len;
    fill[(fill_prod + i) & x->fill.mask] = d.addr & chunk_mask;
  }
  __atomic_store_n(x->rx.consumer, cons + n, __ATOMIC_RELEASE);
  __atomic_store_n(x->fill.producer, fill_prod + n, __ATOMIC_RELEASE);
  // Drivers that fill from the application's context (zero-copy) ask to be kicked.
  if (__atomic_load_n(x->fill.flags, __ATOMIC_RELAXED) & XDP_RING_NEED_WAKEUP)
    recvfrom(x->fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
  return Napi::Number::New(env, n);
}

// xskDrops(fd) -> packets the kernel dropped at this socket: rx ring full, or no free frame.
// Called from the main thread while the owning worker may be closing the socket: the lock is
// held across the read so the socket cannot go away under it.
Napi::Value XskDrops(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  xdp_statistics s{};
  {
    std::lock_guard<std::mutex> hold(g_xsks_lock);
    auto it = g_xsks.find(fd);
    if (it == g_xsks.end()) ThrowType(info.Env(), "fd " + std::to_string(fd) + " is not an open XDP socket");
    socklen_t len = sizeof s;
    if (getsockopt(fd, SOL_XDP, XDP_STATISTICS, &s, &len) < 0) ThrowErrno(info.Env(), "getsockopt(XDP_STATISTICS)", errno);
  }
  return Napi::Number::New(info.Env(), double(s.rx_dropped + s.rx_ring_full));
}

Napi::Value XskClose(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  std::unique_ptr<Xsk> gone;
  {
    std::lock_guard<std::mutex> hold(g_xsks_lock);
    auto it = g_xsks.find(fd);
    if (it != g_xsks.end()) {
      gone = std::move(it->second);
      g_xsks.erase(it);
    }
  }
  return info.Env().Undefined();  // `gone` unmaps and closes here
}

}  // namespace

namespace mg {

void InitXdp(Napi::Env env, Napi::Object exports) {
  exports.Set("xdpAttach", Napi::Function::New(env, XdpAttach));
  exports.Set("xskOpen", Napi::Function::New(env, XskOpen));
  exports.Set("xskRecv", Napi::Function::New(env, XskRecv));
  exports.Set("xskDrops", Napi::Function::New(env, XskDrops));
  exports.Set("xskClose", Napi::Function::New(env, XskClose));
}

}  // namespace mg
