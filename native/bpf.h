// eBPF without a compiler or libbpf: the bpf(2) syscall and a small assembler with labels, for
// the XDP programs the addon builds instruction by instruction (xdp.cc, fast_path.cc).
#pragma once

#include "common.h"

#include <linux/bpf.h>
#include <sys/syscall.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mg {

inline int Bpf(int cmd, bpf_attr* attr) {
  return static_cast<int>(syscall(__NR_bpf, cmd, attr, sizeof *attr));
}

inline void CopyBpfName(char* to, const char* name) {
  strncpy(to, name, BPF_OBJ_NAME_LEN - 1);
}

// Where a program runs: the XDP hook (struct xdp_md) or tc's ingress (struct __sk_buff).
enum class Hook { kXdp, kTc };

// Little-endian loads see network-order fields byte-swapped; these build the constants to match.
inline int32_t Le16(uint8_t a, uint8_t b) { return a | b << 8; }
inline int32_t Le32(const uint8_t* p) { return static_cast<int32_t>(p[0] | p[1] << 8 | p[2] << 16 | uint32_t(p[3]) << 24); }

// Emits instructions; jumps name a label, patched to its place when the program is finished.
class Program {
 public:
  using Label = size_t;
  static constexpr uint8_t kCtx = 1, kData = 2, kEnd = 3, kFp = 10;

  Label NewLabel() {
    places_.push_back(SIZE_MAX);
    return places_.size() - 1;
  }
  void Place(Label l) { places_[l] = code_.size(); }

