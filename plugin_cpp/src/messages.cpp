#include "messages.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <stdexcept>

namespace vinpaint::proto {

BufferSpec Geometry::frameSpec() const {
    return BufferSpec{dtype, {static_cast<std::uint32_t>(height), static_cast<std::uint32_t>(width),
                              static_cast<std::uint32_t>(channels)}};
}
BufferSpec Geometry::maskSpec() const {
    return BufferSpec{maskDtype, {static_cast<std::uint32_t>(height), static_cast<std::uint32_t>(width), 1u}};
}

std::string contentHash(const Geometry &g, const std::vector<Sha256::Digest> &frameDigests,
                        const std::vector<Sha256::Digest> &maskDigests, const ReferenceDigests &references) {
    if (frameDigests.size() != static_cast<std::size_t>(g.frames) ||
        maskDigests.size() != static_cast<std::size_t>(g.frames))
        throw std::invalid_argument("contentHash: one digest per frame and per mask is needed");
    Sha256 h;
    h.update("vinpaint-clip-v1\n");
    h.update(std::to_string(g.frames) + " " + std::to_string(g.height) + " " + std::to_string(g.width) + " " +
             std::to_string(g.channels) + " " + px::wireDtype(g.dtype) + " " + px::wireDtype(g.maskDtype) + "\n");
    for (const auto &d : frameDigests) h.update(d.data(), d.size());
    for (const auto &d : maskDigests) h.update(d.data(), d.size());
    if (!references.empty()) {
        std::string line = "references";
        int previous = -1;
        for (const auto &[index, digest] : references) {
            if (index <= previous || index >= g.frames)
                throw std::invalid_argument("contentHash: reference indices must ascend and lie within the clip");
            previous = index;
            line += " " + std::to_string(index);
        }
        h.update(line + "\n");
        for (const auto &[index, digest] : references) h.update(digest.data(), digest.size());
    }
    return Sha256::hex(h.finish());
}

Value::Map overridesFromText(const std::string &text) {
    Value::Map out;
    std::string token;
    auto flush = [&] {
        if (token.empty()) return;
        const auto eq = token.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == token.size())
            throw std::invalid_argument("Engine settings takes KEY=VALUE pairs (e.g. shot.window=60), not '" + token + "'");
        const std::string key = token.substr(0, eq), text = token.substr(eq + 1);
        for (const auto &[k, v] : out)
            if (k == key) throw std::invalid_argument("Engine settings names '" + key + "' twice");
        // std::from_chars: the C locale's numbers whatever locale the host runs in.
        const char *first = text.data(), *last = text.data() + text.size();
        std::int64_t i = 0;
        double d = 0;
        if (auto r = std::from_chars(first, last, i); r.ec == std::errc() && r.ptr == last) {
            out.emplace_back(key, Value(i));
        } else if (auto q = std::from_chars(first, last, d); q.ec == std::errc() && q.ptr == last && std::isfinite(d)) {
            out.emplace_back(key, Value(d));
        } else if (text == "true" || text == "false") {
            out.emplace_back(key, Value(text == "true"));
        } else {
            out.emplace_back(key, Value(text));
        }
        token.clear();
    };
    for (char c : text) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',') flush();
        else token += c;
    }
    flush();
    return out;
}

Value helloBody(const std::string &client) {
    Value b = Value::map();
    if (!client.empty()) b.set("client", client.substr(0, 256));
    return b;
}

Value jobOpenBody(const Geometry &g, const std::string &hash, const Settings &s, const std::string &name,
                  const std::vector<int> &references) {
    Value b = Value::map();
    b.set("frames", g.frames);
    b.set("width", g.width);
    b.set("height", g.height);
    b.set("channels", g.channels);
    b.set("dtype", px::wireDtype(g.dtype));
    b.set("mask_dtype", px::wireDtype(g.maskDtype));
    b.set("content_hash", hash);
    Value st = Value::map();
    if (!s.preset.empty()) st.set("preset", s.preset);
    if (!s.variant.empty()) st.set("variant", s.variant);
    if (s.seed) st.set("seed", *s.seed);
    if (s.maskDilation) st.set("mask_dilation", *s.maskDilation);
    if (s.maskFeather) st.set("mask_feather", *s.maskFeather);
    if (!s.overrides.empty()) st.set("overrides", Value(s.overrides));
    b.set("settings", std::move(st));
    if (!name.empty()) b.set("name", name.substr(0, 256));
    if (!references.empty()) {
        Value::Array refs;
        for (int i : references) refs.emplace_back(i);
        b.set("references", Value(std::move(refs)));
    }
    return b;
}

