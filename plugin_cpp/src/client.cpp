#include "client.h"
#include "zmq_runtime.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <sstream>

namespace vinpaint {

namespace {
// Addresses where nothing accepted a connection recently, with the message given then.
std::mutex g_unreachableMutex;
std::map<std::string, std::pair<std::chrono::steady_clock::time_point, std::string>> g_unreachable;
}  // namespace

DaemonClient::DaemonClient(std::string endpoint, Timeouts timeouts, net::CancelFn cancel)
    : endpoint_(std::move(endpoint)), timeouts_(timeouts), cancel_(std::move(cancel)) {
    // Before any pixel is read into a ZeroMQ message: a machine without libzmq fails here, in words.
    if (!net::zmqLibrary().loaded) throw DaemonError(net::zmqLibrary().error);
}

net::Connection &DaemonClient::conn() {
    if (!conn_) {
        if (endpoint_.empty()) throw DaemonError("vinpaint: the daemon address is empty; set it on the node (e.g. tcp://127.0.0.1:5581)");
        if (const std::string problem = net::tcpAddressProblem(endpoint_); !problem.empty())
            throw DaemonError("vinpaint: the daemon address " + endpoint_ + " is malformed: " + problem);
        net::CurveKeys keys = net::CurveKeys::fromEnvironment();
        if (endpoint_.rfind("tcp://", 0) == 0 && !net::isLocalEndpoint(endpoint_) && keys.empty())
            throw DaemonError("vinpaint: " + endpoint_ +
                              " is not on this machine, so the daemon requires CurveZMQ keys: set "
                              "VINPAINT_SERVER_KEY_FILE and VINPAINT_CLIENT_KEY_FILE in the host's environment "
                              "(see docs/plugin.md)");
        try {
            conn_ = std::make_unique<net::Connection>(endpoint_, keys);
        } catch (const std::invalid_argument &e) {
            throw DaemonError(std::string("vinpaint: ") + e.what());
        }
    }
    return *conn_;
}

[[noreturn]] void DaemonClient::throwSilent(const std::string &type, net::Millis timeout) {
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f", timeout.count() / 1000.0);
    const bool connected = conn_ && conn_->everConnected();
    const bool accepted = conn_ && !connected && conn_->transportAccepted();
    conn_.reset();  // a late reply goes with the socket
    if (!connected) {
        std::string more = net::isLocalEndpoint(endpoint_)
                               ? " Start it with `vinpaint serve` (see docs/plugin.md) or fix the node's Daemon address."
                               : " Check the address, that the daemon runs there, and your CurveZMQ keys.";
        std::string text = "vinpaint: no daemon is reachable at " + endpoint_ +
                           " (nothing accepted the connection in " + secs + " s)." + more;
        if (accepted)  // the port answered, the daemon did not
            text = "vinpaint: no daemon is reachable at " + endpoint_ +
                   ": something accepted the connection but never completed ZeroMQ's handshake in " + secs +
                   " s (a stopped or frozen daemon, another program on that port" +
                   (net::isLocalEndpoint(endpoint_) ? "" : ", or CurveZMQ keys the daemon refuses") +
                   "). Check the daemon's process (`vinpaint serve`) and the node's Daemon address.";
        if (!budgetBound_) {  // a wait cut short by the render's budget proves nothing about the address
            std::lock_guard<std::mutex> lock(g_unreachableMutex);
            g_unreachable[endpoint_] = {std::chrono::steady_clock::now(), text};
        }
        throw DaemonError(text);
    }
    if (budgetBound_) {
        std::snprintf(secs, sizeof secs, "%.1f", budget_->total.count() / 1000.0);
        throw DaemonError("vinpaint: the daemon at " + endpoint_ + " did not answer '" + type + "' within this " +
                          "render's " + secs + " s (it is overloaded, or stopped or crashed); render again to retry.");
    }
    throw DaemonError("vinpaint: the daemon at " + endpoint_ + " did not answer '" + type + "' within " + secs +
                      " s (it stopped, crashed or is overloaded).");
}

void DaemonClient::sendOrThrow(const std::string &type, const std::string &id, const proto::Value &body,
                               net::Millis timeout, std::vector<proto::BufferSpec> specs,
                               std::vector<zmq::message_t> buffers) {
    if (failFast_ && !(conn_ && conn_->everConnected())) {
        std::lock_guard<std::mutex> lock(g_unreachableMutex);
        auto it = g_unreachable.find(endpoint_);
        if (it != g_unreachable.end()) {
            const double age = std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.first).count();
            if (age < kUnreachableMemorySeconds) throw DaemonError(it->second.second);
            g_unreachable.erase(it);
        }
    }
    net::OutMessage out;
    out.header = proto::encodeRequestHeader(type, id, body, specs);
    out.buffers = std::move(buffers);
    switch (conn().send(std::move(out), timeout, cancel_)) {
        case net::WaitResult::Ok: {
            std::lock_guard<std::mutex> lock(g_unreachableMutex);
            g_unreachable.erase(endpoint_);
            return;
        }
        case net::WaitResult::Cancelled: throw Cancelled();
        case net::WaitResult::Timeout: throwSilent(type, timeout);
    }
}

