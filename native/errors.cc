#include "errors.h"

#include <string.h>
#include <uv.h>

#include <string>

namespace ndp {

const char* ErrnoName(int err, char* buf, size_t len) {
  uv_err_name_r(-err, buf, len);
  return buf;
}

Napi::Error SystemError(Napi::Env env, int err, const char* syscall) {
  char name[64];
  ErrnoName(err, name, sizeof name);
  char desc[128];
  // GNU strerror_r returns a pointer that may or may not be `desc`.
  const char* text = strerror_r(err, desc, sizeof desc);
  std::string message = std::string(syscall) + " " + name + " (" + text + ")";
  Napi::Error e = Napi::Error::New(env, message);
  Napi::Object o = e.Value();
  o.Set("code", Napi::String::New(env, name));
  o.Set("errno", Napi::Number::New(env, -err));
  o.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

Napi::Error CodedError(Napi::Env env, const char* code, const char* message, bool type_error) {
  Napi::Error e = type_error ? Napi::TypeError::New(env, message) : Napi::Error::New(env, message);
  e.Value().Set("code", Napi::String::New(env, code));
  return e;
}

}  // namespace ndp