Value jobUploadBody(const std::string &job, bool isMask, int index, const std::string &digestHex) {
    return jobUploadBody(job, isMask ? kKindMask : kKindFrame, index, digestHex);
}

Value jobUploadBody(const std::string &job, const char *kind, int index, const std::string &digestHex) {
    Value b = Value::map();
    b.set("job", job);
    b.set("kind", kind);
    b.set("index", index);
    if (!digestHex.empty()) b.set("digest", digestHex);
    return b;
}

Value jobBody(const std::string &job) {
    Value b = Value::map();
    b.set("job", job);
    return b;
}

Value jobStartBody(const std::string &job, bool stream) {
    Value b = jobBody(job);
    if (stream) b.set("stream", true);
    return b;
}

Value jobFetchBody(const std::string &job, int index, const std::string &layer) {
    Value b = jobBody(job);
    b.set("index", index);
    if (layer != kLayerFrame) b.set("layer", layer);
    return b;
}

bool HelloReply::serves(const std::string &feature) const {
    return std::find(features.begin(), features.end(), feature) != features.end();
}

// ---- reply parsing -------------------------------------------------------------------------------------------
namespace {
class Fields {
public:
    Fields(const Value &m, std::string prefix) : m_(m), prefix_(std::move(prefix)) {
        if (!m_.isMap()) throw ProtocolError("malformed", "'" + prefix_ + "' must be a map", prefix_);
    }
    [[noreturn]] void fail(const std::string &key, const std::string &what) const {
        const std::string path = prefix_ + "." + key;
        throw ProtocolError("malformed", "the daemon's reply field '" + path + "' " + what, path);
    }
    const Value *get(const std::string &key, bool required) const {
        const Value *v = m_.find(key);
        if (!v && required) fail(key, "is missing");
        return v;
    }
    std::int64_t integer(const std::string &key) const { return *optInt(key, true); }
    std::optional<std::int64_t> optInt(const std::string &key, bool required = false) const {
        const Value *v = get(key, required);
        if (!v) return std::nullopt;
        if (!v->isInt()) fail(key, std::string("must be an int, not ") + Value::kindName(v->kind()));
        return v->asInt();
    }
    double number(const std::string &key) const { return *optNumber(key, true); }
    std::optional<double> optNumber(const std::string &key, bool required = false) const {
        const Value *v = get(key, required);
        if (!v) return std::nullopt;
        if (!v->isNumber()) fail(key, std::string("must be a float, not ") + Value::kindName(v->kind()));
        return v->asNumber();
    }
    std::string str(const std::string &key, bool required = true) const {
        const Value *v = get(key, required);
        if (!v) return {};
        if (!v->isStr()) fail(key, std::string("must be a str, not ") + Value::kindName(v->kind()));
        return v->asStr();
    }
    bool boolean(const std::string &key) const { return *optBool(key, true); }
    std::optional<bool> optBool(const std::string &key, bool required = false) const {
        const Value *v = get(key, required);
        if (!v) return std::nullopt;
        if (!v->isBool()) fail(key, std::string("must be a bool, not ") + Value::kindName(v->kind()));
        return v->asBool();
    }
    std::vector<int> intList(const std::string &key) const {
        const Value *v = get(key, true);
        if (!v->isArray()) fail(key, "must be an array of ints");
        std::vector<int> out;
        for (const auto &e : v->asArray()) {
            if (!e.isInt() || e.asInt() < 0 || e.asInt() > INT32_MAX) fail(key, "must be an array of ints");
            out.push_back(static_cast<int>(e.asInt()));
        }
        return out;
    }
    std::vector<std::string> strList(const std::string &key) const {
        const Value *v = get(key, true);
        if (!v->isArray()) fail(key, "must be an array of str");
        std::vector<std::string> out;
        for (const auto &e : v->asArray()) {
            if (!e.isStr()) fail(key, "must be an array of str");
            out.push_back(e.asStr());
        }
        return out;
    }
    std::string job(const std::string &key = "job") const {
        std::string j = str(key);
        if (!isJobId(j)) fail(key, "is not a job id (32 lowercase hex chars)");
        return j;
    }
    Fields map(const std::string &key) const {
        const Value *v = get(key, true);
        return Fields(*v, prefix_ + "." + key);
    }
    px::Depth dtype(const std::string &key) const {
        auto d = px::depthFromWire(str(key));
        if (!d) fail(key, "must be \"u1\", \"u2\" or \"f4\"");
        return *d;
    }

private:
    const Value &m_;
    std::string prefix_;
};

int toInt(std::int64_t v) { return static_cast<int>(std::max<std::int64_t>(0, std::min<std::int64_t>(v, INT32_MAX))); }
}  // namespace

