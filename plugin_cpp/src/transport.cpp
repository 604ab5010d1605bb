#include "transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <stdexcept>

namespace vinpaint::net {

namespace {
std::mutex g_contextMutex;
std::unique_ptr<zmq::context_t> g_context;

// A ZeroMQ certificate file (what `vinpaint serve --make-keys` writes) holds lines such as
//     public-key = "<40 chars of Z85>"
//     secret-key = "<40 chars of Z85>"
std::string keyFromCertificate(const std::string &path, const std::string &which) {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        const auto k = line.find(which);
        if (k == std::string::npos) continue;
        const auto q = line.find('"', k);
        const auto e = q == std::string::npos ? q : line.find('"', q + 1);
        if (e != std::string::npos && e - q - 1 == 40) return line.substr(q + 1, 40);
    }
    return {};
}

std::string env(const char *name) {
    const char *v = std::getenv(name);
    return v ? v : "";
}
}  // namespace

zmq::context_t &context() {
    std::lock_guard<std::mutex> lock(g_contextMutex);
    if (!g_context) g_context = std::make_unique<zmq::context_t>(1);
    return *g_context;
}

void shutdownContext() noexcept {
    std::unique_ptr<zmq::context_t> ctx;
    {
        std::lock_guard<std::mutex> lock(g_contextMutex);
        ctx = std::move(g_context);
    }
    if (!ctx) return;
    try {
        ctx->shutdown();  // wakes any blocking call with ETERM; sockets all have LINGER 0
        ctx->close();
    } catch (...) {
    }
}

CurveKeys CurveKeys::fromEnvironment() {
    CurveKeys k;
    k.serverPublic = env("VINPAINT_CURVE_SERVER_KEY");
    if (k.serverPublic.empty() && !env("VINPAINT_SERVER_KEY_FILE").empty())
        k.serverPublic = keyFromCertificate(env("VINPAINT_SERVER_KEY_FILE"), "public-key");
    k.clientPublic = env("VINPAINT_CURVE_PUBLIC_KEY");
    k.clientSecret = env("VINPAINT_CURVE_SECRET_KEY");
    if (k.clientSecret.empty() && !env("VINPAINT_CLIENT_KEY_FILE").empty()) {
        k.clientPublic = keyFromCertificate(env("VINPAINT_CLIENT_KEY_FILE"), "public-key");
        k.clientSecret = keyFromCertificate(env("VINPAINT_CLIENT_KEY_FILE"), "secret-key");
    }
    return k;
}

bool isLocalEndpoint(const std::string &e) {
    if (e.rfind("ipc://", 0) == 0 || e.rfind("inproc://", 0) == 0) return true;
    if (e.rfind("tcp://", 0) != 0) return false;
    std::string host = e.substr(6);
    if (!host.empty() && host[0] == '[') {
        auto end = host.find(']');
        return end != std::string::npos && host.substr(1, end - 1) == "::1";
    }
    host = host.substr(0, host.rfind(':'));
    if (host == "localhost") return true;
    // An IPv4 address in 127.0.0.0/8, as the C library reads one: a name such as 127.example.com is not loopback,
    // whatever it starts with.
    in_addr address{};
    return inet_pton(AF_INET, host.c_str(), &address) == 1 && (ntohl(address.s_addr) >> 24) == 127;
}

std::string tcpAddressProblem(const std::string &e) {
    if (e.rfind("tcp://", 0) != 0) return {};
    const std::string rest = e.substr(6);
    const std::size_t colon = rest.rfind(':');
    const std::size_t bracket = rest[0] == '[' ? rest.find(']') : std::string::npos;  // [IPv6]:PORT
    if (colon == std::string::npos || (rest[0] == '[' && (bracket == std::string::npos || colon < bracket)))
        return "it has no port (tcp://HOST:PORT, e.g. tcp://127.0.0.1:5581)";
    if (colon == 0) return "it has no host (tcp://HOST:PORT, e.g. tcp://127.0.0.1:5581)";
    const std::string port = rest.substr(colon + 1);
    const bool digits = !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535)
        return "its port '" + port + "' is not a number from 1 to 65535";
    return {};
}

