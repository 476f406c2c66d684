{
  # ndp_native: the AF_PACKET socket (native/packet-socket.cc) and the capability drop
  # (native/capabilities.cc). Built by `npm run build:native`
  # (node-gyp rebuild); loaded by src/io/afpacket.ts from build/Release/ndp_native.node.
  "targets": [
    {
      "target_name": "ndp_native",
      "sources": ["native/addon.cc", "native/packet-socket.cc", "native/capabilities.cc", "native/errors.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS"
      ],
      "cflags!": ["-fexceptions", "-O3"],
      "cflags_cc!": ["-fexceptions", "-O3"],
      "cflags": ["-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-O2", "-fno-exceptions", "-fvisibility=hidden", "-std=c++17"]
    }
  ]
}
