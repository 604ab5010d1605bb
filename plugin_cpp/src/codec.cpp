#include "codec.h"

#include <cstring>
#include <limits>

#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST
#endif
#include <msgpack.hpp>

static_assert(sizeof(float) == 4, "the wire's f4 is IEEE-754 float32");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vinpaint's plugin sends pixel buffers as they lie in memory: little-endian hosts only"
#endif

namespace vinpaint::proto {

// ---- Value -------------------------------------------------------------------------------------------------
const Value *Value::find(std::string_view key) const {
    if (!isMap()) return nullptr;
    for (const auto &kv : asMap())
        if (kv.first == key) return kv.second.isNil() ? nullptr : &kv.second;
    return nullptr;
}

Value &Value::set(const std::string &key, Value v) {
    Map &m = asMap();
    for (auto &kv : m)
        if (kv.first == key) {
            kv.second = std::move(v);
            return kv.second;
        }
    m.emplace_back(key, std::move(v));
    return m.back().second;
}

const char *Value::kindName(Kind k) {
    switch (k) {
        case Kind::Nil: return "nil";
        case Kind::Bool: return "bool";
        case Kind::Int: return "int";
        case Kind::Float: return "float";
        case Kind::Str: return "str";
        case Kind::Array: return "array";
        case Kind::Map: return "map";
    }
    return "?";
}

std::size_t BufferSpec::nbytes() const {
    std::size_t n = px::bytesOf(dtype);
    for (auto d : shape) n *= d;
    return n;
}

// ---- encoding ----------------------------------------------------------------------------------------------
namespace {
// msgpack-c's pack_double writes integral doubles (1.0) as ints; the spec wants every float as float64 (0xcb).
void packFloat64(msgpack::sbuffer &buf, double d) {
    std::uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    char out[9];
    out[0] = static_cast<char>(0xcb);
    for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<char>((bits >> (56 - 8 * i)) & 0xff);
    buf.write(out, sizeof out);
}

void packValue(msgpack::sbuffer &buf, msgpack::packer<msgpack::sbuffer> &pk, const Value &v) {
    switch (v.kind()) {
        case Value::Kind::Nil: pk.pack_nil(); break;
        case Value::Kind::Bool: v.asBool() ? pk.pack_true() : pk.pack_false(); break;
        case Value::Kind::Int: pk.pack_int64(v.asInt()); break;  // msgpack-c picks the smallest encoding
        case Value::Kind::Float: packFloat64(buf, v.asNumber()); break;
        case Value::Kind::Str:
            pk.pack_str(static_cast<std::uint32_t>(v.asStr().size()));
            pk.pack_str_body(v.asStr().data(), static_cast<std::uint32_t>(v.asStr().size()));
            break;
        case Value::Kind::Array:
            pk.pack_array(static_cast<std::uint32_t>(v.asArray().size()));
            for (const auto &e : v.asArray()) packValue(buf, pk, e);
            break;
        case Value::Kind::Map:
            pk.pack_map(static_cast<std::uint32_t>(v.asMap().size()));
            for (const auto &kv : v.asMap()) {
                pk.pack_str(static_cast<std::uint32_t>(kv.first.size()));
                pk.pack_str_body(kv.first.data(), static_cast<std::uint32_t>(kv.first.size()));
                packValue(buf, pk, kv.second);
            }
            break;
    }
}
}  // namespace

std::string pack(const Value &v) {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(&buf);
    packValue(buf, pk, v);
    return std::string(buf.data(), buf.size());
}

std::string encodeRequestHeader(const std::string &type, const std::string &id, const Value &body,
                                const std::vector<BufferSpec> &buffers) {
    if (!isValidRequestId(id)) throw ProtocolError("malformed", "request id '" + id + "' is not valid", "id");
    Value h = Value::map();
    h.set("v", kProtocolVersion);
    h.set("type", type);
    h.set("id", id);
    h.set("body", body.isMap() ? body : Value::map());
    if (!buffers.empty()) {
        Value::Array specs;
        for (const auto &b : buffers) {
            Value d = Value::map();
            d.set("dtype", px::wireDtype(b.dtype));
            Value::Array shape;
            for (auto s : b.shape) shape.emplace_back(static_cast<std::int64_t>(s));
            d.set("shape", Value(std::move(shape)));
            specs.push_back(std::move(d));
        }
        h.set("buffers", Value(std::move(specs)));
    }
    return pack(h);
}

// ---- decoding ----------------------------------------------------------------------------------------------
namespace {
Value convert(const msgpack::object &o) {
    switch (o.type) {
        case msgpack::type::NIL: return Value();
        case msgpack::type::BOOLEAN: return Value(o.via.boolean);
        case msgpack::type::POSITIVE_INTEGER:
            if (o.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                throw ProtocolError("malformed", "the header holds an int beyond 64-bit signed range", "header");
            return Value(static_cast<std::int64_t>(o.via.u64));
        case msgpack::type::NEGATIVE_INTEGER: return Value(o.via.i64);
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64: return Value(o.via.f64);
        case msgpack::type::STR: return Value(std::string(o.via.str.ptr, o.via.str.size));
        case msgpack::type::ARRAY: {
            Value::Array a;
            a.reserve(o.via.array.size);
            for (std::uint32_t i = 0; i < o.via.array.size; ++i) a.push_back(convert(o.via.array.ptr[i]));
            return Value(std::move(a));
        }
        case msgpack::type::MAP: {
            Value::Map m;
            m.reserve(o.via.map.size);
            for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
                const auto &kv = o.via.map.ptr[i];
                if (kv.key.type != msgpack::type::STR)
                    throw ProtocolError("malformed", "the header has a map key that is not a str", "header");
                Value val = convert(kv.val);
                if (!val.isNil()) m.emplace_back(std::string(kv.key.via.str.ptr, kv.key.via.str.size), std::move(val));
            }
            return Value(std::move(m));
        }
        case msgpack::type::BIN:
            throw ProtocolError("malformed", "the header contains binary data (bin); only str is allowed", "header");
        default:
            throw ProtocolError("malformed", "the header contains a msgpack ext type", "header");
    }
}
}  // namespace

Value unpackHeader(const void *data, std::size_t size, std::size_t maxBytes) {
    if (size > maxBytes)
        throw ProtocolError("too_large",
                            "the header is " + std::to_string(size) + " bytes; at most " + std::to_string(maxBytes) +
                                " are accepted",
                            "header");
    const auto *p = static_cast<const char *>(data);
    std::size_t offset = 0;
    msgpack::object_handle oh;
    try {
        // Element counts can never exceed the byte count; nesting is limited so a hostile header cannot
        // exhaust the stack.
        const std::size_t n = size;
        msgpack::unpack_limit limit(n, n, n, n, n, 32);
        oh = msgpack::unpack(p, size, offset, nullptr, nullptr, limit);
    } catch (const msgpack::insufficient_bytes &) {
        throw ProtocolError("malformed", "the header is not valid msgpack (it is truncated)", "header");
    } catch (const std::exception &e) {
        throw ProtocolError("malformed", std::string("the header is not valid msgpack (") + e.what() + ")",
                            "header");
    }
    if (offset != size) throw ProtocolError("malformed", "the header has bytes after its msgpack map", "header");
    if (oh.get().type != msgpack::type::MAP)
        throw ProtocolError("malformed", "the header is a msgpack value that is not a map", "header");
    return convert(oh.get());
}

bool isValidRequestId(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '_' || c == ':' || c == '-';
        if (!ok) return false;
    }
    return true;
}

