// mirrorgate native addon: the few socket operations Node's dgram cannot do.
//
//   - batch receive (recvmmsg) straight into memory that JavaScript allocated once,
//   - batch send (sendmmsg) on raw IPv4/IPv6 sockets (we write the IP header, so the
//     exporter's source address is kept), on packet sockets bound to one device (we write
//     the Ethernet header too) and on plain UDP sockets,
//   - poll(2) for readability, so JS can wait without spinning.
//
// All packet logic stays in TypeScript (src/io/native/index.ts); this file only moves
// bytes between the kernel and JS-owned buffers. Conventions:
//   - Sockets are plain fd numbers, not wrapped objects, so worker threads can poll/recv
//     the same socket and the TS side owns the lifecycle.
//   - Socket creation throws an Error carrying {syscall, errno, errnoName}; TS turns it
//     into a SocketError with a helpful message.
//   - Batch calls never throw on per-packet failures: they return a count and record the
//     first failure for lastErrno() (thread-local, read right after the call).
//   - Bad arguments throw TypeError before any syscall is made.
//   - No heap allocation in the data path: kernel descriptors for a batch live on the
//     stack, processed in chunks of kChunk packets.

#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#ifndef IPV6_HDRINCL
#define IPV6_HDRINCL 36  // Linux >= 4.5; older kernels imply it for IPPROTO_RAW anyway
#endif

namespace {

using namespace mg;

constexpr unsigned kChunk = 256;  // packets per syscall; ~28 KiB of stack descriptors
thread_local int g_last_errno = 0;

union SockAddr {  // big enough for either family, without sockaddr_storage's 128 bytes
  sockaddr sa;
  sockaddr_in v4;
  sockaddr_in6 v6;
};

// Parses "1.2.3.4" or "::1" into a sockaddr; EINVAL (as a creation error) if neither.
socklen_t ParseAddr(Napi::Env env, const std::string& text, uint32_t port, SockAddr* out) {
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, text.c_str(), &out->v4.sin_addr) == 1) {
    out->v4.sin_family = AF_INET;
    out->v4.sin_port = htons(port);
    return sizeof out->v4;
  }
  if (inet_pton(AF_INET6, text.c_str(), &out->v6.sin6_addr) == 1) {
    out->v6.sin6_family = AF_INET6;
    out->v6.sin6_port = htons(port);
    return sizeof out->v6;
  }
  ThrowErrno(env, "inet_pton", EINVAL);
}

// Big buffers absorb bursts between event-loop turns. As root the *FORCE variant may
// exceed net.core.{r,w}mem_max; otherwise the kernel silently caps at the sysctl.
// Returns what the kernel granted (it reports twice the requested value).
int SetBuf(int fd, int force_opt, int opt, uint32_t bytes) {
  int val = static_cast<int>(bytes > INT32_MAX / 2 ? INT32_MAX / 2 : bytes);
  if (val > 0 && setsockopt(fd, SOL_SOCKET, force_opt, &val, sizeof val) < 0)
    setsockopt(fd, SOL_SOCKET, opt, &val, sizeof val);  // best effort: not fatal
  int got = 0;
  socklen_t len = sizeof got;
  getsockopt(fd, SOL_SOCKET, opt, &got, &len);
  return got;
}

// ---- socket creation ----------------------------------------------------------------

// For the send sockets (raw and UDP): without RECVERR the kernel hides a packet the device's
// queue drops (qdisc or veth ring full) and we would count it as sent; with it, send reports
// ENOBUFS. On UDP it also makes an ICMP error about an earlier datagram fail the next send once,
// which Send() retries. Nothing reads these sockets: the smallest receive buffer keeps what
// reaches them, error queue included, small.
void ReportQueueDrops(Napi::Env env, int fd, bool v6) {
  int one = 1;
  if (setsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_RECVERR : IP_RECVERR, &one, sizeof one) < 0)
    ThrowErrno(env, v6 ? "setsockopt(IPV6_RECVERR)" : "setsockopt(IP_RECVERR)", errno);
  int zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &zero, sizeof zero);
}