net::InMessage DaemonClient::awaitReply(const std::string &type, const std::string &id, net::Millis timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<net::Millis>(deadline - std::chrono::steady_clock::now());
        net::InMessage in;
        net::WaitResult w;
        try {
            w = conn().receive(in, std::max(left, net::Millis(0)), cancel_);
        } catch (const proto::ProtocolError &e) {
            conn_.reset();  // the stream may be out of step; the next call reconnects
            throw DaemonError(std::string("vinpaint: the daemon's reply to '") + type + "' breaks protocol v1: " +
                              e.what() + (e.code() == "version_mismatch" ? " (update the plugin or the daemon)" : ""));
        }
        if (w == net::WaitResult::Cancelled) {
            conn_.reset();  // drop the late reply with the socket
            throw Cancelled();
        }
        if (w == net::WaitResult::Timeout) throwSilent(type, timeout);
        if (in.reply.re != id) continue;  // a late reply to something we gave up on
        if (!in.reply.ok()) throw RemoteError(type, *in.reply.error, in.reply.body);
        return in;
    }
}

net::Millis DaemonClient::withinBudget(net::Millis timeout) {
    budgetBound_ = false;
    if (!budget_) return timeout;
    const auto now = std::chrono::steady_clock::now();
    if (!budget_->end) budget_->end = now + budget_->total;  // the first request has the whole of it
    const auto left = std::max(std::chrono::duration_cast<net::Millis>(*budget_->end - now), kBudgetFloor);
    if (left >= timeout) return timeout;
    budgetBound_ = true;
    return left;
}

net::InMessage DaemonClient::call(const std::string &type, const proto::Value &body, net::Millis timeout,
                                  std::vector<proto::BufferSpec> specs, std::vector<zmq::message_t> buffers) {
    if (!uploads_.empty()) drainUploads();
    timeout = withinBudget(timeout);
    const std::string id = net::nextRequestId();
    const auto start = std::chrono::steady_clock::now();
    sendOrThrow(type, id, body, timeout, std::move(specs), std::move(buffers));
    const auto spent = std::chrono::duration_cast<net::Millis>(std::chrono::steady_clock::now() - start);
    return awaitReply(type, id, std::max(timeout - spent, net::Millis(1)));
}

namespace {
template <typename F> auto parsed(const std::string &type, F &&f) {
    try {
        return f();
    } catch (const proto::ProtocolError &e) {
        throw DaemonError(std::string("vinpaint: the daemon's reply to '") + type + "' breaks protocol v1: " + e.what());
    }
}
}  // namespace