namespace {
bool isLowerHex(std::string_view s, std::size_t len) {
    if (s.size() != len) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}
}  // namespace

bool isJobId(std::string_view s) { return isLowerHex(s, 32); }
bool isHashHex(std::string_view s) { return isLowerHex(s, 64); }

BufferSpec decodeBufferSpec(const Value &d, const std::string &where) {
    if (!d.isMap()) throw ProtocolError("bad_buffer", where + " must be a map with 'dtype' and 'shape'", where);
    const Value *dtype = d.find("dtype");
    std::optional<px::Depth> depth;
    if (dtype && dtype->isStr()) depth = px::depthFromWire(dtype->asStr());
    if (!depth)
        throw ProtocolError("bad_buffer", where + ".dtype must be \"u1\", \"u2\" or \"f4\"", where + ".dtype");
    const Value *shape = d.find("shape");
    BufferSpec spec;
    spec.dtype = *depth;
    bool good = shape && shape->isArray() && !shape->asArray().empty() && shape->asArray().size() <= 4;
    if (good) {
        for (const auto &s : shape->asArray()) {
            if (!s.isInt() || s.asInt() < 1 || s.asInt() > kMaxDim) {
                good = false;
                break;
            }
            spec.shape.push_back(static_cast<std::uint32_t>(s.asInt()));
        }
    }
    if (!good)
        throw ProtocolError("bad_buffer", where + ".shape must be 1 to 4 ints from 1 to 65535", where + ".shape");
    return spec;
}

