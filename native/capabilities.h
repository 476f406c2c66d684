// restrictCapabilities(): see capabilities.cc.
#pragma once

#include <napi.h>

namespace ndp {

/** Add restrictCapabilities to the addon's exports. */
void InitCapabilities(Napi::Env env, Napi::Object exports);

}  // namespace ndp
