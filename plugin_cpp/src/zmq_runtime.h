// ZeroMQ is opened at run time (dlopen), not linked. A bundle linked to libzmq.so.5 is skipped by the host without
// a word on a machine that lacks it (a render-farm node) or whose host process already holds an older libstdc++
// than libzmq needs: the artist never sees the node. Opened at run time, the node always loads, and its first
// connection says what is missing and how to fix it. zmq_runtime.cpp defines the zmq_* functions the plugin uses
// and forwards each to the library it found.
#pragma once

#include <string>

namespace vinpaint::net {

struct ZmqLibrary {
    bool loaded = false;
    std::string error;  // why none could be opened: the whole sentence for the artist
};

// Where it is looked for, first match wins:
//   0. a libzmq.so.5 the host process has loaded already (two copies in one process would call into each other);
//   1. VINPAINT_LIBZMQ, a path (then only that file);
//   2. the bundle's own copy, Contents/<arch>/lib/libzmq.so.5, with the libraries it needs beside it (bundled by
//      `cmake -DVINPAINT_BUNDLE_LIBZMQ=ON`, or plugin_cpp/bundle_libzmq.cmake on a built bundle);
//   3. the system's libzmq.so.5 (the loader's search path, LD_LIBRARY_PATH included).
// Looked up once, on first use; thread-safe.
const ZmqLibrary &zmqLibrary();

}  // namespace vinpaint::net