HelloReply parseHello(const Value &body) {
    Fields f(body, "body");
    HelloReply r;
    r.protocol = toInt(f.integer("protocol"));
    r.server = f.str("server");
    r.devices = f.strList("devices");
    r.presets = f.strList("presets");
    r.variants = f.strList("variants");
    Fields l = f.map("limits");
    r.maxMessageBytes = l.integer("max_message_bytes");
    r.maxHeaderBytes = l.integer("max_header_bytes");
    r.maxFrames = l.integer("max_frames");
    r.maxWidth = l.integer("max_width");
    r.maxHeight = l.integer("max_height");
    if (body.find("features")) r.features = f.strList("features");
    return r;
}

OpenReply parseOpen(const Value &body) {
    Fields f(body, "body");
    OpenReply r;
    r.job = f.job();
    r.created = f.boolean("created");
    r.state = f.str("state");
    r.haveFrames = f.intList("have_frames");
    r.haveMasks = f.intList("have_masks");
    if (body.find("have_references")) r.haveReferences = f.intList("have_references");
    if (auto w = f.optInt("windows")) {
        if (*w < 1 || *w > INT32_MAX) f.fail("windows", "must be an int from 1 to 2147483647");
        r.windows = static_cast<int>(*w);
    }
    return r;
}

UploadReply parseUpload(const Value &body) {
    Fields f(body, "body");
    UploadReply r;
    r.job = f.job();
    r.kind = f.str("kind");
    r.index = toInt(f.integer("index"));
    r.stored = f.boolean("stored");
    r.missingFrames = f.integer("missing_frames");
    r.missingMasks = f.integer("missing_masks");
    return r;
}

StartReply parseStart(const Value &body) {
    Fields f(body, "body");
    StartReply r;
    r.job = f.job();
    r.state = f.str("state");
    r.position = f.optInt("position");
    r.stream = f.optBool("stream").value_or(false);
    return r;
}

StatusReply parseStatus(const Value &body) {
    Fields f(body, "body");
    StatusReply r;
    r.job = f.job();
    r.state = f.str("state");
    r.progress = f.number("progress");
    r.phase = f.str("phase");
    r.step = f.integer("step");
    r.total = f.integer("total");
    r.elapsed = f.number("elapsed_s");
    r.eta = f.optNumber("eta_s");
    r.message = f.str("message");
    r.error = f.str("error", false);
    r.position = f.optInt("position");
    // The geometry sizes every later fetch, its timeout and the node's matte: one the protocol cannot have is a
    // daemon fault, refused here rather than allocated, waited on or drawn.
    auto dimension = [&](const char *key, std::int64_t lo, std::int64_t hi) {
        const std::int64_t v = f.integer(key);
        if (v < lo || v > hi) f.fail(key, "must be from " + std::to_string(lo) + " to " + std::to_string(hi) +
                                              ", not " + std::to_string(v));
        return static_cast<int>(v);
    };
    r.geometry.frames = dimension("frames", 1, INT32_MAX);
    r.geometry.width = dimension("width", 1, kMaxDim);
    r.geometry.height = dimension("height", 1, kMaxDim);
    r.geometry.channels = dimension("channels", 3, 4);
    r.geometry.dtype = f.dtype("dtype");
    r.geometry.maskDtype = f.dtype("mask_dtype");
    if (r.geometry.frameBytes() > kMaxFrameBytes)
        f.fail("width", "and height make a frame of " + std::to_string(r.geometry.frameBytes()) +
                            " bytes, more than the " + std::to_string(kMaxFrameBytes) + " a node takes");
    if (!std::isfinite(r.progress)) r.progress = 0;  // shown as a percentage: never a cast of NaN
    if (r.eta && !(std::isfinite(*r.eta) && *r.eta >= 0 && *r.eta < kMaxEtaSeconds)) r.eta.reset();  // unknown
    r.missingFrames = f.integer("missing_frames");
    r.missingMasks = f.integer("missing_masks");
    r.name = f.str("name", false);
    if (auto n = f.optInt("frames_done")) {
        if (*n < 0) f.fail("frames_done", "must not be negative");
        r.framesDone = *n;
    }
    return r;
}

FetchReply parseFetch(const Value &body) {
    Fields f(body, "body");
    FetchReply r;
    r.job = f.job();
    r.index = toInt(f.integer("index"));
    return r;
}

CancelReply parseCancel(const Value &body) {
    Fields f(body, "body");
    CancelReply r;
    r.job = f.job();
    r.state = f.str("state");
    return r;
}

}  // namespace vinpaint::proto
