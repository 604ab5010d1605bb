// The C++ codec against protocol v1's golden vectors (protocol/golden): every valid header decodes to the
// described value and re-encodes to the same bytes, the plugin's own message builders reproduce the request
// vectors byte for byte, replies decode through the typed parsers, invalid vectors fail with the listed code and
// field, and broken input (every truncation, byte flips) only ever raises ProtocolError.
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <sstream>

#include "check.h"
#include "client.h"
#include "codec.h"
#include "json_mini.h"
#include "messages.h"
#include "sha256.h"

using namespace vinpaint;
using namespace vinpaint::proto;

namespace {

std::string golden;

std::string readFile(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + path);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

bool sameValue(const Value &a, const Value &b, std::string &where) {
    if (a.kind() != b.kind()) {
        where += " (kind " + std::string(Value::kindName(a.kind())) + " vs " + Value::kindName(b.kind()) + ")";
        return false;
    }
    switch (a.kind()) {
        case Value::Kind::Nil: return true;
        case Value::Kind::Bool: return a.asBool() == b.asBool();
        case Value::Kind::Int: return a.asInt() == b.asInt();
        case Value::Kind::Float: return a.asNumber() == b.asNumber();
        case Value::Kind::Str: return a.asStr() == b.asStr();
        case Value::Kind::Array:
            if (a.asArray().size() != b.asArray().size()) return false;
            for (std::size_t i = 0; i < a.asArray().size(); ++i) {
                std::string w = where + "[" + std::to_string(i) + "]";
                if (!sameValue(a.asArray()[i], b.asArray()[i], w)) {
                    where = w;
                    return false;
                }
            }
            return true;
        case Value::Kind::Map:
            if (a.asMap().size() != b.asMap().size()) return false;
            for (std::size_t i = 0; i < a.asMap().size(); ++i) {
                std::string w = where + "." + a.asMap()[i].first;
                if (a.asMap()[i].first != b.asMap()[i].first || !sameValue(a.asMap()[i].second, b.asMap()[i].second, w)) {
                    where = w;
                    return false;
                }
            }
            return true;
    }
    return false;
}

std::vector<unsigned char> bufferBytes(const Value &desc) {
    const auto dtype = *px::depthFromWire(desc.find("dtype")->asStr());
    std::vector<unsigned char> out;
    for (const auto &v : desc.find("values")->asArray()) {
        unsigned char b[4];
        std::size_t n = px::bytesOf(dtype);
        if (dtype == px::Depth::U8) {
            b[0] = static_cast<unsigned char>(v.asInt());
        } else if (dtype == px::Depth::U16) {
            const auto x = static_cast<std::uint16_t>(v.asInt());
            b[0] = x & 0xff;
            b[1] = x >> 8;
        } else {
            const float f = static_cast<float>(v.asNumber());
            std::memcpy(b, &f, 4);  // the test machine is little-endian, as is the wire
        }
        out.insert(out.end(), b, b + n);
    }
    return out;
}

template <typename F> std::optional<ProtocolError> catchProto(F &&f) {
    try {
        f();
    } catch (const ProtocolError &e) {
        return e;
    }
    return std::nullopt;
}

void testSha256Paths() {
    // The SHA extension path and the portable one agree on every length around the block boundaries.
    std::string data;
    for (int i = 0; i < 5000; ++i) data += static_cast<char>((i * 131 + 7) & 0xff);
    const bool hw = Sha256::accelerationAvailable();
    std::printf("SHA-256 x86 extensions: %s\n", hw ? "used" : "not available (portable code only)");
    for (std::size_t n : {0, 1, 55, 56, 63, 64, 65, 127, 128, 129, 1000, 4999}) {
        Sha256::setAccelerated(false);
        const auto a = Sha256::of(data.data(), n);
        Sha256::setAccelerated(true);
        const auto b = Sha256::of(data.data(), n);
        CHECK_MSG(a == b, "length " + std::to_string(n));
    }
}

void testSha256() {
    CHECK(Sha256::hex(Sha256::of("", 0)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(Sha256::hex(Sha256::of("abc", 3)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const std::string two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(Sha256::hex(Sha256::of(two.data(), two.size())) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    // Streaming in odd pieces gives the same digest as one call.
    std::string million(1000000, 'a');
    Sha256 s;
    for (std::size_t i = 0; i < million.size(); i += 777) s.update(million.data() + i, std::min<std::size_t>(777, million.size() - i));
    CHECK(Sha256::hex(s.finish()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

void testVectors(const Value &doc) {
    int valid = 0, invalid = 0;
    for (const auto &vec : doc.find("vectors")->asArray()) {
        const std::string name = vec.find("name")->asStr();
        const bool isReply = vec.find("direction")->asStr() == "reply";
        std::vector<std::string> files;
        for (const auto &f : vec.find("files")->asArray()) files.push_back(readFile(golden + "/" + f.asStr()));
        const auto &sizes = vec.find("sizes")->asArray();
        CHECK_MSG(sizes.size() == files.size(), name);
        for (std::size_t i = 0; i < files.size(); ++i)
            CHECK_MSG(files[i].size() == static_cast<std::size_t>(sizes[i].asInt()), name + " size");
        std::vector<FrameRef> frames;
        for (const auto &f : files) frames.push_back(FrameRef{f.data(), f.size()});

        if (vec.find("valid")->asBool()) {
            ++valid;
            const Value &want = *vec.find("header");
            Value got;
            auto err = catchProto([&] {
                got = unpackHeader(files[0].data(), files[0].size(),
                                   isReply ? kMaxReplyHeaderBytes : kMaxRequestHeaderBytes);
            });
            CHECK_MSG(!err, name + ": " + (err ? err->what() : ""));
            std::string where = "header";
            CHECK_MSG(sameValue(got, want, where), name + " differs at " + where);
            CHECK_MSG(pack(want) == files[0], name + ": re-encoding does not reproduce the bytes");
            // Buffers: the pixel frames hold exactly the listed elements, little-endian.
            const auto &bufs = vec.find("buffers")->asArray();
            CHECK_MSG(bufs.size() + 1 == files.size(), name);
            for (std::size_t i = 0; i < bufs.size() && i + 1 < files.size(); ++i) {
                auto bytes = bufferBytes(bufs[i]);
                CHECK_MSG(std::string(bytes.begin(), bytes.end()) == files[i + 1], name + " buffer bytes");
            }
            if (isReply) {
                Reply r;
                auto e = catchProto([&] { r = decodeReply(frames); });
                CHECK_MSG(!e, name + ": " + (e ? e->what() : ""));
                if (e) continue;
                if (!r.ok()) {
                    CHECK_MSG(r.error.has_value() && !r.error->code.empty() && !r.error->message.empty(), name);
                    continue;
                }
                auto pe = catchProto([&] {
                    if (r.type == "hello") parseHello(r.body);
                    else if (r.type == "job.open") parseOpen(r.body);
                    else if (r.type == "job.upload") parseUpload(r.body);
                    else if (r.type == "job.start") parseStart(r.body);
                    else if (r.type == "job.status") parseStatus(r.body);
                    else if (r.type == "job.fetch") parseFetch(r.body);
                    else if (r.type == "job.cancel") parseCancel(r.body);
                });
                CHECK_MSG(!pe, name + ": typed parse failed: " + (pe ? pe->what() : ""));
            }
        } else {
            ++invalid;
            const Value &expect = *vec.find("expect_error");
            const std::string code = expect.find("code")->asStr();
            const std::string field = expect.find("field") ? expect.find("field")->asStr() : "";
            if (isReply) {
                auto e = catchProto([&] { decodeReply(frames); });
                CHECK_MSG(e.has_value(), name + " was accepted");
                if (e) {
                    CHECK_MSG(e->code() == code, name + ": code " + e->code() + ", want " + code);
                    CHECK_MSG(e->field() == field, name + ": field " + e->field() + ", want " + field);
                }
                if (code == "version_mismatch" && e) {
                    const std::string text = e->what();
                    CHECK_MSG(text.find("version 2") != std::string::npos && text.find("version 1") != std::string::npos,
                              "the version message names both versions: " + text);
                }
            } else if (field == "header") {
                // Requests are the daemon's to refuse; the header-level ones go through the same unpacker.
                auto e = catchProto([&] { unpackHeader(files[0].data(), files[0].size(), kMaxRequestHeaderBytes); });
                CHECK_MSG(e.has_value() && e->code() == code && e->field() == "header", name);
            }
        }
    }
    CHECK(valid >= 26);
    CHECK(invalid >= 18);
}

const Value &vector(const Value &doc, const std::string &name) {
    for (const auto &v : doc.find("vectors")->asArray())
        if (v.find("name")->asStr() == name) return v;
    throw std::runtime_error("no vector " + name);
}

std::string file(const std::string &name, int i = 0) {
    return readFile(golden + "/" + name + "." + std::to_string(i) + ".bin");
}

void testBuilders(const Value &doc) {
    // hello
    CHECK(encodeRequestHeader("hello", "c-1", helloBody("vinpaint-ofx 0.1.0 Natron")) == file("hello_request"));
    // job.open with the content_hash example's geometry and every setting
    {
        const Value &body = *vector(doc, "job_open_request").find("header")->find("body");
        Geometry g;
        g.frames = 2;
        g.width = 3;
        g.height = 2;
        g.channels = 4;
        g.dtype = px::Depth::U8;
        g.maskDtype = px::Depth::F32;
        Settings s;
        s.preset = "tiny";
        s.variant = "dip-vid-flow";
        s.seed = 7;
        s.maskDilation = 4;
        s.overrides.emplace_back("train.max_steps", Value(100));
        s.overrides.emplace_back("train.learning_rate", Value(0.005));
        const std::string hash = body.find("content_hash")->asStr();
        CHECK(encodeRequestHeader("job.open", "c-2", jobOpenBody(g, hash, s, "shot010 comp v3")) ==
              file("job_open_request"));
    }
    // job.upload: frame 0 with digest, mask 1 without
    {
        const Value &hdr = *vector(doc, "job_upload_frame_request").find("header");
        const std::string job = hdr.find("body")->find("job")->asStr();
        const std::string digest = hdr.find("body")->find("digest")->asStr();
        CHECK(encodeRequestHeader("job.upload", "c-3", jobUploadBody(job, false, 0, digest),
                                  {BufferSpec{px::Depth::U8, {2, 3, 4}}}) == file("job_upload_frame_request"));
        const std::string pixels = file("job_upload_frame_request", 1);
        CHECK(Sha256::hex(Sha256::of(pixels.data(), pixels.size())) == digest);
        const Value &mh = *vector(doc, "job_upload_mask_request").find("header");
        CHECK(encodeRequestHeader(mh.find("type")->asStr(), mh.find("id")->asStr(),
                                  jobUploadBody(job, true, 1, ""), {BufferSpec{px::Depth::F32, {2, 3, 1}}}) ==
              file("job_upload_mask_request"));
    }
    // job-only messages and fetch
    for (const char *n : {"job_start_request", "job_status_request", "job_cancel_request", "job_delete_request"}) {
        const Value &hdr = *vector(doc, n).find("header");
        CHECK_MSG(encodeRequestHeader(hdr.find("type")->asStr(), hdr.find("id")->asStr(),
                                      jobBody(hdr.find("body")->find("job")->asStr())) == file(n),
                  n);
    }
    {
        const Value &hdr = *vector(doc, "job_fetch_request").find("header");
        const Value &b = *hdr.find("body");
        CHECK(encodeRequestHeader("job.fetch", hdr.find("id")->asStr(),
                                  jobFetchBody(b.find("job")->asStr(), static_cast<int>(b.find("index")->asInt()))) ==
              file("job_fetch_request"));
    }
    // The optional parts of version 1: job.open with references, a reference upload, a matte fetch.
    {
        const Value &hdr = *vector(doc, "job_open_references_request").find("header");
        const Value &b = *hdr.find("body");
        Geometry g;
        g.frames = 2;
        g.width = 3;
        g.height = 2;
        g.channels = 4;
        g.dtype = px::Depth::U8;
        g.maskDtype = px::Depth::F32;
        Settings s;
        s.preset = "tiny";
        CHECK(encodeRequestHeader("job.open", hdr.find("id")->asStr(),
                                  jobOpenBody(g, b.find("content_hash")->asStr(), s, "", {1})) ==
              file("job_open_references_request"));
        CHECK(encodeRequestHeader("job.open", "c-2", jobOpenBody(g, "x", s, "", {})) ==
              encodeRequestHeader("job.open", "c-2", jobOpenBody(g, "x", s, "")));  // none: the field is left out
        const Value &uh = *vector(doc, "job_upload_reference_request").find("header");
        const Value &ub = *uh.find("body");
        CHECK(encodeRequestHeader("job.upload", uh.find("id")->asStr(),
                                  jobUploadBody(ub.find("job")->asStr(), kKindReference, 1, ub.find("digest")->asStr()),
                                  {BufferSpec{px::Depth::U8, {2, 3, 4}}}) == file("job_upload_reference_request"));
        const Value &fh = *vector(doc, "job_fetch_matte_request").find("header");
        const Value &fb = *fh.find("body");
        CHECK(encodeRequestHeader("job.fetch", fh.find("id")->asStr(),
                                  jobFetchBody(fb.find("job")->asStr(), 1, kLayerMatte)) == file("job_fetch_matte_request"));
    }
    // An invalid request id is refused before anything is sent.
    CHECK(catchProto([] { encodeRequestHeader("hello", "bad id!", helloBody("")); }).has_value());
}

void testContentHash(const Value &doc) {
    const Value &ch = *doc.find("content_hash");
    Geometry g;
    g.frames = 2;
    g.height = 2;
    g.width = 3;
    g.channels = 4;
    g.dtype = px::Depth::U8;
    g.maskDtype = px::Depth::F32;
    std::vector<Sha256::Digest> fd, md;
    for (std::size_t i = 0; i < 2; ++i) {
        auto f = bufferBytes(ch.find("frames")->asArray()[i]);
        auto m = bufferBytes(ch.find("masks")->asArray()[i]);
        CHECK(f.size() == g.frameBytes());
        CHECK(m.size() == g.maskBytes());
        fd.push_back(Sha256::of(f.data(), f.size()));
        md.push_back(Sha256::of(m.data(), m.size()));
        CHECK(Sha256::hex(fd.back()) == ch.find("frame_sha256")->asArray()[i].asStr());
        CHECK(Sha256::hex(md.back()) == ch.find("mask_sha256")->asArray()[i].asStr());
    }
    CHECK(contentHash(g, fd, md) == ch.find("content_hash")->asStr());
    CHECK(contentHash(g, fd, md, {}) == ch.find("content_hash")->asStr());
    // With a painted reference for frame 1: the "references 1" line and its digest follow the masks'.
    const Value &cr = *doc.find("content_hash_references");
    const Value &ref = cr.find("references")->asArray()[0];
    auto r = bufferBytes(ref);
    CHECK(r.size() == g.frameBytes());
    const Sha256::Digest rd = Sha256::of(r.data(), r.size());
    CHECK(Sha256::hex(rd) == cr.find("reference_sha256")->asArray()[0].asStr());
    CHECK(contentHash(g, fd, md, {{static_cast<int>(ref.find("index")->asInt()), rd}}) ==
          cr.find("content_hash")->asStr());
    CHECK(contentHash(g, fd, md, {{1, rd}}) != contentHash(g, fd, md));
    bool refused = false;
    try {
        contentHash(g, fd, md, {{2, rd}});  // frame 2 of a 2-frame clip
    } catch (const std::invalid_argument &) {
        refused = true;
    }
    CHECK(refused);
}

void testTypedReplies() {
    auto decode = [](const std::string &name, int nframes = 1) {
        static std::map<std::string, std::vector<std::string>> keep;
        auto &files = keep[name];
        files.clear();
        for (int i = 0; i < nframes; ++i) files.push_back(file(name, i));
        std::vector<FrameRef> frames;
        for (auto &f : files) frames.push_back(FrameRef{f.data(), f.size()});
        return decodeReply(frames);
    };
    Reply hello = decode("hello_reply");
    CHECK(hello.ok() && hello.re == "c-1");
    HelloReply h = parseHello(hello.body);
    CHECK(h.protocol == 1 && h.maxMessageBytes == 268435456 && h.maxFrames == 10000 && h.presets.size() == 3);

    OpenReply o = parseOpen(decode("job_open_reply_existing").body);
    CHECK(!o.created && o.state == "done" && o.haveFrames == std::vector<int>({0, 1}));

    StatusReply st = parseStatus(decode("job_status_reply_training").body);
    CHECK(st.state == "training" && st.progress == 0.25 && st.eta && *st.eta == 12.5 && st.step == 3 && st.total == 12);
    CHECK(st.geometry.frames == 2 && st.geometry.width == 3 && st.geometry.height == 2 && st.geometry.channels == 4);
    CHECK(st.geometry.dtype == px::Depth::U8 && st.geometry.maskDtype == px::Depth::F32);
    StatusReply failed = parseStatus(decode("job_status_reply_failed").body);
    CHECK(failed.state == "failed" && !failed.error.empty() && !failed.eta);

    Reply fetch = decode("job_fetch_reply", 2);
    CHECK(fetch.specs.size() == 1 && fetch.specs[0].dtype == px::Depth::U16 &&
          fetch.specs[0].shape == std::vector<std::uint32_t>({2, 3, 3}));
    CHECK(fetch.buffers.size() == 1 && fetch.buffers[0].size == 36);
    std::uint16_t second = 0;
    std::memcpy(&second, static_cast<const char *>(fetch.buffers[0].data) + 2, 2);
    CHECK(second == 3000);

    Reply inc = decode("error_incomplete_reply");
    CHECK(!inc.ok() && inc.error && inc.error->code == "incomplete" && inc.re == "c-5");
    Reply nf = decode("error_not_found_reply");
    CHECK(!nf.ok() && nf.error && nf.error->code == "not_found");
    Reply bad = decode("error_bad_request_reply");
    CHECK(!bad.ok() && bad.error && !bad.error->field.empty());

    // A status body with a wrong type names the field.
    Value body = decode("job_status_reply_training").body;
    body.set("progress", "half");
    auto e = catchProto([&] { parseStatus(body); });
    CHECK(e && e->code() == "malformed" && e->field() == "body.progress");
    body = decode("job_status_reply_training").body;
    body.set("step", 2.5);  // an int field never accepts a float
    e = catchProto([&] { parseStatus(body); });
    CHECK(e && e->field() == "body.step");
    body = decode("job_status_reply_training").body;
    body.set("step", true);  // ... nor a bool
    e = catchProto([&] { parseStatus(body); });
    CHECK(e && e->field() == "body.step");

    // A geometry no job can have is refused by name before anything is sized from it.
    for (const auto &[key, value] : std::vector<std::pair<const char *, std::int64_t>>{
             {"frames", 0}, {"frames", -5}, {"width", 0}, {"width", -7}, {"height", 70000}, {"channels", 2}}) {
        body = decode("job_status_reply_training").body;
        body.set(key, value);
        e = catchProto([&] { parseStatus(body); });
        CHECK_MSG(e && e->field() == std::string("body.") + key, key);
    }
    body = decode("job_status_reply_training").body;
    body.set("width", 65535);
    body.set("height", 65535);
    body.set("dtype", "f4");
    e = catchProto([&] { parseStatus(body); });
    CHECK(e && e->field() == "body.width");
    // Progress and ETA that cannot be shown are shown as 0 % and unknown.
    body = decode("job_status_reply_training").body;
    body.set("progress", std::nan(""));
    body.set("eta_s", 1e300);
    const StatusReply odd = parseStatus(body);
    CHECK(odd.progress == 0 && !odd.eta);
}

// The optional parts of protocol 1 for streaming uploads and early results (features "stream" and
// "partial_results"): job.start's `stream`, job.open's `windows`, job.start's `stream` reply, job.status's
// `frames_done`; absent fields leave the replies as before.
void testStreamFields(const Value &doc) {
    const std::string job(32, 'a');
    CHECK(encodeRequestHeader("job.start", "c-9", jobStartBody(job)) ==
          encodeRequestHeader("job.start", "c-9", jobBody(job)));  // false: the field is left out
    Value streamed = jobStartBody(job, true);
    CHECK(streamed.find("stream") && streamed.find("stream")->isBool() && streamed.find("stream")->asBool());
    CHECK(streamed.asMap().size() == 2 && streamed.asMap()[0].first == "job");
    // The spec's vectors: the streaming start byte for byte, and the replies through the typed parsers.
    {
        const Value &hdr = *vector(doc, "job_start_stream_request").find("header");
        CHECK(encodeRequestHeader("job.start", hdr.find("id")->asStr(),
                                  jobStartBody(hdr.find("body")->find("job")->asStr(), true)) ==
              file("job_start_stream_request"));
        auto body = [](const std::string &name) {
            static std::vector<std::string> keep;
            keep.push_back(file(name));
            return decodeReply({FrameRef{keep.back().data(), keep.back().size()}}).body;
        };
        const HelloReply h = parseHello(body("hello_reply_stream"));
        CHECK(h.serves("stream") && h.serves("partial_results") && h.serves("matte"));
        CHECK(!parseHello(body("hello_reply_features")).serves("stream"));
        const OpenReply o = parseOpen(body("job_open_reply_windows"));
        CHECK(o.windows && *o.windows == 3 && o.state == "uploading");
        const StatusReply st = parseStatus(body("job_status_reply_upload"));
        CHECK(st.phase == "upload" && st.framesDone && *st.framesDone == 8 && st.geometry.frames == 19);
        CHECK_MSG(describeJob(st) ==
                      "waiting for frames 8-18 (4 items still to upload): press Train to send them; 8 of 19 frames ready",
                  describeJob(st));
    }

    Value open = Value::map();
    open.set("job", job);
    open.set("created", true);
    open.set("state", "uploading");
    open.set("have_frames", Value(Value::Array{}));
    open.set("have_masks", Value(Value::Array{}));
    CHECK(!parseOpen(open).windows);
    open.set("windows", 3);
    CHECK(parseOpen(open).windows && *parseOpen(open).windows == 3);
    open.set("windows", 0);
    auto e = catchProto([&] { parseOpen(open); });
    CHECK(e && e->code() == "malformed" && e->field() == "body.windows");
    open.set("windows", "3");
    e = catchProto([&] { parseOpen(open); });
    CHECK(e && e->field() == "body.windows");

    Value start = Value::map();
    start.set("job", job);
    start.set("state", "queued");
    start.set("position", 0);
    CHECK(!parseStart(start).stream);
    start.set("stream", true);
    CHECK(parseStart(start).stream);
    start.set("stream", 1);
    e = catchProto([&] { parseStart(start); });
    CHECK(e && e->field() == "body.stream");

    std::vector<std::string> keep{file("job_status_reply_training")};
    Value status = decodeReply({FrameRef{keep[0].data(), keep[0].size()}}).body;
    CHECK(!parseStatus(status).framesDone);
    status.set("frames_done", 1);
    CHECK(parseStatus(status).framesDone && *parseStatus(status).framesDone == 1);
    status.set("frames_done", -1);
    e = catchProto([&] { parseStatus(status); });
    CHECK(e && e->field() == "body.frames_done");
    status.set("frames_done", 1.0);  // an int field never accepts a float
    e = catchProto([&] { parseStatus(status); });
    CHECK(e && e->field() == "body.frames_done");

    // The node's Engine settings text: ints, floats, booleans and text, as `--set` reads them.
    Value::Map o = overridesFromText(" shot.window=4,train.learning_rate=0.005\ntrain.ema_decay=1e-2 "
                                     "propagation.enabled=false flow.estimator=dis ");
    CHECK(o.size() == 5);
    CHECK(o[0].first == "shot.window" && o[0].second.isInt() && o[0].second.asInt() == 4);
    CHECK(o[1].second.kind() == Value::Kind::Float && o[1].second.asNumber() == 0.005);
    CHECK(o[2].second.kind() == Value::Kind::Float && o[2].second.asNumber() == 0.01);
    CHECK(o[3].second.isBool() && !o[3].second.asBool());
    CHECK(o[4].second.isStr() && o[4].second.asStr() == "dis");
    CHECK(overridesFromText("").empty() && overridesFromText(" , \n").empty());
    for (const char *bad : {"shot.window", "=4", "shot.window=", "shot.window=4 shot.window=5"}) {
        bool threw = false;
        try {
            overridesFromText(bad);
        } catch (const std::invalid_argument &ex) {
            threw = std::string(ex.what()).find("Engine settings") != std::string::npos;
        }
        CHECK_MSG(threw, bad);
    }
}

void testBrokenInput() {
    // Every truncation of a valid reply header is refused as malformed, never a crash or another exception.
    for (const char *name : {"hello_reply", "job_status_reply_training", "job_list_reply", "job_fetch_reply"}) {
        const std::string h = file(name);
        for (std::size_t n = 0; n < h.size(); ++n) {
            auto e = catchProto([&] { unpackHeader(h.data(), n, kMaxReplyHeaderBytes); });
            CHECK_MSG(e && e->code() == "malformed", std::string(name) + " cut at " + std::to_string(n));
        }
        // One extra byte after the map is refused too.
        std::string longer = h + '\xc0';
        auto e = catchProto([&] { unpackHeader(longer.data(), longer.size(), kMaxReplyHeaderBytes); });
        CHECK(e && e->code() == "malformed");
    }
    // Byte flips: either a valid decode or a ProtocolError; nothing else escapes.
    const std::string h = file("job_status_reply_training");
    int other = 0;
    for (std::size_t i = 0; i < h.size(); ++i) {
        for (unsigned char x : {0x01, 0x10, 0x80, 0xff}) {
            std::string m = h;
            m[i] = static_cast<char>(static_cast<unsigned char>(m[i]) ^ x);
            try {
                Reply r = decodeReply({FrameRef{m.data(), m.size()}});
                if (r.ok()) parseStatus(r.body);
            } catch (const ProtocolError &) {
            } catch (...) {
                ++other;
            }
        }
    }
    CHECK(other == 0);
    // Size limit and frame-count checks.
    const std::string fh = file("job_fetch_reply"), fb = file("job_fetch_reply", 1);
    auto e = catchProto([&] { decodeReply({FrameRef{fh.data(), fh.size()}}); });
    CHECK(e && e->code() == "bad_buffer" && e->field() == "buffers");
    e = catchProto([&] {
        decodeReply({FrameRef{fh.data(), fh.size()}, FrameRef{fb.data(), fb.size()}, FrameRef{fb.data(), 1}});
    });
    CHECK(e && e->code() == "bad_buffer");
    e = catchProto([&] { unpackHeader(fh.data(), fh.size(), 10); });
    CHECK(e && e->code() == "too_large");
    // Deeply nested arrays are refused rather than recursing without bound.
    std::string deep(100000, '\x91');
    deep += '\xc0';
    std::string wrapped = "\x81\xa1v" + deep;
    e = catchProto([&] { unpackHeader(wrapped.data(), wrapped.size(), kMaxReplyHeaderBytes); });
    CHECK(e && e->code() == "malformed");
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s PATH/TO/protocol/golden\n", argv[0]);
        return 2;
    }
    golden = argv[1];
    try {
        const std::string text = readFile(golden + "/vectors.json");
        Value doc = vptest::JsonReader(text).parse();
        CHECK(doc.find("protocol")->asInt() == kProtocolVersion);
        testSha256Paths();
        Sha256::setAccelerated(false);
        testSha256();
        Sha256::setAccelerated(true);
        testSha256();
        testVectors(doc);
        testBuilders(doc);
        testContentHash(doc);
        testTypedReplies();
        testStreamFields(doc);
        testBrokenInput();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "test aborted: %s\n", e.what());
        return 1;
    }
    TEST_MAIN_END();
}
