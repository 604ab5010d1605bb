// ZeroMQ for a host process: one lazily made context for the plugin, terminated in the Unload action, and a
// DEALER socket per call (sockets are not thread-safe and hosts render on many threads). LINGER 0, ZMQ_IMMEDIATE
// (nothing is queued until the daemon is really connected, so "nobody there" and "no answer" are told apart),
// and every wait is bounded and polls a cancel callback. Expected conditions (a timeout, a cancel) are return
// values; only real errors throw.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "codec.h"

namespace vinpaint::net {

using Millis = std::chrono::milliseconds;
using CancelFn = std::function<bool()>;  // true = give up now

// The plugin's context; made on first use. Thread-safe.
zmq::context_t &context();
// Terminates the context (Unload). Safe to call twice; a later context() makes a new one.
void shutdownContext() noexcept;

// CurveZMQ keys (Z85 text, 40 chars each) for a daemon that is not on loopback (SPEC.md section 1).
struct CurveKeys {
    std::string serverPublic, clientPublic, clientSecret;
    bool empty() const { return serverPublic.empty(); }
    // VINPAINT_SERVER_KEY_FILE (the daemon's server.key) and VINPAINT_CLIENT_KEY_FILE (a client.key_secret
    // certificate from `vinpaint serve --make-keys`), or the Z85 keys themselves in VINPAINT_CURVE_SERVER_KEY,
    // VINPAINT_CURVE_PUBLIC_KEY and VINPAINT_CURVE_SECRET_KEY.
    static CurveKeys fromEnvironment();
};

// True for endpoints the spec lets through without CurveZMQ (loopback tcp, ipc).
bool isLocalEndpoint(const std::string &endpoint);
// What is wrong with a tcp:// address's host and port, in words; empty when nothing is (or it is not tcp://).
std::string tcpAddressProblem(const std::string &endpoint);

struct OutMessage {
    std::string header;
    std::vector<zmq::message_t> buffers;
};

// A received reply: the frames, and the decoded envelope pointing into them.
struct InMessage {
    std::vector<zmq::message_t> frames;
    proto::Reply reply;
};

enum class WaitResult { Ok, Timeout, Cancelled };

class Connection {
public:
    // Throws std::invalid_argument for an endpoint ZeroMQ refuses (the text says which).
    explicit Connection(const std::string &endpoint, const CurveKeys &keys = CurveKeys::fromEnvironment());
    ~Connection() noexcept { close(); }
    Connection(const Connection &) = delete;
    Connection &operator=(const Connection &) = delete;
    Connection(Connection &&) noexcept = default;
    Connection &operator=(Connection &&) noexcept = default;

    void close() noexcept;
    const std::string &endpoint() const { return endpoint_; }
    // True once any message could be handed to a connected daemon.
    bool everConnected() const { return everConnected_; }
    // True once something at the address accepted the TCP connection, whether or not it then spoke ZeroMQ: a
    // stopped or frozen daemon (its kernel still accepts), another program on the port, or a CurveZMQ handshake
    // the daemon refused. Read from a socket monitor; false when monitoring is unavailable.
    bool transportAccepted();

    // Queues the message for the daemon. Timeout: no connected daemon took it in time.
    WaitResult send(OutMessage &&msg, Millis timeout, const CancelFn &cancel);
    // The next complete reply. Malformed replies throw proto::ProtocolError.
    WaitResult receive(InMessage &out, Millis timeout, const CancelFn &cancel);

private:
    WaitResult waitFor(short events, Millis timeout, const CancelFn &cancel);
    std::string endpoint_;
    std::unique_ptr<zmq::socket_t> socket_;
    std::unique_ptr<zmq::socket_t> monitor_;  // PAIR socket receiving socket_'s connection events
    bool everConnected_ = false;
    bool accepted_ = false;
};

// A fresh request id, unique in this process: "ofx-<pid>-<n>".
std::string nextRequestId();

}  // namespace vinpaint::net
