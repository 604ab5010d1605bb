// The C++ codec of protocol v1 (protocol/SPEC.md): msgpack headers <-> Value trees, request encoding in the
// spec's field order (so the golden vectors reproduce byte for byte) and reply decoding with every envelope check.
// No sockets here: frames are (pointer, size) pairs, so the codec is tested against the golden files directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "pixels.h"

namespace vinpaint::proto {

constexpr int kProtocolVersion = 1;
constexpr std::size_t kMaxRequestHeaderBytes = 64 * 1024;
constexpr std::size_t kMaxReplyHeaderBytes = 16 * 1024 * 1024;
// The node asks only for short replies (never job.list or job.history), and a decoded header costs up to ~64x its
// bytes in memory: it takes 1 MiB, so a faulty daemon cannot make it hold a gigabyte per render thread.
constexpr std::size_t kMaxNodeReplyHeaderBytes = 1024 * 1024;
// The largest frame a node takes from a daemon (a 16K float RGBA plate is 2.3 GB): the bound on a job's geometry,
// so on every fetch's size and timeout, and the connection's ZMQ_MAXMSGSIZE.
constexpr std::size_t kMaxFrameBytes = std::size_t{4} << 30;
constexpr std::size_t kMaxBuffers = 4;
constexpr std::uint32_t kMaxDim = 65535;
constexpr const char *kDefaultEndpoint = "tcp://127.0.0.1:5581";

// A violation of the spec, with its section 7 code and the dotted field it concerns.
class ProtocolError : public std::runtime_error {
public:
    ProtocolError(std::string code, const std::string &message, std::string field = {})
        : std::runtime_error(message), code_(std::move(code)), field_(std::move(field)) {}
    const std::string &code() const noexcept { return code_; }
    const std::string &field() const noexcept { return field_; }

private:
    std::string code_, field_;
};

// A msgpack value as the spec allows it in headers (no bin, no ext; str map keys, in wire order).
class Value {
public:
    using Array = std::vector<Value>;
    using Map = std::vector<std::pair<std::string, Value>>;
    enum class Kind { Nil, Bool, Int, Float, Str, Array, Map };

    Value() = default;
    Value(bool b) : v_(b) {}
    template <typename I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
    Value(I i) : v_(static_cast<std::int64_t>(i)) {}
    Value(double d) : v_(d) {}
    Value(const char *s) : v_(std::string(s)) {}
    Value(std::string s) : v_(std::move(s)) {}
    Value(Array a) : v_(std::move(a)) {}
    Value(Map m) : v_(std::move(m)) {}

    Kind kind() const { return static_cast<Kind>(v_.index()); }
    bool isNil() const { return kind() == Kind::Nil; }
    bool isBool() const { return kind() == Kind::Bool; }
    bool isInt() const { return kind() == Kind::Int; }
    bool isNumber() const { return kind() == Kind::Int || kind() == Kind::Float; }
    bool isStr() const { return kind() == Kind::Str; }
    bool isArray() const { return kind() == Kind::Array; }
    bool isMap() const { return kind() == Kind::Map; }

    bool asBool() const { return std::get<bool>(v_); }
    std::int64_t asInt() const { return std::get<std::int64_t>(v_); }
    double asNumber() const { return isInt() ? static_cast<double>(asInt()) : std::get<double>(v_); }
    const std::string &asStr() const { return std::get<std::string>(v_); }
    const Array &asArray() const { return std::get<Array>(v_); }
    const Map &asMap() const { return std::get<Map>(v_); }
    Map &asMap() { return std::get<Map>(v_); }

    // Map lookup; nil values count as absent (SPEC.md section 3).
    const Value *find(std::string_view key) const;
    // Appends key (or replaces its value) keeping insertion order; the value must be a map.
    Value &set(const std::string &key, Value v);

    static Value map() { return Value(Map{}); }
    static const char *kindName(Kind k);

private:
    std::variant<std::monostate, bool, std::int64_t, double, std::string, Array, Map> v_;
};

struct BufferSpec {
    px::Depth dtype = px::Depth::U8;
    std::vector<std::uint32_t> shape;
    std::size_t nbytes() const;
    bool operator==(const BufferSpec &o) const { return dtype == o.dtype && shape == o.shape; }
};

// One frame of a received multipart message.
struct FrameRef {
    const void *data = nullptr;
    std::size_t size = 0;
};

// Encodes a msgpack value: smallest int encodings, floats as float64, strings as str (SPEC.md section 3).
std::string pack(const Value &v);

// Decodes frame 0: exactly one msgpack map with str keys and no bin/ext, at most maxBytes bytes; nils dropped.
// Throws ProtocolError "malformed" (field "header") or "too_large".
Value unpackHeader(const void *data, std::size_t size, std::size_t maxBytes);

// Header bytes of a request: {"v", "type", "id", "body", "buffers"?} in this order.
std::string encodeRequestHeader(const std::string &type, const std::string &id, const Value &body,
                                const std::vector<BufferSpec> &buffers = {});

bool isValidRequestId(std::string_view id);
bool isJobId(std::string_view s);    // 32 lowercase hex
bool isHashHex(std::string_view s);  // 64 lowercase hex

struct ErrorInfo {
    std::string code, message, field;
};

// A decoded, envelope-checked reply. The body's fields are checked by messages.h.
struct Reply {
    std::string type, re, status;
    std::optional<ErrorInfo> error;
    Value body;
    std::vector<BufferSpec> specs;
    std::vector<FrameRef> buffers;  // point into the caller's frames
    bool ok() const { return status == "ok"; }
};

// Validates a reply's envelope and its buffer frames (count and exact byte lengths). Throws ProtocolError:
// "version_mismatch" (naming both versions), "malformed", "too_large", "bad_buffer".
Reply decodeReply(const std::vector<FrameRef> &frames, std::size_t maxHeaderBytes = kMaxReplyHeaderBytes);

// Parses one buffer descriptor (used for replies and in tests); `where` is e.g. "buffers[0]".
BufferSpec decodeBufferSpec(const Value &v, const std::string &where);

}  // namespace vinpaint::proto
