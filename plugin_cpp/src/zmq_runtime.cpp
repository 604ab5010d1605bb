#include "zmq_runtime.h"

#include <dlfcn.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <vector>

#include <zmq.h>

namespace vinpaint::net {

namespace {

// The errno our stand-ins report when no libzmq could be opened; zmq_strerror turns it into the library's error.
constexpr int kNoLibzmq = ELIBACC;

// Every zmq_* function the plugin calls, once: the Api's pointers and the lookups are made from this list. A new
// call elsewhere fails the bundle's link (-z defs) until it is added here and given a stand-in below.
#define VINPAINT_ZMQ_CALLS(X)                                                                                    \
    X(zmq_ctx_new) X(zmq_ctx_term) X(zmq_ctx_shutdown) X(zmq_ctx_set) X(zmq_socket) X(zmq_close)                  \
    X(zmq_setsockopt) X(zmq_connect) X(zmq_socket_monitor) X(zmq_msg_init) X(zmq_msg_init_size) X(zmq_msg_close)  \
    X(zmq_msg_data) X(zmq_msg_size) X(zmq_msg_more) X(zmq_msg_send) X(zmq_msg_recv) X(zmq_poll) X(zmq_errno)      \
    X(zmq_strerror) X(zmq_version)

struct Api {
#define VINPAINT_ZMQ_POINTER(name) decltype(&::name) name;
    VINPAINT_ZMQ_CALLS(VINPAINT_ZMQ_POINTER)
#undef VINPAINT_ZMQ_POINTER
};

Api g_api{};
ZmqLibrary g_library;
std::once_flag g_once;

template <class F>
void bind(void *handle, const char *name, F &slot, std::string &missing) {
    slot = reinterpret_cast<F>(dlsym(handle, name));
    if (!slot) missing += std::string(missing.empty() ? "" : ", ") + name;
}

// Opens one candidate; on success fills g_api and g_library. `why` gets the reason it could not be used.
bool tryOpen(const std::string &file, std::string &why) {
    dlerror();
    void *handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *e = dlerror();
        why = e ? e : (file + ": cannot be opened");
        return false;
    }
    Api api{};
    std::string missing;
#define VINPAINT_ZMQ_BIND(name) bind(handle, #name, api.name, missing);
    VINPAINT_ZMQ_CALLS(VINPAINT_ZMQ_BIND)
#undef VINPAINT_ZMQ_BIND
    if (!missing.empty()) {
        why = file + " is not a usable libzmq (it lacks " + missing + ")";
        dlclose(handle);
        return false;
    }
    int major = 0, minor = 0, patch = 0;
    api.zmq_version(&major, &minor, &patch);
    const std::string version = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
    if (major < 4) {  // CurveZMQ, ZMQ_IMMEDIATE and the 4.x monitor events
        why = file + " is libzmq " + version + "; the node needs 4.0 or newer";
        dlclose(handle);
        return false;
    }
    // Kept open for the life of the process: libzmq's I/O threads must never outlive their code.
    g_api = api;
    g_library.loaded = true;
    return true;
}

// The folder holding this plugin binary (Contents/<arch>/ in a bundle).
std::filesystem::path ownFolder() {
    Dl_info info{};
    if (!dladdr(reinterpret_cast<void *>(&ownFolder), &info) || !info.dli_fname) return {};
    std::error_code ec;
    const auto self = std::filesystem::canonical(info.dli_fname, ec);
    return ec ? std::filesystem::path() : self.parent_path();
}

// The bundled copy's own dependencies, opened by path before it so that its soname lookups find them: leaves
// first, in the order bundle_libzmq.cmake wrote to load-order.txt (a library opened before its own dependencies
// would bind to the system's copies of them). A library the process already holds under that soname (the host's
// Kerberos, say) is used as it is: a second copy beside it would be bound to half the time.
void preloadBeside(const std::filesystem::path &folder) {
    std::ifstream order(folder / "load-order.txt");
    for (std::string name; std::getline(order, name);) {
        if (name.empty() || name == "libzmq.so.5" || name.find('/') != std::string::npos) continue;
        if (void *held = dlopen(name.c_str(), RTLD_NOW | RTLD_NOLOAD)) {
            dlclose(held);  // only the reference NOLOAD added
            continue;
        }
        dlopen((folder / name).c_str(), RTLD_NOW | RTLD_LOCAL);  // a failure shows when libzmq itself is opened
    }
}

// A libzmq the host process has loaded already (its own, or a Python module's under the same soname) is the one
// to use: a second copy's internal calls would bind to the first one's functions.
bool useLoaded(std::string &why) {
    void *held = dlopen("libzmq.so.5", RTLD_NOW | RTLD_NOLOAD);
    if (!held) return false;
    dlclose(held);
    return tryOpen("libzmq.so.5", why);
}

void locate() {
    std::string why;
    if (useLoaded(why)) return;
    const char *named = std::getenv("VINPAINT_LIBZMQ");
    if (named && *named) {
        if (tryOpen(named, why)) return;
        g_library.error = "vinpaint: ZeroMQ could not be loaded from VINPAINT_LIBZMQ=" + std::string(named) + " (" +
                          why + "), so the node cannot reach its daemon. Point VINPAINT_LIBZMQ at a libzmq.so.5 "
                          "(4.0 or newer), or unset it to use the system's";
        return;
    }
    std::vector<std::string> reasons;
    const std::filesystem::path own = ownFolder();
    std::error_code ec;
    if (!own.empty() && std::filesystem::is_regular_file(own / "lib" / "libzmq.so.5", ec)) {
        preloadBeside(own / "lib");
        if (tryOpen((own / "lib" / "libzmq.so.5").string(), why)) return;
        reasons.push_back("the bundle's copy: " + why);
    }
    if (tryOpen("libzmq.so.5", why)) return;
    reasons.push_back(why);
    std::string all;
    for (const auto &r : reasons) all += (all.empty() ? "" : "; ") + r;
    g_library.error = "vinpaint: ZeroMQ (libzmq.so.5) could not be loaded, so the node cannot reach its daemon (" +
                      all + "). Install it (Debian/Ubuntu: apt install libzmq5; RHEL/Rocky: dnf install zeromq), "
                      "set VINPAINT_LIBZMQ to its path, or build the bundle with -DVINPAINT_BUNDLE_LIBZMQ=ON "
                      "(docs/plugin.md)";
}

const Api *api() {
    const ZmqLibrary &lib = zmqLibrary();
    if (lib.loaded) return &g_api;
    errno = kNoLibzmq;
    return nullptr;
}

}  // namespace

