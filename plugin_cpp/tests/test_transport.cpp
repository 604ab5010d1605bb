// The client's failure handling on real ZeroMQ sockets: no daemon at the address, a peer that never answers,
// late replies to an abandoned request, a peer speaking another protocol version or sending garbage, an error
// reply, and cancellation. The peer here is a bare ROUTER socket standing in for misbehaviour the real daemon
// never shows; the real daemon is exercised by the OFX harness tests. No timing is asserted.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <atomic>
#include <functional>
#include <thread>

#include "check.h"
#include "client.h"
#include "codec.h"

using namespace vinpaint;

namespace {

// Binds a ROUTER on a free loopback port and answers each request with what `reply` returns.
class Peer {
public:
    using ReplyFn = std::function<std::vector<std::string>(const proto::Value &header)>;
    explicit Peer(ReplyFn reply) : reply_(std::move(reply)) {
        sock_ = zmq::socket_t(net::context(), zmq::socket_type::router);
        sock_.set(zmq::sockopt::linger, 0);
        sock_.bind("tcp://127.0.0.1:*");
        endpoint_ = sock_.get(zmq::sockopt::last_endpoint);
        thread_ = std::thread([this] { loop(); });
    }
    ~Peer() {
        stop_ = true;
        thread_.join();
        sock_.close();
    }
    const std::string &endpoint() const { return endpoint_; }
    int requests() const { return requests_; }

private:
    void loop() {
        while (!stop_) {
            zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
            if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) <= 0) continue;
            std::vector<zmq::message_t> parts;
            do {
                zmq::message_t m;
                (void)sock_.recv(m);
                parts.push_back(std::move(m));
            } while (parts.back().more());
            ++requests_;
            proto::Value header = proto::unpackHeader(parts[1].data(), parts[1].size(), proto::kMaxRequestHeaderBytes);
            std::vector<std::string> out = reply_(header);
            if (out.empty()) continue;  // silence
            sock_.send(zmq::buffer(parts[0].data(), parts[0].size()), zmq::send_flags::sndmore);
            for (std::size_t i = 0; i < out.size(); ++i)
                sock_.send(zmq::buffer(out[i]), i + 1 < out.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
        }
    }
    ReplyFn reply_;
    zmq::socket_t sock_;
    std::string endpoint_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<int> requests_{0};
};

std::string replyHeader(const proto::Value &req, const std::string &status, proto::Value body, int v = 1,
                        const std::string &re = "") {
    proto::Value h = proto::Value::map();
    h.set("v", v);
    h.set("type", req.find("type")->asStr());
    h.set("re", re.empty() ? req.find("id")->asStr() : re);
    h.set("status", status);
    if (status == "error") {
        proto::Value e = proto::Value::map();
        e.set("code", "not_found");
        e.set("message", "no job 0123");
        h.set("error", e);
    }
    h.set("body", std::move(body));
    return proto::pack(h);
}

proto::Value statusBody() {
    proto::Value b = proto::Value::map();
    b.set("job", std::string(32, 'a'));
    b.set("state", "training");
    b.set("progress", 0.5);
    b.set("phase", "train");
    b.set("step", 3);
    b.set("total", 6);
    b.set("elapsed_s", 1.0);
    b.set("losses", proto::Value::map());
    b.set("message", "step 3/6");
    b.set("frames", 4);
    b.set("width", 8);
    b.set("height", 6);
    b.set("channels", 3);
    b.set("dtype", "u1");
    b.set("mask_dtype", "u1");
    b.set("missing_frames", 0);
    b.set("missing_masks", 0);
    b.set("name", "");
    b.set("created", 1.0);
    b.set("updated", 2.0);
    return b;
}

std::string freePortEndpoint() {
    // Bind a plain socket to get a free port, and close it synchronously without ever listening. (A ZeroMQ socket's
    // close is asynchronous: under load its listener could still accept the client's first connection.)
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0) {
        std::fprintf(stderr, "cannot find a free port\n");
        std::exit(2);
    }
    ::close(fd);
    return "tcp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