  void Ins(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    code_.push_back(i);
  }
  void Mov(uint8_t dst, int32_t imm) { Ins(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
  void MovReg(uint8_t dst, uint8_t src) { Ins(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
  void Alu(uint8_t op, uint8_t dst, int32_t imm) { Ins(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm); }
  void AluReg(uint8_t op, uint8_t dst, uint8_t src) { Ins(BPF_ALU64 | op | BPF_X, dst, src, 0, 0); }
  // A 16-bit network-order field loaded little-endian, as a number (0..65535).
  void Ntohs(uint8_t r) {
    Ins(BPF_ALU | BPF_END | BPF_TO_BE, r, 0, 0, 16);
    Alu(BPF_AND, r, 0xffff);  // bounds the value for the verifier
  }
  void Load(uint8_t size, uint8_t dst, uint8_t base, int16_t off) { Ins(BPF_LDX | BPF_MEM | size, dst, base, off, 0); }
  void Store(uint8_t size, uint8_t base, int16_t off, uint8_t src) { Ins(BPF_STX | BPF_MEM | size, base, src, off, 0); }
  void LoadPacket(uint8_t size, uint8_t dst, int16_t off) { Load(size, dst, kData, off); }
  void StorePacket(uint8_t size, int16_t off, uint8_t src) { Store(size, kData, off, src); }
  // *(u64 *)(base + off) += src, atomically: counters shared by every CPU.
  void AtomicAdd(uint8_t base, int16_t off, uint8_t src) { Ins(BPF_STX | BPF_ATOMIC | BPF_DW, base, src, off, BPF_ADD); }
  // data and data_end of the hook's context (struct xdp_md or struct __sk_buff) kept in `ctx`.
  void LoadPointers(uint8_t ctx, Hook hook = Hook::kXdp) {
    bool xdp = hook == Hook::kXdp;
    Load(BPF_W, kData, ctx, xdp ? offsetof(xdp_md, data) : offsetof(__sk_buff, data));
    Load(BPF_W, kEnd, ctx, xdp ? offsetof(xdp_md, data_end) : offsetof(__sk_buff, data_end));
  }
  void LoadMap(uint8_t dst, int map_fd) {
    Ins(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, map_fd);
    Ins(0, 0, 0, 0, 0);
  }
  void Call(int32_t helper) { Ins(BPF_JMP | BPF_CALL, 0, 0, 0, helper); }
  void Return(int32_t verdict) {
    Mov(0, verdict);
    Ins(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  }
  // Folds a 32-bit one's-complement sum in `r` to 16 bits; `tmp` is clobbered.
  void Fold(uint8_t r, uint8_t tmp) {
    for (int k = 0; k < 2; k++) {
      MovReg(tmp, r);
      Alu(BPF_RSH, tmp, 16);
      Alu(BPF_AND, r, 0xffff);
      AluReg(BPF_ADD, r, tmp);
    }
  }

  // if (r <op> imm) goto to; 32-bit compare unless wide.
  void Jump(uint8_t op, uint8_t r, int32_t imm, Label to, bool wide = true) {
    fixups_.emplace_back(code_.size(), to);
    Ins((wide ? BPF_JMP : BPF_JMP32) | op | BPF_K, r, 0, 0, imm);
  }
  void JumpReg(uint8_t op, uint8_t a, uint8_t b, Label to) {
    fixups_.emplace_back(code_.size(), to);
    Ins(BPF_JMP | op | BPF_X, a, b, 0, 0);
  }
  void Goto(Label to) {
    fixups_.emplace_back(code_.size(), to);
    Ins(BPF_JMP | BPF_JA, 0, 0, 0, 0);
  }

  std::vector<bpf_insn> Finish() {
    for (auto [at, label] : fixups_) code_[at].off = static_cast<int16_t>(places_[label] - at - 1);
    return std::move(code_);
  }

 private:
  std::vector<bpf_insn> code_;
  std::vector<size_t> places_;
  std::vector<std::pair<size_t, Label>> fixups_;
};

// Loads a program; when the verifier refuses it, the error carries the verifier's log.
inline int LoadProgram(Napi::Env env, uint32_t type, const std::vector<bpf_insn>& code, const char* name, uint32_t flags) {
  static const char kLicense[] = "Dual MIT/GPL";
  bpf_attr p{};
  p.prog_type = type;
  p.insns = reinterpret_cast<uint64_t>(code.data());
  p.insn_cnt = static_cast<uint32_t>(code.size());
  p.license = reinterpret_cast<uint64_t>(kLicense);
  p.prog_flags = flags;
  CopyBpfName(p.prog_name, name);
  int fd = Bpf(BPF_PROG_LOAD, &p);
  if (fd >= 0) return fd;
  int err = errno;
  if (err != EACCES && err != EINVAL) ThrowErrno(env, "bpf(BPF_PROG_LOAD)", err);
  std::vector<char> log(64 * 1024);
  p.log_buf = reinterpret_cast<uint64_t>(log.data());
  p.log_size = static_cast<uint32_t>(log.size());
  p.log_level = 1;
  Bpf(BPF_PROG_LOAD, &p);
  Napi::Error e = Napi::Error::New(env, std::string("bpf(BPF_PROG_LOAD): ") + ErrnoName(err) + "\n" + log.data());
  e.Set("syscall", Napi::String::New(env, "bpf(BPF_PROG_LOAD)"));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("errnoName", Napi::String::New(env, ErrnoName(err)));
  throw e;
}

// Attaches a program to a device's hook through a BPF link: it stays attached while the link's
// fd is open, so closing it (or the process ending) detaches it. Returns the fd, or -1 and errno.
inline int CreateLink(int prog_fd, uint32_t ifindex, uint32_t attach_type) {
  bpf_attr l{};
  l.link_create.prog_fd = static_cast<uint32_t>(prog_fd);
  l.link_create.target_ifindex = ifindex;
  l.link_create.attach_type = attach_type;
  return Bpf(BPF_LINK_CREATE, &l);
}

// CreateLink, throwing on failure.
inline int AttachLink(Napi::Env env, int prog_fd, uint32_t ifindex, uint32_t attach_type) {
  int fd = CreateLink(prog_fd, ifindex, attach_type);
  if (fd < 0) ThrowErrno(env, "bpf(BPF_LINK_CREATE)", errno);
  return fd;
}

}  // namespace mg