Connection::Connection(const std::string &endpoint, const CurveKeys &keys) : endpoint_(endpoint) {
    socket_ = std::make_unique<zmq::socket_t>(context(), zmq::socket_type::dealer);
    socket_->set(zmq::sockopt::linger, 0);
    socket_->set(zmq::sockopt::immediate, 1);
    socket_->set(zmq::sockopt::reconnect_ivl, 100);
    socket_->set(zmq::sockopt::reconnect_ivl_max, 1000);
    // No frame larger than any job's can arrive: libzmq drops such a peer instead of buffering what it claims.
    socket_->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(proto::kMaxFrameBytes));
    if (!keys.empty()) {
        try {
            socket_->set(zmq::sockopt::curve_serverkey, keys.serverPublic);
            socket_->set(zmq::sockopt::curve_publickey, keys.clientPublic);
            socket_->set(zmq::sockopt::curve_secretkey, keys.clientSecret);
        } catch (const zmq::error_t &e) {
            close();
            throw std::invalid_argument(std::string("the CurveZMQ keys could not be used (") + e.what() +
                                        "); check VINPAINT_CURVE_* (40-char Z85 keys)");
        }
    }
    static std::atomic<unsigned long long> monitors{0};
    const std::string monitorAddress = "inproc://vinpaint-monitor-" + std::to_string(++monitors);
    if (zmq_socket_monitor(socket_->handle(), monitorAddress.c_str(), ZMQ_EVENT_CONNECTED) == 0) {
        try {
            monitor_ = std::make_unique<zmq::socket_t>(context(), zmq::socket_type::pair);
            monitor_->set(zmq::sockopt::linger, 0);
            monitor_->connect(monitorAddress);
        } catch (const zmq::error_t &) {
            monitor_.reset();  // only a message's wording depends on it
        }
    }
    try {
        socket_->connect(endpoint);
    } catch (const zmq::error_t &e) {
        close();
        throw std::invalid_argument("'" + endpoint + "' is not a daemon address ZeroMQ accepts (" + e.what() +
                                    "); use e.g. tcp://127.0.0.1:5581");
    }
}

void Connection::close() noexcept {
    if (!socket_) return;
    try {
        if (monitor_) {
            zmq_socket_monitor(socket_->handle(), nullptr, 0);
            monitor_->close();
        }
        socket_->close();
    } catch (...) {
    }
    monitor_.reset();
    socket_.reset();
}

bool Connection::transportAccepted() {
    // Each event is two frames: 6 bytes (event id, value) and the address.
    while (monitor_ && !accepted_) {
        zmq::message_t event, address;
        try {
            if (!monitor_->recv(event, zmq::recv_flags::dontwait)) break;
            if (event.more()) (void)monitor_->recv(address, zmq::recv_flags::dontwait);
        } catch (const zmq::error_t &) {
            break;
        }
        std::uint16_t id = 0;
        if (event.size() >= sizeof id) std::memcpy(&id, event.data(), sizeof id);
        if (id == ZMQ_EVENT_CONNECTED) accepted_ = true;
    }
    return accepted_;
}

WaitResult Connection::waitFor(short events, Millis timeout, const CancelFn &cancel) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (cancel && cancel()) return WaitResult::Cancelled;
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return WaitResult::Timeout;
        const auto left = std::chrono::duration_cast<Millis>(deadline - now);
        zmq::pollitem_t item{socket_->handle(), 0, events, 0};
        const auto slice = std::min<Millis>(left, Millis(50));
        if (zmq::poll(&item, 1, slice) > 0 && (item.revents & events)) return WaitResult::Ok;
    }
}

WaitResult Connection::send(OutMessage &&msg, Millis timeout, const CancelFn &cancel) {
    if (!socket_) throw std::logic_error("send on a closed connection");
    WaitResult w = waitFor(ZMQ_POLLOUT, timeout, cancel);
    if (w != WaitResult::Ok) return w;
    everConnected_ = true;
    const bool more = !msg.buffers.empty();
    zmq::message_t header(msg.header.data(), msg.header.size());
    // Writable was just signalled and nothing else uses this socket, so dontwait only fails on real errors or
    // a lost connection (then the reply wait times out like any other silence).
    if (!socket_->send(header, more ? zmq::send_flags::sndmore | zmq::send_flags::dontwait : zmq::send_flags::dontwait))
        return WaitResult::Timeout;
    for (std::size_t i = 0; i < msg.buffers.size(); ++i) {
        const bool last = i + 1 == msg.buffers.size();
        auto flags = last ? zmq::send_flags::none : zmq::send_flags::sndmore;
        // Later parts of a multipart message are never refused once the first part went in.
        socket_->send(msg.buffers[i], flags);
    }
    return WaitResult::Ok;
}

WaitResult Connection::receive(InMessage &out, Millis timeout, const CancelFn &cancel) {
    if (!socket_) throw std::logic_error("receive on a closed connection");
    WaitResult w = waitFor(ZMQ_POLLIN, timeout, cancel);
    if (w != WaitResult::Ok) return w;
    out.frames.clear();
    for (;;) {
        zmq::message_t part;
        if (!socket_->recv(part, zmq::recv_flags::dontwait)) return WaitResult::Timeout;
        const bool more = part.more();
        out.frames.push_back(std::move(part));
        if (!more) break;
    }
    std::vector<proto::FrameRef> refs;
    refs.reserve(out.frames.size());
    for (auto &f : out.frames) refs.push_back(proto::FrameRef{f.data(), f.size()});
    out.reply = proto::decodeReply(refs, proto::kMaxNodeReplyHeaderBytes);
    return WaitResult::Ok;
}

std::string nextRequestId() {
    static std::atomic<unsigned long long> counter{0};
    return "ofx-" + std::to_string(static_cast<long>(::getpid())) + "-" + std::to_string(++counter);
}

}  // namespace vinpaint::net