template <typename E, typename F> std::string expectThrow(F &&f) {
    try {
        f();
    } catch (const E &e) {
        return e.what();
    } catch (const std::exception &e) {
        return std::string("WRONG TYPE: ") + e.what();
    }
    return "NO THROW";
}

const std::string kJob(32, 'a');
Timeouts quick() { return Timeouts{net::Millis(300), net::Millis(300), 0}; }

}  // namespace

int main() {
    // Status texts: a queue position of 0 means "next", never "(0 ahead)".
    {
        CHECK(queuedText(std::nullopt) == "queued");
        CHECK_MSG(queuedText(0) == "queued, next", queuedText(0));
        CHECK(queuedText(1) == "queued (1 job ahead)");
        CHECK(queuedText(3) == "queued (3 jobs ahead)");
        proto::StatusReply st;
        st.state = "queued";
        st.position = 0;
        CHECK_MSG(describeJob(st) == "queued, next", describeJob(st));
        CHECK(describeJob(st).find("0 ahead") == std::string::npos);
        // A long shot (phase "window", 1000 per window) with frames of finished windows on disk (frames_done).
        st.state = "training";
        st.phase = "window";
        st.step = 1500;
        st.total = 4000;
        st.progress = 0.375;
        st.eta = 130;
        st.geometry.frames = 240;
        st.framesDone = 60;
        CHECK_MSG(describeJob(st) == "window 2 of 4 training (37%), ETA 2m10s; 60 of 240 frames ready", describeJob(st));
        st.step = 4000;  // the last window at its end is still window 4 of 4
        CHECK_MSG(describeJob(st).rfind("window 4 of 4 training", 0) == 0, describeJob(st));
        st.eta.reset();  // no ETA: none said
        CHECK_MSG(describeJob(st) == "window 4 of 4 training (37%); 60 of 240 frames ready", describeJob(st));
        st.eta = 130;
        st.framesDone = 0;  // nothing written yet: no count
        CHECK_MSG(describeJob(st).find("frames ready") == std::string::npos, describeJob(st));
        st.total = 2500;  // not the per-window count: the plain phase text
        st.step = 1000;
        CHECK_MSG(describeJob(st) == "training 37% (window 1000/2500), ETA 2m10s", describeJob(st));
        // A streaming job waiting for the rest of its upload says what it waits for.
        st.phase = "upload";
        st.message = "waiting for frames 60-119 (23 items still to upload)";
        st.framesDone = 60;
        CHECK_MSG(describeJob(st) == "waiting for frames 60-119 (23 items still to upload): press Train to send them; "
                                     "60 of 240 frames ready",
                  describeJob(st));
        st.state = "done";
        st.framesDone = 240;
        CHECK_MSG(describeJob(st) == "done: 240 frames ready", describeJob(st));
    }
    // Nobody listening: the message says so and names the address.
    {
        const std::string ep = freePortEndpoint();
        DaemonClient c(ep, quick());
        std::string why = expectThrow<DaemonError>([&] { c.hello("test"); });
        CHECK_MSG(why.find("no daemon is reachable at " + ep) != std::string::npos, why);
        CHECK_MSG(why.find("vinpaint serve") != std::string::npos, why);
    }
    // Something listens but never speaks ZeroMQ (what a SIGSTOPped daemon looks like: its kernel still accepts):
    // the message says the port answered and the daemon did not.
    {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        CHECK_MSG(fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0 &&
                      ::listen(fd, 4) == 0 && ::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) == 0,
                  "a listening socket");
        const std::string ep = "tcp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
        DaemonClient c(ep, quick());
        const std::string why = expectThrow<DaemonError>([&] { c.hello("test"); });
        CHECK_MSG(why.find("no daemon is reachable at " + ep) != std::string::npos, why);
        CHECK_MSG(why.find("accepted the connection but never completed ZeroMQ's handshake") != std::string::npos, why);
        ::close(fd);
    }
    // Fail fast (interactive renders): an address found unreachable a moment ago is not tried again for a few
    // seconds, even once something listens there; without fail-fast the next call connects.
    {
        zmq::socket_t probe(net::context(), zmq::socket_type::router);
        probe.set(zmq::sockopt::linger, 0);
        probe.bind("tcp://127.0.0.1:*");
        const std::string ep = probe.get(zmq::sockopt::last_endpoint);
        probe.unbind(ep);
        DaemonClient first(ep, quick());
        first.setFailFast(true);
        const std::string why = expectThrow<DaemonError>([&] { first.status(kJob); });
        CHECK_MSG(why.find("no daemon is reachable") != std::string::npos, why);
        probe.bind(ep);  // the daemon comes up on the same address
        std::atomic<bool> stop{false};
        std::thread answer([&] {
            while (!stop) {
                zmq::pollitem_t item{probe.handle(), 0, ZMQ_POLLIN, 0};
                if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) <= 0) continue;
                std::vector<zmq::message_t> parts;
                do {
                    zmq::message_t m;
                    (void)probe.recv(m);
                    parts.push_back(std::move(m));
                } while (parts.back().more());
                proto::Value req = proto::unpackHeader(parts[1].data(), parts[1].size(), proto::kMaxRequestHeaderBytes);
                probe.send(zmq::buffer(parts[0].data(), parts[0].size()), zmq::send_flags::sndmore);
                probe.send(zmq::buffer(replyHeader(req, "ok", statusBody())), zmq::send_flags::none);
            }
        });
        DaemonClient remembered(ep, quick());
        remembered.setFailFast(true);
        const std::string again = expectThrow<DaemonError>([&] { remembered.status(kJob); });
        CHECK_MSG(again == why, again);
        DaemonClient patient(ep, Timeouts{net::Millis(5000), net::Millis(5000), 0});
        CHECK(patient.status(kJob).state == "training");
        DaemonClient after(ep, quick());
        after.setFailFast(true);
        CHECK(after.status(kJob).state == "training");  // a success clears the memory
        stop = true;
        answer.join();
        probe.close();
    }
    // Connected but silent: "did not answer".
    {
        Peer p([](const proto::Value &) { return std::vector<std::string>{}; });
        DaemonClient c(p.endpoint(), quick());
        std::string why = expectThrow<DaemonError>([&] { c.status(kJob); });
        CHECK_MSG(why.find("did not answer 'job.status'") != std::string::npos, why);
    }
    // A late reply to an abandoned request is skipped; the matching one is taken.
    {
        Peer p([](const proto::Value &req) {
            return std::vector<std::string>{replyHeader(req, "ok", statusBody(), 1, "old-1")};
        });
        DaemonClient c(p.endpoint(), quick());
        std::string why = expectThrow<DaemonError>([&] { c.status(kJob); });
        CHECK_MSG(why.find("did not answer") != std::string::npos, why);  // only stale replies: still silence
    }
    {
        std::atomic<int> n{0};
        Peer p([&](const proto::Value &req) {
            ++n;
            return std::vector<std::string>{replyHeader(req, "ok", statusBody())};
        });
        DaemonClient c(p.endpoint(), quick());
        auto st = c.status(kJob);
        CHECK(st.state == "training" && st.step == 3 && st.geometry.width == 8);
        auto st2 = c.status(kJob);  // the connection is reused
        CHECK(st2.total == 6 && n == 2);
    }
    // Another protocol version: both versions are named.
    {
        Peer p([](const proto::Value &req) { return std::vector<std::string>{replyHeader(req, "ok", statusBody(), 2)}; });
        DaemonClient c(p.endpoint(), quick());
        std::string why = expectThrow<DaemonError>([&] { c.status(kJob); });
        CHECK_MSG(why.find("version 2") != std::string::npos && why.find("version 1") != std::string::npos, why);
    }
    // Garbage instead of msgpack.
    {
        Peer p([](const proto::Value &) { return std::vector<std::string>{std::string("\xc1\xc1\xc1", 3)}; });
        DaemonClient c(p.endpoint(), quick());
        std::string why = expectThrow<DaemonError>([&] { c.status(kJob); });
        CHECK_MSG(why.find("breaks protocol v1") != std::string::npos, why);
    }
    // A reply body with a wrong field type is refused with the field's name.
    {
        Peer p([](const proto::Value &req) {
            proto::Value b = statusBody();
            b.set("step", "three");
            return std::vector<std::string>{replyHeader(req, "ok", b)};
        });
        DaemonClient c(p.endpoint(), quick());
        std::string why = expectThrow<DaemonError>([&] { c.status(kJob); });
        CHECK_MSG(why.find("body.step") != std::string::npos, why);
    }
    // An error reply becomes a RemoteError carrying the code.
    {
        Peer p([](const proto::Value &req) { return std::vector<std::string>{replyHeader(req, "error", proto::Value::map())}; });
        DaemonClient c(p.endpoint(), quick());
        std::string code;
        try {
            c.status(kJob);
        } catch (const RemoteError &e) {
            code = e.code;
        }
        CHECK(code == "not_found");
    }
    // Cancellation ends a wait for a silent peer with Cancelled, not a timeout.
    {
        Peer p([](const proto::Value &) { return std::vector<std::string>{}; });
        int polls = 0;
        DaemonClient c(p.endpoint(), Timeouts{net::Millis(60000), net::Millis(60000), 0}, [&] { return ++polls > 3; });
        std::string why = expectThrow<Cancelled>([&] { c.status(kJob); });
        CHECK_MSG(why == "cancelled", why);
    }
    // Bad addresses are a message, not a crash.
    {
        DaemonClient c("not-an-address", quick());
        std::string why = expectThrow<DaemonError>([&] { c.hello("x"); });
        CHECK_MSG(why.find("not a daemon address") != std::string::npos, why);
        DaemonClient remote("tcp://10.1.2.3:5581", quick());
        if (net::CurveKeys::fromEnvironment().empty()) {
            why = expectThrow<DaemonError>([&] { remote.hello("x"); });
            CHECK_MSG(why.find("CurveZMQ") != std::string::npos, why);
        }
    }
    CHECK(net::isLocalEndpoint("tcp://127.0.0.1:5581") && net::isLocalEndpoint("tcp://localhost:1") &&
          net::isLocalEndpoint("tcp://[::1]:5581") && net::isLocalEndpoint("ipc:///tmp/x") &&
          !net::isLocalEndpoint("tcp://192.168.1.2:5581"));
    // A host name that starts like a loopback address is not one (it would skip the CurveZMQ keys).
    CHECK(!net::isLocalEndpoint("tcp://127.evil.example:5581") && !net::isLocalEndpoint("tcp://127.0.0.1.nip.io:1") &&
          !net::isLocalEndpoint("tcp://127.0.0:1") && net::isLocalEndpoint("tcp://127.3.2.1:1"));
    for (const char *bad : {"tcp://", "tcp://:5581", "tcp://127.0.0.1", "tcp://127.0.0.1:", "tcp://host:99999",
                            "tcp://host:0", "tcp://host:55x1", "tcp://[::1]"}) {
        CHECK_MSG(!net::tcpAddressProblem(bad).empty(), bad);
        DaemonClient c(bad, quick());
        const std::string why = expectThrow<DaemonError>([&] { c.hello("x"); });
        CHECK_MSG(why.find("is malformed") != std::string::npos, why);
    }
    CHECK(net::tcpAddressProblem("tcp://[::1]").find("no port") != std::string::npos);
    CHECK(net::tcpAddressProblem("tcp://127.0.0.1:5581").empty() && net::tcpAddressProblem("tcp://[::1]:1").empty() &&
          net::tcpAddressProblem("ipc:///tmp/x").empty());
    net::shutdownContext();
    net::shutdownContext();  // twice is fine
    TEST_MAIN_END();
}