proto::HelloReply DaemonClient::hello(const std::string &clientName) {
    auto in = call("hello", proto::helloBody(clientName), timeouts_.control);
    auto r = parsed("hello", [&] { return proto::parseHello(in.reply.body); });
    if (r.protocol != proto::kProtocolVersion)
        throw DaemonError("vinpaint: the daemon speaks protocol version " + std::to_string(r.protocol) +
                          "; this plugin speaks version " + std::to_string(proto::kProtocolVersion));
    return r;
}

proto::OpenReply DaemonClient::open(const proto::Geometry &g, const std::string &hash, const proto::Settings &s,
                                    const std::string &name, const std::vector<int> &references) {
    auto in = call("job.open", proto::jobOpenBody(g, hash, s, name, references), timeouts_.control);
    return parsed("job.open", [&] { return proto::parseOpen(in.reply.body); });
}

proto::StartReply DaemonClient::start(const std::string &job, bool stream) {
    auto in = call("job.start", proto::jobStartBody(job, stream), timeouts_.control);
    return parsed("job.start", [&] { return proto::parseStart(in.reply.body); });
}

proto::StatusReply DaemonClient::status(const std::string &job) {
    auto in = call("job.status", proto::jobBody(job), timeouts_.control);
    return parsed("job.status", [&] { return proto::parseStatus(in.reply.body); });
}

proto::CancelReply DaemonClient::cancel(const std::string &job) {
    auto in = call("job.cancel", proto::jobBody(job), timeouts_.control);
    return parsed("job.cancel", [&] { return proto::parseCancel(in.reply.body); });
}

FetchedFrame DaemonClient::fetch(const std::string &job, int index, std::size_t expectedBytes,
                                 const std::string &layer) {
    if (budget_) budget_->extend(timeouts_.forBytes(expectedBytes) - timeouts_.data);  // its bytes' allowance
    auto in = call("job.fetch", proto::jobFetchBody(job, index, layer), timeouts_.forBytes(expectedBytes));
    parsed("job.fetch", [&] { return proto::parseFetch(in.reply.body); });
    if (in.reply.specs.size() != 1)
        throw DaemonError("vinpaint: the daemon's reply to 'job.fetch' carries " +
                          std::to_string(in.reply.specs.size()) + " buffers instead of 1");
    FetchedFrame f;
    f.spec = in.reply.specs[0];
    f.pixels = std::make_shared<zmq::message_t>(std::move(in.frames[1]));
    // A small message lies inside libzmq's receive buffer, at any byte offset: 16-bit and float samples read from
    // it in place were misaligned loads (undefined behaviour; UBSan said so). Copied to an aligned buffer then.
    if (reinterpret_cast<std::uintptr_t>(f.pixels->data()) % alignof(float) != 0)  // 4: the widest sample
        f.pixels = std::make_shared<zmq::message_t>(f.pixels->data(), f.pixels->size());
    return f;
}

void DaemonClient::queueUpload(const std::string &job, bool isMask, int index, const std::string &digestHex,
                               const proto::BufferSpec &spec, zmq::message_t pixels, std::size_t window) {
    queueUpload(job, isMask ? proto::kKindMask : proto::kKindFrame, index, digestHex, spec, std::move(pixels), window);
}

void DaemonClient::queueUpload(const std::string &job, const char *kind, int index, const std::string &digestHex,
                               const proto::BufferSpec &spec, zmq::message_t pixels, std::size_t window) {
    try {
        while (uploads_.size() >= std::max<std::size_t>(window, 1)) awaitOldestUpload();
        const std::string id = net::nextRequestId();
        const net::Millis timeout = timeouts_.forBytes(spec.nbytes());
        std::vector<zmq::message_t> bufs;
        bufs.push_back(std::move(pixels));
        sendOrThrow("job.upload", id, proto::jobUploadBody(job, kind, index, digestHex), timeout, {spec},
                    std::move(bufs));
        uploads_.push_back(Pending{id, timeout});
    } catch (...) {
        abandonUploads();
        throw;
    }
}

