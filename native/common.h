// Helpers shared by the addon's source files: errno names and errors thrown to JS, fd guards, and
// argument checks that throw TypeError before any syscall is made.
#pragma once

#include <napi.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace mg {

inline std::string ErrnoName(int e) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* name = strerrorname_np(e)) return name;
#else
  switch (e) {
#define MG_ERRNO(n) case n: return #n;
    MG_ERRNO(EPERM) MG_ERRNO(EACCES) MG_ERRNO(EADDRINUSE) MG_ERRNO(EADDRNOTAVAIL)
    MG_ERRNO(EAFNOSUPPORT) MG_ERRNO(EAGAIN) MG_ERRNO(EBADF) MG_ERRNO(EINVAL)
    MG_ERRNO(EMSGSIZE) MG_ERRNO(ENOBUFS) MG_ERRNO(ENOMEM) MG_ERRNO(EMFILE)
    MG_ERRNO(ENFILE) MG_ERRNO(ENETUNREACH) MG_ERRNO(EHOSTUNREACH) MG_ERRNO(ECONNREFUSED)
    MG_ERRNO(EPROTONOSUPPORT) MG_ERRNO(ENOPROTOOPT) MG_ERRNO(EINTR)
#undef MG_ERRNO
  }
#endif
  return "E" + std::to_string(e);
}

// Thrown by the open functions; TS recognises it by its errnoName property.
[[noreturn]] inline void ThrowErrno(Napi::Env env, const char* syscall, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + ErrnoName(err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("errnoName", Napi::String::New(env, ErrnoName(err)));
  throw e;
}

[[noreturn]] inline void ThrowType(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

// Closes the fd unless release()d, so a failed setsockopt/bind does not leak it.
struct FdGuard {
  int fd;
  ~FdGuard() { if (fd >= 0) ::close(fd); }
  int release() { int f = fd; fd = -1; return f; }
};

inline uint32_t U32Arg(const Napi::CallbackInfo& info, size_t i, const char* name, double max) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) ThrowType(info.Env(), std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= max) || d != static_cast<double>(static_cast<uint64_t>(d)))
    ThrowType(info.Env(), std::string(name) + " must be an integer in 0.." + std::to_string(uint64_t(max)));
  return static_cast<uint32_t>(d);
}

inline int FdArg(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<int>(U32Arg(info, i, "fd", INT32_MAX));
}

inline std::string StrArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsString()) ThrowType(info.Env(), std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

// Memory of an ArrayBuffer or typed array (including SharedArrayBuffer-backed ones).
// `type` restricts typed arrays to one element type; `need` is the minimum element count.
// Returns nullptr for null/undefined when `optional`; stores the element count in *len.
template <typename T>
T* ArrayArg(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type type,
            const char* type_name, uint64_t need, bool optional = false, size_t* len = nullptr) {
  napi_env env = info.Env();
  napi_value v = info[i];
  if (optional && (info[i].IsNull() || info[i].IsUndefined())) return nullptr;
  void* data = nullptr;
  size_t count = 0;
  bool ok = false;
  if (info[i].IsTypedArray()) {
    napi_typedarray_type t;
    ok = napi_get_typedarray_info(env, v, &t, &count, &data, nullptr, nullptr) == napi_ok && t == type;
  } else if (type == napi_uint8_array && info[i].IsArrayBuffer()) {
    ok = napi_get_arraybuffer_info(env, v, &data, &count) == napi_ok;
  }
  if (!ok) ThrowType(info.Env(), std::string(name) + " must be a " + type_name);
  if (count < need)
    ThrowType(info.Env(), std::string(name) + " too small: " + std::to_string(count) + " < " + std::to_string(need));
  if (len) *len = count;
  return static_cast<T*>(data);
}

// XDP ingress (xdp.cc): adds its functions to the exports.
void InitXdp(Napi::Env env, Napi::Object exports);
// The XDP fast path (fast_path.cc): its maps.
void InitFastPath(Napi::Env env, Napi::Object exports);

}  // namespace mg
