// The plugin's client for the daemon: one request at a time (or a window of uploads) on one Connection, with
// the timeouts of the calling context, replies matched by `re`, and every failure turned into an exception whose
// text a compositor can act on.
#pragma once

#include <chrono>
#include <deque>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "errors.h"
#include "messages.h"
#include "transport.h"

namespace vinpaint {

// An error reply from the daemon (SPEC.md section 7).
class RemoteError : public DaemonError {
public:
    RemoteError(std::string type, proto::ErrorInfo info, proto::Value body)
        : DaemonError("vinpaint daemon refused " + type + ": " + info.message +
                      (info.field.empty() ? "" : " [" + info.field + "]") + " (" + info.code + ")"),
          code(info.code), field(info.field), body(std::move(body)) {}
    std::string code, field;
    proto::Value body;
};

// The user (progress bar) or the host (abort) asked to stop.
class Cancelled : public std::runtime_error {
public:
    Cancelled() : std::runtime_error("cancelled") {}
};

struct Timeouts {
    net::Millis control{2000};  // hello, open, start, status, cancel
    net::Millis data{2000};     // base for uploads and fetches ...
    double msPerMB = 100;       // ... plus this per MB (SPEC.md suggests 1 s per 10 MB)
    net::Millis forBytes(std::size_t bytes) const {
        return data + net::Millis(static_cast<long long>(msPerMB * static_cast<double>(bytes) / 1e6));
    }
    // Interactive renders and button presses: give up in about two seconds.
    static Timeouts interactive() { return Timeouts{}; }
    // Batch renders and the Train upload (which shows a progress bar with cancel): the spec's suggestion.
    static Timeouts patient() { return Timeouts{net::Millis(10000), net::Millis(60000), 100}; }
};

// One render's time with the daemon: every request it makes shares it (before, each had its own timeout, so a
// daemon answering each in 1.9 s held an interactive render for 4-6 s). A fetch adds its bytes' allowance.
struct RenderBudget {
    explicit RenderBudget(net::Millis total) : total(total) {}
    net::Millis total;  // what it was given in all, for the message
    std::optional<std::chrono::steady_clock::time_point> end;  // from the first request on
    void extend(net::Millis more) {
        if (end) *end += more;
        total += more;
    }
};

// One fetched result frame: the pixels stay in the ZeroMQ message they arrived in (no copy).
struct FetchedFrame {
    proto::BufferSpec spec;
    std::shared_ptr<zmq::message_t> pixels;
    const void *data() const { return pixels->data(); }
};

class DaemonClient {
public:
    DaemonClient(std::string endpoint, Timeouts timeouts, net::CancelFn cancel = {});
    const std::string &endpoint() const { return endpoint_; }
    void setTimeouts(const Timeouts &t) { timeouts_ = t; }
    // Renders: when nothing accepted a connection to this address in the last few seconds, fail at once with that
    // message instead of stalling every frame of a scrub (or of a batch render) for the full timeout again.
    void setFailFast(bool on) { failFast_ = on; }
    static constexpr double kUnreachableMemorySeconds = 3.0;
    const Timeouts &timeouts() const { return timeouts_; }
    // Each request then waits at most what is left of `budget` (shared by the render's clients; it outlives them),
    // and never less than kBudgetFloor, so a last small request is not failed unasked.
    void setBudget(RenderBudget *budget) { budget_ = budget; }
    static constexpr net::Millis kBudgetFloor{200};

    proto::HelloReply hello(const std::string &clientName);
    proto::OpenReply open(const proto::Geometry &g, const std::string &contentHash, const proto::Settings &s,
                          const std::string &name, const std::vector<int> &references = {});
    // `stream`: start before every item is uploaded (the daemon must list feature "stream").
    proto::StartReply start(const std::string &job, bool stream = false);
    proto::StatusReply status(const std::string &job);
    proto::CancelReply cancel(const std::string &job);
    FetchedFrame fetch(const std::string &job, int index, std::size_t expectedBytes,
                       const std::string &layer = proto::kLayerFrame);

    // Pipelined uploads: queue() sends at once (waiting for the oldest reply when `window` are in flight),
    // drain() waits for every outstanding reply. Each reply is checked; a refusal throws RemoteError.
    void queueUpload(const std::string &job, bool isMask, int index, const std::string &digestHex,
                     const proto::BufferSpec &spec, zmq::message_t pixels, std::size_t window = 4);
    void queueUpload(const std::string &job, const char *kind, int index, const std::string &digestHex,
                     const proto::BufferSpec &spec, zmq::message_t pixels, std::size_t window = 4);
    void drainUploads();

private:
    net::InMessage call(const std::string &type, const proto::Value &body, net::Millis timeout,
                        std::vector<proto::BufferSpec> specs = {}, std::vector<zmq::message_t> buffers = {});
    void sendOrThrow(const std::string &type, const std::string &id, const proto::Value &body, net::Millis timeout,
                     std::vector<proto::BufferSpec> specs, std::vector<zmq::message_t> buffers);
    net::InMessage awaitReply(const std::string &type, const std::string &id, net::Millis timeout);
    void awaitOldestUpload();
    void abandonUploads() noexcept;
    [[noreturn]] void throwSilent(const std::string &type, net::Millis timeout);
    net::Millis withinBudget(net::Millis timeout);
    net::Connection &conn();

    std::string endpoint_;
    Timeouts timeouts_;
    bool failFast_ = false;
    RenderBudget *budget_ = nullptr;
    bool budgetBound_ = false;  // the request under way waits what is left of the budget, not its own timeout
    net::CancelFn cancel_;
    std::unique_ptr<net::Connection> conn_;
    struct Pending {
        std::string id;
        net::Millis timeout;
    };
    std::deque<Pending> uploads_;
};

// "2m05s", "45s", "1h03m" for the ETA in messages.
std::string formatDuration(double seconds);
// "queued", "queued, next" (nothing ahead), "queued (2 jobs ahead)".
std::string queuedText(std::optional<std::int64_t> position);
// The status line / persistent message text for a job's status: "training 45% (train 120/400), ETA 2m10s" ...
std::string describeJob(const proto::StatusReply &st);

}  // namespace vinpaint