const ZmqLibrary &zmqLibrary() {
    std::call_once(g_once, locate);
    return g_library;
}

}  // namespace vinpaint::net

// The stand-ins: each forwards to the opened library, or fails as libzmq would, with errno kNoLibzmq. They are
// not exported (exports.map keeps only the two OFX entry points).
using vinpaint::net::api;

extern "C" {

void *zmq_ctx_new(void) { return api() ? api()->zmq_ctx_new() : nullptr; }
int zmq_ctx_term(void *c) { return api() ? api()->zmq_ctx_term(c) : -1; }
int zmq_ctx_shutdown(void *c) { return api() ? api()->zmq_ctx_shutdown(c) : -1; }
int zmq_ctx_set(void *c, int option, int value) { return api() ? api()->zmq_ctx_set(c, option, value) : -1; }
void *zmq_socket(void *c, int type) { return api() ? api()->zmq_socket(c, type) : nullptr; }
int zmq_close(void *s) { return api() ? api()->zmq_close(s) : -1; }
int zmq_setsockopt(void *s, int option, const void *value, size_t size) {
    return api() ? api()->zmq_setsockopt(s, option, value, size) : -1;
}
int zmq_connect(void *s, const char *address) { return api() ? api()->zmq_connect(s, address) : -1; }
int zmq_socket_monitor(void *s, const char *address, int events) {
    return api() ? api()->zmq_socket_monitor(s, address, events) : -1;
}
int zmq_msg_init(zmq_msg_t *m) { return api() ? api()->zmq_msg_init(m) : -1; }
int zmq_msg_init_size(zmq_msg_t *m, size_t size) { return api() ? api()->zmq_msg_init_size(m, size) : -1; }
int zmq_msg_close(zmq_msg_t *m) { return api() ? api()->zmq_msg_close(m) : -1; }
void *zmq_msg_data(zmq_msg_t *m) { return api() ? api()->zmq_msg_data(m) : nullptr; }
size_t zmq_msg_size(const zmq_msg_t *m) { return api() ? api()->zmq_msg_size(m) : 0; }
int zmq_msg_more(const zmq_msg_t *m) { return api() ? api()->zmq_msg_more(m) : 0; }
int zmq_msg_send(zmq_msg_t *m, void *s, int flags) { return api() ? api()->zmq_msg_send(m, s, flags) : -1; }
int zmq_msg_recv(zmq_msg_t *m, void *s, int flags) { return api() ? api()->zmq_msg_recv(m, s, flags) : -1; }
int zmq_poll(zmq_pollitem_t *items, int count, long timeout) {
    return api() ? api()->zmq_poll(items, count, timeout) : -1;
}
int zmq_errno(void) { return api() ? api()->zmq_errno() : vinpaint::net::kNoLibzmq; }
const char *zmq_strerror(int error) {
    if (api()) return api()->zmq_strerror(error);
    return error == vinpaint::net::kNoLibzmq ? vinpaint::net::zmqLibrary().error.c_str() : std::strerror(error);
}

}  // extern "C"
