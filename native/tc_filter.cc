// The clsact filter behind tc_filter.h, over rtnetlink: one request at a time on a socket of its
// own, each answered by the kernel's ack (or, for a get, the filter), as `tc` itself does.

#include "tc_filter.h"

#include "bpf.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace mg {

namespace {

constexpr uint32_t kClsactIngress = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS);
// Our filter's priority and protocol (every frame: the program checks what it takes).
const uint32_t kFilterInfo = TC_H_MAKE(kTcFilterPref << 16, htons(ETH_P_ALL));

// One request: the netlink header, the tc message, and attributes (nests included).
class Request {
 public:
  Request(uint16_t type, uint16_t flags, uint32_t ifindex, uint32_t parent, uint32_t handle, uint32_t info) {
    h_ = reinterpret_cast<nlmsghdr*>(buf_);
    h_->nlmsg_len = NLMSG_LENGTH(sizeof(tcmsg));
    h_->nlmsg_type = type;
    h_->nlmsg_flags = NLM_F_REQUEST | flags;
    tcmsg* t = static_cast<tcmsg*>(NLMSG_DATA(h_));
    t->tcm_family = AF_UNSPEC;
    t->tcm_ifindex = static_cast<int>(ifindex);
    t->tcm_parent = parent;
    t->tcm_handle = handle;
    t->tcm_info = info;
  }

  void Attr(uint16_t type, const void* data, size_t len) {
    rtattr* a = reinterpret_cast<rtattr*>(buf_ + NLMSG_ALIGN(h_->nlmsg_len));
    a->rta_type = type;
    a->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    if (len) memcpy(RTA_DATA(a), data, len);
    h_->nlmsg_len = NLMSG_ALIGN(h_->nlmsg_len) + RTA_ALIGN(a->rta_len);
  }
  void Attr(uint16_t type, const char* text) { Attr(type, text, strlen(text) + 1); }
  void Attr(uint16_t type, uint32_t v) { Attr(type, &v, sizeof v); }

  // Attributes added until End(nest) go inside the nest.
  rtattr* Begin(uint16_t type) {
    rtattr* a = reinterpret_cast<rtattr*>(buf_ + NLMSG_ALIGN(h_->nlmsg_len));
    Attr(type, nullptr, 0);
    return a;
  }
  void End(rtattr* nest) { nest->rta_len = static_cast<uint16_t>(buf_ + h_->nlmsg_len - reinterpret_cast<char*>(nest)); }

  nlmsghdr* header() { return h_; }

 private:
  alignas(NLMSG_ALIGNTO) char buf_[512] = {};
  nlmsghdr* h_;
};

[[noreturn]] void ThrowNetlink(Napi::Env env, const char* what, int err, const std::string& detail) {
  std::string message = std::string(what) + ": " + ErrnoName(err);
  if (!detail.empty()) message += " (" + detail + ")";
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("syscall", Napi::String::New(env, what));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("errnoName", Napi::String::New(env, ErrnoName(err)));
  throw e;
}

// The kernel's extended ack text after an error, when it sent one (NETLINK_CAP_ACK: no copy of
// the request precedes it).
std::string ExtAck(const nlmsghdr* h) {
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  const char* at = static_cast<const char*>(NLMSG_DATA(h)) + sizeof(nlmsgerr);
  int left = static_cast<int>(h->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(sizeof(nlmsgerr)));
  for (const nlattr* a = reinterpret_cast<const nlattr*>(at); left >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= left;
       left -= NLA_ALIGN(a->nla_len), a = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(a) + NLA_ALIGN(a->nla_len))) {
    if (a->nla_type == NLMSGERR_ATTR_MSG && a->nla_len > NLA_HDRLEN)
      return std::string(reinterpret_cast<const char*>(a) + NLA_HDRLEN, strnlen(reinterpret_cast<const char*>(a) + NLA_HDRLEN, a->nla_len - NLA_HDRLEN));
  }
  return "";
}

// The kernel's answer to a request: 0 (acked), -errno (refused, with its reason in `why` when
// it gave one), or, for a get, 1 with the reply (its first `size` bytes) in `reply`. Throws
// only when the socket itself fails.
int Transact(Napi::Env env, const char* what, Request& r, std::string& why, char* reply = nullptr, size_t size = 0) {
  FdGuard s{socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)};
  if (s.fd < 0) ThrowErrno(env, "socket(AF_NETLINK)", errno);
  int on = 1;
  setsockopt(s.fd, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on);
  setsockopt(s.fd, SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof on);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  nlmsghdr* h = r.header();
  h->nlmsg_seq = 1;
  if (sendto(s.fd, h, h->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) ThrowErrno(env, what, errno);
  alignas(NLMSG_ALIGNTO) char buf[8192];
  for (;;) {
    ssize_t n = recv(s.fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(env, what, errno);
    }
    int left = static_cast<int>(n);
    for (nlmsghdr* m = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(m, left); m = NLMSG_NEXT(m, left)) {
      if (m->nlmsg_seq != 1) continue;
      if (m->nlmsg_type == NLMSG_ERROR) {
        why = ExtAck(m);
        return static_cast<nlmsgerr*>(NLMSG_DATA(m))->error;
      }
      if (reply && m->nlmsg_type == RTM_NEWTFILTER) {
        memcpy(reply, m, std::min<size_t>(m->nlmsg_len, size));
        return 1;
      }
    }
  }
}