Reply decodeReply(const std::vector<FrameRef> &frames, std::size_t maxHeaderBytes) {
    if (frames.empty()) throw ProtocolError("malformed", "the reply has no frames", "header");
    Value h = unpackHeader(frames[0].data, frames[0].size, maxHeaderBytes);
    const Value *v = h.find("v");
    if (!v || !v->isInt()) throw ProtocolError("malformed", "the reply has no int 'v' (protocol version)", "v");
    if (v->asInt() != kProtocolVersion)
        throw ProtocolError("version_mismatch",
                            "daemon speaks protocol version " + std::to_string(v->asInt()) +
                                "; this client speaks version " + std::to_string(kProtocolVersion),
                            "v");
    Reply r;
    const Value *type = h.find("type");
    if (!type || !type->isStr() || type->asStr().empty())
        throw ProtocolError("malformed", "the reply's 'type' must be a non-empty str", "type");
    r.type = type->asStr();
    const Value *re = h.find("re");
    if (!re || !re->isStr()) throw ProtocolError("malformed", "the reply's 're' must be a str", "re");
    r.re = re->asStr();
    const Value *status = h.find("status");
    if (!status || !status->isStr() || (status->asStr() != "ok" && status->asStr() != "error"))
        throw ProtocolError("malformed", "the reply's 'status' must be \"ok\" or \"error\"", "status");
    r.status = status->asStr();
    const Value *body = h.find("body");
    if (body && !body->isMap()) throw ProtocolError("malformed", "the reply's 'body' must be a map", "body");
    r.body = body ? *body : Value::map();
    if (r.status == "error") {
        const Value *e = h.find("error");
        const Value *code = e ? e->find("code") : nullptr;
        const Value *msg = e ? e->find("message") : nullptr;
        if (!e || !e->isMap() || !code || !code->isStr() || !msg || !msg->isStr())
            throw ProtocolError("malformed", "an error reply needs 'error' with str 'code' and 'message'", "error");
        ErrorInfo info{code->asStr(), msg->asStr(), {}};
        if (const Value *f = e->find("field")) {
            if (!f->isStr()) throw ProtocolError("malformed", "the reply's 'error.field' must be a str", "error.field");
            info.field = f->asStr();
        }
        r.error = std::move(info);
    }
    if (const Value *bufs = h.find("buffers")) {
        if (!bufs->isArray()) throw ProtocolError("malformed", "the reply's 'buffers' must be an array", "buffers");
        if (bufs->asArray().size() > kMaxBuffers)
            throw ProtocolError("too_large", "the reply describes more than 4 buffers", "buffers");
        for (std::size_t i = 0; i < bufs->asArray().size(); ++i)
            r.specs.push_back(decodeBufferSpec(bufs->asArray()[i], "buffers[" + std::to_string(i) + "]"));
    }
    if (frames.size() - 1 != r.specs.size())
        throw ProtocolError("bad_buffer",
                            "the header describes " + std::to_string(r.specs.size()) + " buffer(s) but " +
                                std::to_string(frames.size() - 1) + " pixel frame(s) follow it",
                            "buffers");
    for (std::size_t i = 0; i < r.specs.size(); ++i) {
        const FrameRef &f = frames[i + 1];
        if (f.size != r.specs[i].nbytes())
            throw ProtocolError("bad_buffer",
                                "buffer " + std::to_string(i) + " has " + std::to_string(f.size) + " bytes; " +
                                    std::to_string(r.specs[i].nbytes()) + " expected",
                                "buffers[" + std::to_string(i) + "]");
        r.buffers.push_back(f);
    }
    return r;
}

}  // namespace vinpaint::proto
