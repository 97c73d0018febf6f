# The mirrorgate native addon (batch/raw sockets; see native/mirrorgate_native.cc).
#
# Build it with `npm run install` (i.e. `node-gyp rebuild --directory native`), not with
# `node-gyp rebuild` here: node-gyp always builds into ./build, which is where tsc puts
# the test build. native/binding.gyp includes this file so the addon lands in
# native/build/Release/mirrorgate_native.node. Paths below are relative to this file.
{
  'targets': [
    {
      'target_name': 'mirrorgate_native',
      'sources': ['native/mirrorgate_native.cc', 'native/xdp.cc', 'native/fast_path.cc', 'native/tc_filter.cc'],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # C++ exceptions on: argument errors are thrown as Napi::TypeError and socket
      # creation errors as Napi::Error, with RAII closing half-made sockets.
      'defines': ['NAPI_CPP_EXCEPTIONS', 'NAPI_VERSION=8'],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions'],
      'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-O2'],
    },
  ],
}