// The id of the program in our filter's options (TCA_OPTIONS → TCA_BPF_ID), 0 if none.
uint32_t FilterProgramId(const nlmsghdr* m, size_t size) {
  int left = static_cast<int>(std::min<size_t>(m->nlmsg_len, size)) - static_cast<int>(NLMSG_LENGTH(sizeof(tcmsg)));
  for (const rtattr* a = reinterpret_cast<const rtattr*>(static_cast<const char*>(NLMSG_DATA(m)) + NLMSG_ALIGN(sizeof(tcmsg)));
       RTA_OK(a, left); a = RTA_NEXT(a, left)) {
    if (a->rta_type != TCA_OPTIONS) continue;
    int inner = static_cast<int>(RTA_PAYLOAD(a));
    for (const rtattr* o = static_cast<const rtattr*>(RTA_DATA(a)); RTA_OK(o, inner); o = RTA_NEXT(o, inner)) {
      if (o->rta_type == TCA_BPF_ID && RTA_PAYLOAD(o) >= 4) return *static_cast<const uint32_t*>(RTA_DATA(o));
    }
  }
  return 0;
}

uint32_t ProgramId(Napi::Env env, int prog_fd) {
  bpf_prog_info info{};
  bpf_attr a{};
  a.info.bpf_fd = static_cast<uint32_t>(prog_fd);
  a.info.info_len = sizeof info;
  a.info.info = reinterpret_cast<uint64_t>(&info);
  if (Bpf(BPF_OBJ_GET_INFO_BY_FD, &a) < 0) ThrowErrno(env, "bpf(BPF_OBJ_GET_INFO_BY_FD)", errno);
  return info.id;
}

}  // namespace

void AttachTcFilter(Napi::Env env, uint32_t ifindex, int prog_fd, const char* name) {
  // The qdisc may be there already (ours from before, or another tool's): that is fine.
  const char* what = "netlink(RTM_NEWQDISC clsact)";
  std::string why;
  Request q(RTM_NEWQDISC, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, ifindex, TC_H_CLSACT, TC_H_MAKE(TC_H_CLSACT, 0), 0);
  q.Attr(TCA_KIND, "clsact");
  int err = Transact(env, what, q, why);
  if (err != 0 && err != -EEXIST) ThrowNetlink(env, what, -err, why);

  Request f(RTM_NEWTFILTER, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, ifindex, kClsactIngress, kTcFilterHandle, kFilterInfo);
  f.Attr(TCA_KIND, "bpf");
  rtattr* options = f.Begin(TCA_OPTIONS);
  f.Attr(TCA_BPF_FD, static_cast<uint32_t>(prog_fd));
  f.Attr(TCA_BPF_NAME, name);
  f.Attr(TCA_BPF_FLAGS, static_cast<uint32_t>(TCA_BPF_FLAG_ACT_DIRECT));
  f.End(options);
  what = "netlink(RTM_NEWTFILTER bpf)";
  err = Transact(env, what, f, why);
  if (err != 0) ThrowNetlink(env, what, -err, why);
}

bool DetachTcFilter(Napi::Env env, uint32_t ifindex, int prog_fd) {
  uint32_t ours = ProgramId(env, prog_fd);
  Request get(RTM_GETTFILTER, 0, ifindex, kClsactIngress, kTcFilterHandle, kFilterInfo);
  get.Attr(TCA_KIND, "bpf");
  alignas(NLMSG_ALIGNTO) char reply[4096];
  std::string why;
  // Refused (no such filter, qdisc or device): it is gone already.
  if (Transact(env, "netlink(RTM_GETTFILTER bpf)", get, why, reply, sizeof reply) != 1) return false;
  if (FilterProgramId(reinterpret_cast<nlmsghdr*>(reply), sizeof reply) != ours) return false;
  const char* what = "netlink(RTM_DELTFILTER bpf)";
  Request del(RTM_DELTFILTER, NLM_F_ACK, ifindex, kClsactIngress, kTcFilterHandle, kFilterInfo);
  del.Attr(TCA_KIND, "bpf");
  int err = Transact(env, what, del, why);
  if (err != 0 && err != -ENOENT && err != -ENODEV) ThrowNetlink(env, what, -err, why);
  return err == 0;
}

}  // namespace mg