// A non-blocking UDP socket bound to address:port, for receiving (rx) or sending:
//   udpOpen(address, port, reusePort, rcvbufBytes) -> {fd, port, rcvbufBytes}
//   udpSendOpen(address, port, sndbufBytes)        -> {fd, port, sndbufBytes}
// The sending one is bound to our own address, for egress without raw privileges.
Napi::Value OpenUdp(const Napi::CallbackInfo& info, bool rx) {
  Napi::Env env = info.Env();
  std::string address = StrArg(info, 0, "address");
  uint32_t port = U32Arg(info, 1, "port", 65535);
  bool reuse = rx && info[2].ToBoolean();
  uint32_t buf = U32Arg(info, rx ? 3 : 2, rx ? "rcvbufBytes" : "sndbufBytes", UINT32_MAX);
  SockAddr sa;
  socklen_t salen = ParseAddr(env, address, port, &sa);
  FdGuard fd{socket(sa.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (fd.fd < 0) ThrowErrno(env, "socket", errno);
  int one = 1;
  // SO_REUSEPORT lets several receivers (processes or sockets) share the port; the
  // kernel spreads flows across them.
  if (reuse && setsockopt(fd.fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    ThrowErrno(env, "setsockopt(SO_REUSEPORT)", errno);
  int granted = rx ? SetBuf(fd.fd, SO_RCVBUFFORCE, SO_RCVBUF, buf) : SetBuf(fd.fd, SO_SNDBUFFORCE, SO_SNDBUF, buf);
  if (!rx) ReportQueueDrops(env, fd.fd, sa.sa.sa_family == AF_INET6);
  if (bind(fd.fd, &sa.sa, salen) < 0) ThrowErrno(env, "bind", errno);
  SockAddr bound;
  socklen_t blen = sizeof bound;
  getsockname(fd.fd, &bound.sa, &blen);  // the real port when 0 was asked for
  Napi::Object r = Napi::Object::New(env);
  r.Set("port", ntohs(bound.sa.sa_family == AF_INET ? bound.v4.sin_port : bound.v6.sin6_port));
  r.Set(rx ? "rcvbufBytes" : "sndbufBytes", granted);
  r.Set("fd", fd.release());
  return r;
}

Napi::Value UdpOpen(const Napi::CallbackInfo& info) { return OpenUdp(info, true); }
Napi::Value UdpSendOpen(const Napi::CallbackInfo& info) { return OpenUdp(info, false); }

// rawOpen(family 4|6, sndbufBytes) -> {fd, sndbufBytes}. Needs root or CAP_NET_RAW.
Napi::Value RawOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t family = U32Arg(info, 0, "family", 6);
  if (family != 4 && family != 6) ThrowType(env, "family must be 4 or 6");
  uint32_t sndbuf = U32Arg(info, 1, "sndbufBytes", UINT32_MAX);
  // IPPROTO_RAW sockets are send-only: the kernel never queues received packets on them.
  FdGuard fd{socket(family == 4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW)};
  if (fd.fd < 0) ThrowErrno(env, "socket", errno);
  int one = 1;
  // HDRINCL: the buffer starts with our IP header (source address included); the kernel
  // only fills the IPv4 checksum/total length/id.
  if (family == 4 && setsockopt(fd.fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one) < 0)
    ThrowErrno(env, "setsockopt(IP_HDRINCL)", errno);
  if (family == 6 && setsockopt(fd.fd, IPPROTO_IPV6, IPV6_HDRINCL, &one, sizeof one) < 0 && errno != ENOPROTOOPT)
    ThrowErrno(env, "setsockopt(IPV6_HDRINCL)", errno);
  ReportQueueDrops(env, fd.fd, family == 6);
  Napi::Object r = Napi::Object::New(env);
  r.Set("sndbufBytes", SetBuf(fd.fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf));
  r.Set("fd", fd.release());
  return r;
}

// packetOpen(ifindex, sndbufBytes) -> {fd, sndbufBytes}: an AF_PACKET socket bound to one
// device, for frames that carry their own Ethernet header. Protocol 0: it never receives.
// Sending on it skips the kernel's routing and IP output; the frames still pass the device's
// qdisc and packet taps (tcpdump sees them). Needs root or CAP_NET_RAW.
Napi::Value PacketOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t ifindex = U32Arg(info, 0, "ifindex", INT32_MAX);
  uint32_t sndbuf = U32Arg(info, 1, "sndbufBytes", UINT32_MAX);
  FdGuard fd{socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (fd.fd < 0) ThrowErrno(env, "socket", errno);
  sockaddr_ll ll{};
  ll.sll_family = AF_PACKET;
  ll.sll_ifindex = static_cast<int>(ifindex);
  if (bind(fd.fd, reinterpret_cast<sockaddr*>(&ll), sizeof ll) < 0) ThrowErrno(env, "bind", errno);
  Napi::Object r = Napi::Object::New(env);
  r.Set("sndbufBytes", SetBuf(fd.fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf));
  r.Set("fd", fd.release());
  return r;
}

// ---- data path ------------------------------------------------------------------------

// recv(fd, arena, slotSize, max, lengths, srcAddr, srcPort, truncated, srcAddr6|null) -> count
// Datagram i lands at arena[i*slotSize]. Never blocks; 0 means nothing was waiting.
Napi::Value Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  uint32_t slot = U32Arg(info, 2, "slotSize", 1u << 20);
  uint32_t max = U32Arg(info, 3, "max", 1u << 20);
  if (slot == 0) ThrowType(env, "slotSize must be > 0");
  uint8_t* arena = ArrayArg<uint8_t>(info, 1, "arena", napi_uint8_array, "Uint8Array or ArrayBuffer", uint64_t(slot) * max);
  uint32_t* lengths = ArrayArg<uint32_t>(info, 4, "lengths", napi_uint32_array, "Uint32Array", max);
  uint32_t* addrs = ArrayArg<uint32_t>(info, 5, "srcAddr", napi_uint32_array, "Uint32Array", max);
  uint16_t* ports = ArrayArg<uint16_t>(info, 6, "srcPort", napi_uint16_array, "Uint16Array", max);
  uint8_t* trunc = ArrayArg<uint8_t>(info, 7, "truncated", napi_uint8_array, "Uint8Array", max);
  uint8_t* addr6 = ArrayArg<uint8_t>(info, 8, "srcAddr6", napi_uint8_array, "Uint8Array", uint64_t(max) * 16, true);

  g_last_errno = 0;
  mmsghdr msgs[kChunk];
  iovec iov[kChunk];
  SockAddr from[kChunk];
  uint32_t got = 0;
  while (got < max) {
    unsigned n = max - got < kChunk ? max - got : kChunk;
    // Every field set explicitly: no memset of the whole array when only a few packets wait.
    for (unsigned i = 0; i < n; i++) {
      iov[i] = {arena + size_t(got + i) * slot, slot};
      msghdr& h = msgs[i].msg_hdr;
      h.msg_name = &from[i];
      h.msg_namelen = sizeof from[i];
      h.msg_iov = &iov[i];
      h.msg_iovlen = 1;
      h.msg_control = nullptr;
      h.msg_controllen = 0;
      h.msg_flags = 0;
      msgs[i].msg_len = 0;
    }
    int r = recvmmsg(fd, msgs, n, MSG_DONTWAIT, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) g_last_errno = errno;
      break;
    }
    for (int i = 0; i < r; i++) {
      uint32_t k = got + i;
      lengths[k] = msgs[i].msg_len;  // bytes stored (<= slotSize)
      trunc[k] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? 1 : 0;
      const SockAddr& a = from[i];
      if (a.sa.sa_family == AF_INET) {
        addrs[k] = ntohl(a.v4.sin_addr.s_addr);
        ports[k] = ntohs(a.v4.sin_port);
        if (addr6) {  // IPv4-mapped form ::ffff:a.b.c.d
          memset(addr6 + k * 16, 0, 10);
          memset(addr6 + k * 16 + 10, 0xff, 2);
          memcpy(addr6 + k * 16 + 12, &a.v4.sin_addr, 4);
        }
      } else {
        const uint8_t* b = a.v6.sin6_addr.s6_addr;
        bool mapped = IN6_IS_ADDR_V4MAPPED(&a.v6.sin6_addr);
        addrs[k] = mapped ? (uint32_t(b[12]) << 24 | b[13] << 16 | b[14] << 8 | b[15]) : 0;
        ports[k] = ntohs(a.v6.sin6_port);
        if (addr6) memcpy(addr6 + k * 16, b, 16);
      }
    }
    got += r;
    if (unsigned(r) < n) break;  // queue drained
  }
  return Napi::Number::New(env, got);
}

// Egress back-pressure. A full queue (EAGAIN/ENOBUFS: the socket buffer, a qdisc, a veth peer's
// ring) is usually momentary: the device drains it within microseconds. So Send() backs off
// (a yield, then sleeps doubling from kBackoffFirstNs) and retries while the queue keeps
// draining, for at most kBusyBudgetNs per call. When the longest back-off moved nothing or the
// budget is spent, the refused packet is dropped and this thread stops waiting for
// kCongestedNs: an egress that stays full costs drops, not the receive side's time.
constexpr int64_t kBackoffFirstNs = 20'000;
constexpr int64_t kBackoffMaxNs = 160'000;
constexpr int64_t kBusyBudgetNs = 1'000'000;
constexpr int64_t kCongestedNs = 10'000'000;
thread_local int64_t g_congested_until_ns = 0;
thread_local uint32_t g_busy_waits = 0;  // waits in the last send()

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

class Backoff {
 public:
  // Waits before a retry; false when the caller should give up instead.
  bool Wait() {
    int64_t now = MonotonicNs();
    if (now < g_congested_until_ns) return false;
    if (start_ns_ == 0) start_ns_ = now;
    if (step_ns_ > kBackoffMaxNs || now - start_ns_ >= kBusyBudgetNs) {
      g_congested_until_ns = now + kCongestedNs;
      return false;
    }
    if (step_ns_ == 0) {
      sched_yield();  // the drain may be waiting for this very CPU
      step_ns_ = kBackoffFirstNs;
    } else {
      timespec ts = {0, long(step_ns_)};
      nanosleep(&ts, nullptr);
      step_ns_ *= 2;
    }
    g_busy_waits++;
    return true;
  }
  // Packets went out: the queue drains, so the next stall starts with a yield again.
  void Progress() { step_ns_ = 0; }

 private:
  int64_t start_ns_ = 0;
  int64_t step_ns_ = 0;
};

// send(fd, arena, offsets, lengths, count, dst4|null, dst6|null, dstPort|null, waitWhenFull) -> sent
// Packet i is arena[offsets[i] .. offsets[i]+lengths[i]) to dst4[i] (host order) or the
// 16 bytes at dst6[i*16], port dstPort[i] (raw sockets: none, port 0); with neither dst4 nor
// dst6 it goes where the socket is bound (a packet socket's device).
// A packet the kernel refuses (EMSGSIZE, ENETUNREACH...) is tried once more (the error may be
// a late report about an earlier datagram), then skipped, and the batch goes on.
// On EAGAIN/ENOBUFS (queue full) the call first waits for the queue to drain (see Backoff;
// unless waitWhenFull is false); when that does not help, the refused packet is skipped too:
// a ring or qdisc refuses only what does not fit, so the next packet may well go out.
// busyWaits() tells how many waits the call made.
Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  uint32_t count = U32Arg(info, 4, "count", 1u << 24);
  size_t arena_len = 0;
  uint8_t* arena = ArrayArg<uint8_t>(info, 1, "arena", napi_uint8_array, "Uint8Array or ArrayBuffer", 0, false, &arena_len);
  uint32_t* offsets = ArrayArg<uint32_t>(info, 2, "offsets", napi_uint32_array, "Uint32Array", count);
  uint32_t* lengths = ArrayArg<uint32_t>(info, 3, "lengths", napi_uint32_array, "Uint32Array", count);
  uint32_t* dst4 = ArrayArg<uint32_t>(info, 5, "dst4", napi_uint32_array, "Uint32Array", count, true);
  uint8_t* dst6 = ArrayArg<uint8_t>(info, 6, "dst6", napi_uint8_array, "Uint8Array", uint64_t(count) * 16, true);
  uint16_t* ports = ArrayArg<uint16_t>(info, 7, "dstPort", napi_uint16_array, "Uint16Array", count, true);
  if (dst4 != nullptr && dst6 != nullptr) ThrowType(env, "at most one of dst4/dst6 may be given");
  bool wait_when_full = info[8].ToBoolean();
  for (uint32_t i = 0; i < count; i++)  // check every packet before sending any
    if (uint64_t(offsets[i]) + lengths[i] > arena_len)
      ThrowType(env, "packet " + std::to_string(i) + " lies outside the arena");

  g_last_errno = 0;
  g_busy_waits = 0;
  Backoff backoff;
  bool retried = false;
  mmsghdr msgs[kChunk];
  iovec iov[kChunk];
  SockAddr to[kChunk];
  uint32_t next = 0, sent = 0;
  while (next < count) {
    unsigned n = count - next < kChunk ? count - next : kChunk;
    memset(msgs, 0, n * sizeof msgs[0]);
    memset(to, 0, n * sizeof to[0]);
    for (unsigned i = 0; i < n; i++) {
      uint32_t k = next + i;
      uint16_t port = htons(ports ? ports[k] : 0);
      socklen_t len;
      iov[i] = {arena + offsets[k], lengths[k]};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      if (dst4 == nullptr && dst6 == nullptr) continue;
      if (dst4) {
        to[i].v4.sin_family = AF_INET;
        to[i].v4.sin_port = port;
        to[i].v4.sin_addr.s_addr = htonl(dst4[k]);
        len = sizeof to[i].v4;
      } else {
        to[i].v6.sin6_family = AF_INET6;
        to[i].v6.sin6_port = port;
        memcpy(to[i].v6.sin6_addr.s6_addr, dst6 + size_t(k) * 16, 16);
        len = sizeof to[i].v6;
      }
      msgs[i].msg_hdr.msg_name = &to[i];
      msgs[i].msg_hdr.msg_namelen = len;
    }
    // sendmmsg stops at the first refused packet and returns how many went out before it
    // (losing the error), so a short count is followed by a retry that reports it.
    int r = sendmmsg(fd, msgs, n, MSG_DONTWAIT);
    if (r < 0) {
      int e = errno;
      if (e == EINTR) continue;
      bool full = e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS;
      if (full && wait_when_full && backoff.Wait()) continue;
      // A UDP socket reports an ICMP error about an earlier datagram (port unreachable from
      // some backend) by failing whichever send comes next, and reporting clears it: so a
      // refused packet gets one more try before it counts as refused.
      if (!full && !retried) {
        retried = true;
        continue;
      }
      retried = false;
      if (g_last_errno == 0) g_last_errno = e;
      next++;  // drop the refused packet, carry on with the rest
      continue;
    }
    retried = false;
    if (r > 0) backoff.Progress();
    sent += r;
    next += r;
  }
  return Napi::Number::New(env, sent);
}

