// Bodies of the v1 messages the plugin sends and the replies it reads (SPEC.md section 6). Builders write
// fields in the spec's order; parsers check every field they use and throw ProtocolError("malformed", field).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "codec.h"
#include "sha256.h"

namespace vinpaint::proto {

struct Settings {
    std::string preset;                 // "" = daemon default
    std::string variant;                // "" = daemon default
    std::optional<int> seed;
    std::optional<int> maskDilation;
    std::optional<int> maskFeather;
    Value::Map overrides;               // dotted engine setting -> int/float/bool/str
};

// The node's "Engine settings" text -> settings.overrides: KEY=VALUE pairs separated by spaces, commas or new
// lines, as `vinpaint inpaint --set` takes them (a value is an int, a float, true/false, or else text). Throws
// std::invalid_argument naming the bad pair; the daemon checks names and ranges.
Value::Map overridesFromText(const std::string &text);

// An ETA beyond this (three years) is shown as unknown.
constexpr double kMaxEtaSeconds = 1e8;

struct Geometry {
    int frames = 0, width = 0, height = 0, channels = 3;
    px::Depth dtype = px::Depth::U8;
    px::Depth maskDtype = px::Depth::U8;
    std::size_t frameBytes() const {
        return static_cast<std::size_t>(width) * height * channels * px::bytesOf(dtype);
    }
    std::size_t maskBytes() const { return static_cast<std::size_t>(width) * height * px::bytesOf(maskDtype); }
    BufferSpec frameSpec() const;
    BufferSpec maskSpec() const;
};

// SPEC.md section 5: SHA-256 over the prefix, the geometry line and every item's digest; with reference frames
// (index, digest; ascending index), then the "references ..." line and their digests.
using ReferenceDigests = std::vector<std::pair<int, Sha256::Digest>>;
std::string contentHash(const Geometry &g, const std::vector<Sha256::Digest> &frameDigests,
                        const std::vector<Sha256::Digest> &maskDigests, const ReferenceDigests &references = {});

// job.upload's kinds.
constexpr const char *kKindFrame = "frame";
constexpr const char *kKindMask = "mask";
constexpr const char *kKindReference = "reference";
// job.fetch's layers.
constexpr const char *kLayerFrame = "frame";
constexpr const char *kLayerMatte = "matte";

Value helloBody(const std::string &client);
// `references`: the frame indices that get a painted clean frame (ascending); none: the field is left out.
Value jobOpenBody(const Geometry &g, const std::string &contentHash, const Settings &s, const std::string &name,
                  const std::vector<int> &references = {});
Value jobUploadBody(const std::string &job, bool isMask, int index, const std::string &digestHex);
Value jobUploadBody(const std::string &job, const char *kind, int index, const std::string &digestHex);
Value jobBody(const std::string &job);  // job.start, job.status, job.cancel, job.delete
// job.start; `stream` (feature "stream": start before every item is uploaded) is sent only when true, so a
// daemon without the feature never sees the field.
Value jobStartBody(const std::string &job, bool stream = false);
// `layer` "frame" (the default, left out of the body) or "matte".
Value jobFetchBody(const std::string &job, int index, const std::string &layer = kLayerFrame);

struct HelloReply {
    int protocol = 0;
    std::string server;
    std::vector<std::string> devices, presets, variants;
    std::int64_t maxMessageBytes = 0, maxHeaderBytes = 0, maxFrames = 0, maxWidth = 0, maxHeight = 0;
    // Optional parts of protocol 1 the daemon serves: "references", "matte", "stream", "partial_results".
    std::vector<std::string> features;
    bool serves(const std::string &feature) const;
};
struct OpenReply {
    std::string job, state;
    bool created = false;
    std::vector<int> haveFrames, haveMasks, haveReferences;
    std::optional<int> windows;  // feature "stream": how many windows the job trains in (1: the whole clip)
};
struct UploadReply {
    std::string job, kind;
    int index = 0;
    bool stored = false;
    std::int64_t missingFrames = 0, missingMasks = 0;
};
struct StartReply {
    std::string job, state;
    std::optional<std::int64_t> position;
    bool stream = false;  // queued before its upload was complete (a streaming start)
};
struct StatusReply {
    std::string job, state, phase, message, error, name;
    double progress = 0, elapsed = 0;
    std::optional<double> eta;
    std::int64_t step = 0, total = 0;
    std::optional<std::int64_t> position;
    Geometry geometry;
    std::int64_t missingFrames = 0, missingMasks = 0;
    std::optional<std::int64_t> framesDone;  // feature "partial_results": result frames on disk
};
struct FetchReply {
    std::string job;
    int index = 0;
};
struct CancelReply {
    std::string job, state;
};

HelloReply parseHello(const Value &body);
OpenReply parseOpen(const Value &body);
UploadReply parseUpload(const Value &body);
StartReply parseStart(const Value &body);
StatusReply parseStatus(const Value &body);
FetchReply parseFetch(const Value &body);
CancelReply parseCancel(const Value &body);

}  // namespace vinpaint::proto
