// Errors shaped like Node's own system errors: message "SYSCALL CODE (description)",
// and the properties code ('EPERM'), errno (negative, -1 for EPERM, as Node reports it)
// and syscall ('socket').
#pragma once

#include <napi.h>

namespace ndp {

/** Build (do not throw) a system error for `err` (a positive errno) from `syscall`. */
Napi::Error SystemError(Napi::Env env, int err, const char* syscall);

/** Build a TypeError/RangeError-like error with a Node-style `code` ('ERR_INVALID_ARG_TYPE'). */
Napi::Error CodedError(Napi::Env env, const char* code, const char* message, bool type_error);

/** The libuv name of a positive errno ('EAGAIN'), written into `buf`. */
const char* ErrnoName(int err, char* buf, size_t len);

}  // namespace ndp