// 1 = readable (or an error is pending, which recv will report), 0 = timeout,
// -1 = socket shut down or closed. EINTR counts as a timeout: callers loop anyway.
int PollFd(int fd, int timeout_ms) {
  pollfd p = {fd, POLLIN, 0};
  int r = poll(&p, 1, timeout_ms);
  if (r <= 0) return r < 0 && errno != EINTR ? -1 : 0;
  if (p.revents & (POLLHUP | POLLNVAL)) return -1;
  return 1;
}

// wait(fd, timeoutMs) -> 1|0|-1. Blocks the calling thread: use from worker threads.
Napi::Value Wait(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  int ms = static_cast<int>(U32Arg(info, 1, "timeoutMs", INT32_MAX));
  return Napi::Number::New(info.Env(), PollFd(fd, ms));
}

// waitAny(fds: Int32Array, count, timeoutMs) -> bit i set when fds[i] is readable; 0 = timeout;
// -1 when one was shut down. Lets one worker serve all its receive sockets without spinning.
Napi::Value WaitAny(const Napi::CallbackInfo& info) {
  constexpr uint32_t kMaxFds = 8;
  uint32_t count = U32Arg(info, 1, "count", kMaxFds);
  const int32_t* fds = ArrayArg<int32_t>(info, 0, "fds", napi_int32_array, "Int32Array", count);
  int ms = static_cast<int>(U32Arg(info, 2, "timeoutMs", INT32_MAX));
  pollfd p[kMaxFds];
  for (uint32_t i = 0; i < count; i++) p[i] = {fds[i], POLLIN, 0};
  int r = poll(p, count, ms);
  if (r <= 0) return Napi::Number::New(info.Env(), r < 0 && errno != EINTR ? -1 : 0);
  int ready = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (p[i].revents & (POLLHUP | POLLNVAL)) return Napi::Number::New(info.Env(), -1);
    if (p[i].revents) ready |= 1 << i;
  }
  return Napi::Number::New(info.Env(), ready);
}