// Replies come in order, so each item's clock starts when it is its turn: the window's size times the per-item
// timeout bounds the whole wait.
void DaemonClient::awaitOldestUpload() {
    Pending p = uploads_.front();
    uploads_.pop_front();
    auto in = awaitReply("job.upload", p.id, p.timeout);
    parsed("job.upload", [&] { return proto::parseUpload(in.reply.body); });
}

void DaemonClient::drainUploads() {
    try {
        while (!uploads_.empty()) awaitOldestUpload();
    } catch (...) {
        abandonUploads();
        throw;
    }
}

void DaemonClient::abandonUploads() noexcept {
    uploads_.clear();
    conn_.reset();  // replies still in flight go with the socket
}

std::string queuedText(std::optional<std::int64_t> position) {
    if (!position) return "queued";
    if (*position <= 0) return "queued, next";
    return "queued (" + std::to_string(*position) + " job" + (*position == 1 ? "" : "s") + " ahead)";
}

namespace {
// A long shot's progress counts 1000 per window in phase "window" (host_bridge/worker.py, ShotProgress): window
// k of n, or nothing when the counts do not follow that rule.
std::optional<std::pair<std::int64_t, std::int64_t>> windowOf(const proto::StatusReply &st) {
    if (st.phase != "window" || st.total <= 0 || st.total % 1000 != 0) return std::nullopt;
    const std::int64_t n = st.total / 1000;
    return std::make_pair(std::min(n, std::max<std::int64_t>(st.step, 0) / 1000 + 1), n);
}
}  // namespace

std::string describeJob(const proto::StatusReply &st) {
    std::ostringstream out;
    const int pct = static_cast<int>(std::floor(std::clamp(st.progress, 0.0, 1.0) * 100.0));
    const std::string eta = st.eta ? formatDuration(*st.eta) : std::string("unknown");
    if (st.state == "done") {
        out << "done: " << st.geometry.frames << " frames ready";
    } else if (st.state == "training" && st.phase == "upload") {  // a streaming job waiting for its frames
        // The daemon's words ("waiting for frames 60-119 (23 items still to upload)"); in a node, the frames
        // come from pressing Train (a Train cancelled mid-upload left the job started).
        out << (st.message.empty() ? std::string("waiting for the upload") : st.message)
            << ": press Train to send them";
    } else if (st.state == "training" && windowOf(st)) {
        const auto [k, n] = *windowOf(st);
        out << "window " << k << " of " << n << " training (" << pct << "%)";
        if (st.eta) out << ", ETA " << eta;
    } else if (st.state == "training") {
        out << "training " << pct << "%";
        if (!st.phase.empty()) {
            out << " (" << st.phase;
            if (st.total > 0) out << " " << st.step << "/" << st.total;
            out << ")";
        }
        out << ", ETA " << eta;
    } else if (st.state == "queued") {
        out << queuedText(st.position);
    } else if (st.state == "uploading") {
        out << "uploading: " << st.missingFrames << " frames and " << st.missingMasks
            << " masks missing; press Train to finish";
    } else if (st.state == "failed") {
        out << "failed: " << (st.error.empty() ? st.message : st.error);
    } else if (st.state == "cancelled") {
        out << "cancelled at " << pct << "%; press Train to resume";
    } else {
        out << st.state;
    }
    // Feature "partial_results": frames of finished windows are served while the rest trains.
    if (st.state != "done" && st.framesDone && *st.framesDone > 0)
        out << "; " << *st.framesDone << " of " << st.geometry.frames << " frames ready";
    return out.str();
}

std::string formatDuration(double s) {
    if (!(s >= 0) || !std::isfinite(s)) return "?";
    const long long t = static_cast<long long>(std::llround(s));
    char buf[32];
    if (t < 60) std::snprintf(buf, sizeof buf, "%llds", t);
    else if (t < 3600) std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
    else std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, (t % 3600) / 60);
    return buf;
}

}  // namespace vinpaint