// waitAsync(fd, timeoutMs) -> Promise<1|0|-1>: the same poll on a libuv pool thread,
// which it occupies until readable or timeout (so keep timeouts short).
class WaitWorker : public Napi::AsyncWorker {
 public:
  WaitWorker(Napi::Env env, int fd, int ms)
      : Napi::AsyncWorker(env, "mirrorgate:wait"), fd_(fd), ms_(ms), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { result_ = PollFd(fd_, ms_); }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), result_)); }

 private:
  int fd_, ms_, result_ = 0;
  Napi::Promise::Deferred deferred_;
};

Napi::Value WaitAsync(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  int ms = static_cast<int>(U32Arg(info, 1, "timeoutMs", INT32_MAX));
  auto* w = new WaitWorker(info.Env(), fd, ms);  // deletes itself after OnOK
  w->Queue();
  return w->Promise();
}

// shutdown(fd): wakes every thread blocked in poll on it (they see -1) before close.
Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  shutdown(FdArg(info, 0), SHUT_RDWR);  // ENOTCONN on unconnected UDP, but still wakes pollers
  return info.Env().Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  ::close(FdArg(info, 0));
  return info.Env().Undefined();
}

Napi::Value ErrnoNameJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ErrnoName(static_cast<int>(U32Arg(info, 0, "errno", INT32_MAX))));
}

Napi::Value LastErrno(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), g_last_errno);
}

Napi::Value BusyWaits(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), g_busy_waits);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("udpOpen", Napi::Function::New(env, UdpOpen));
  exports.Set("rawOpen", Napi::Function::New(env, RawOpen));
  exports.Set("packetOpen", Napi::Function::New(env, PacketOpen));
  exports.Set("udpSendOpen", Napi::Function::New(env, UdpSendOpen));
  exports.Set("recv", Napi::Function::New(env, Recv));
  exports.Set("send", Napi::Function::New(env, Send));
  exports.Set("wait", Napi::Function::New(env, Wait));
  exports.Set("waitAny", Napi::Function::New(env, WaitAny));
  exports.Set("waitAsync", Napi::Function::New(env, WaitAsync));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("errnoName", Napi::Function::New(env, ErrnoNameJs));
  exports.Set("lastErrno", Napi::Function::New(env, LastErrno));
  exports.Set("busyWaits", Napi::Function::New(env, BusyWaits));
  InitXdp(env, exports);
  InitFastPath(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(mirrorgate_native, Init)
