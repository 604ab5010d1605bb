#include "host.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <iostream>
#include <thread>

#include "npy.h"

namespace harness {

Host *Host::current = nullptr;

std::string jsonEscape(const std::string &s) {
    std::string o;
    for (char c : s) {
        switch (c) {
            case '"': o += "\\\""; break;
            case '\\': o += "\\\\"; break;
            case '\n': o += "\\n"; break;
            case '\t': o += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char b[8];
                    std::snprintf(b, sizeof b, "\\u%04x", c);
                    o += b;
                } else {
                    o += c;
                }
        }
    }
    return o;
}

// ---- PropertySet ------------------------------------------------------------------------------------------------
int Prop::size() const {
    switch (type) {
        case Int: return static_cast<int>(i.size());
        case Double: return static_cast<int>(d.size());
        case String: return static_cast<int>(s.size());
        case Pointer: return static_cast<int>(p.size());
    }
    return 0;
}
namespace {
// The host's own property: known to the table, of the table's type (a parameter value: any type) and, for a
// fixed dimension, exactly that many values.
Prop &hostProp(std::map<std::string, Prop> &props, const std::string &n, Prop::Type type, std::size_t count) {
    const PropSpec *spec = findPropSpec(n);
    if (!spec) throw std::logic_error("harness: '" + n + "' is not in the harness's property table (props.cpp)");
    const Prop::Type want = spec->type == PropType::Int ? Prop::Int : spec->type == PropType::Double ? Prop::Double
                          : spec->type == PropType::String ? Prop::String : spec->type == PropType::Pointer ? Prop::Pointer : type;
    if (want != type) throw std::logic_error("harness: '" + n + "' set with the wrong type");
    if (spec->dimension > 0 && count != static_cast<std::size_t>(spec->dimension) && count != 0)
        throw std::logic_error("harness: '" + n + "' set with " + std::to_string(count) + " values, its dimension is " +
                               std::to_string(spec->dimension));
    Prop &p = props[n];
    p.type = type;
    p.dimension = spec->dimension;
    return p;
}
}  // namespace

void PropertySet::declare(const std::string &n) {
    std::lock_guard<std::recursive_mutex> l(mutex);
    const PropSpec *spec = findPropSpec(n);
    if (!spec) throw std::logic_error("harness: '" + n + "' is not in the harness's property table (props.cpp)");
    const std::size_t d = static_cast<std::size_t>(spec->dimension);
    switch (spec->type) {
        case PropType::Int: hostProp(props, n, Prop::Int, d).i.assign(d, 0); break;
        case PropType::Double: hostProp(props, n, Prop::Double, d).d.assign(d, 0.0); break;
        case PropType::String: hostProp(props, n, Prop::String, d).s.assign(d, ""); break;
        case PropType::Pointer: hostProp(props, n, Prop::Pointer, d).p.assign(d, nullptr); break;
        case PropType::ParamValue: break;  // made with the parameter's type by paramDefine
    }
}
void PropertySet::setInt(const std::string &n, std::vector<int> v) {
    std::lock_guard<std::recursive_mutex> l(mutex);
    hostProp(props, n, Prop::Int, v.size()).i = std::move(v);
}
void PropertySet::setDouble(const std::string &n, std::vector<double> v) {
    std::lock_guard<std::recursive_mutex> l(mutex);
    hostProp(props, n, Prop::Double, v.size()).d = std::move(v);
}
void PropertySet::setString(const std::string &n, std::vector<std::string> v) {
    std::lock_guard<std::recursive_mutex> l(mutex);
    hostProp(props, n, Prop::String, v.size()).s = std::move(v);
}
void PropertySet::setPointer(const std::string &n, std::vector<void *> v) {
    std::lock_guard<std::recursive_mutex> l(mutex);
    hostProp(props, n, Prop::Pointer, v.size()).p = std::move(v);
}
int PropertySet::getInt(const std::string &n, int idx, int fallback) const {
    std::lock_guard<std::recursive_mutex> l(mutex);
    auto it = props.find(n);
    if (it == props.end() || it->second.type != Prop::Int || idx >= static_cast<int>(it->second.i.size())) return fallback;
    return it->second.i[idx];
}
double PropertySet::getDouble(const std::string &n, int idx, double fallback) const {
    std::lock_guard<std::recursive_mutex> l(mutex);
    auto it = props.find(n);
    if (it == props.end() || it->second.type != Prop::Double || idx >= static_cast<int>(it->second.d.size())) return fallback;
    return it->second.d[idx];
}
std::string PropertySet::getString(const std::string &n, int idx, const std::string &fallback) const {
    std::lock_guard<std::recursive_mutex> l(mutex);
    auto it = props.find(n);
    if (it == props.end() || it->second.type != Prop::String || idx >= static_cast<int>(it->second.s.size())) return fallback;
    return it->second.s[idx];
}
std::vector<std::string> PropertySet::strings(const std::string &n) const {
    std::lock_guard<std::recursive_mutex> l(mutex);
    auto it = props.find(n);
    if (it == props.end() || it->second.type != Prop::String) return {};
    return it->second.s;
}
bool PropertySet::has(const std::string &n) const {
    std::lock_guard<std::recursive_mutex> l(mutex);
    return props.count(n) != 0;
}

Param *ParamSet::find(const std::string &name) {
    for (auto &p : params)
        if (p->name == name) return p.get();
    return nullptr;
}

Clip *Effect::clip(const std::string &name) {
    auto it = clips.find(name);
    return it == clips.end() ? nullptr : it->second.get();
}

// ---- pixels -----------------------------------------------------------------------------------------------------
const char *depthName(Depth d) {
    switch (d) {
        case Depth::Byte: return kOfxBitDepthByte;
        case Depth::Short: return kOfxBitDepthShort;
        case Depth::Half: return kOfxBitDepthHalf;
        case Depth::Float: return kOfxBitDepthFloat;
    }
    return kOfxBitDepthNone;
}
std::size_t depthBytes(Depth d) { return d == Depth::Byte ? 1 : d == Depth::Short || d == Depth::Half ? 2 : 4; }

// IEEE 754 binary16 from a float, rounding to nearest even (the harness's values are finite, 0..1 mostly).
std::uint16_t floatToHalf(float f) {
    std::uint32_t x;
    std::memcpy(&x, &f, 4);
    const std::uint32_t sign = (x >> 16) & 0x8000u;
    const int exp = static_cast<int>((x >> 23) & 0xffu) - 127 + 15;
    std::uint32_t mant = x & 0x7fffffu;
    if (((x >> 23) & 0xffu) == 0xffu) return static_cast<std::uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u));
    if (exp >= 31) return static_cast<std::uint16_t>(sign | 0x7c00u);
    if (exp <= 0) {
        if (exp < -10) return static_cast<std::uint16_t>(sign);
        mant |= 0x800000u;
        const int shift = 14 - exp;
        std::uint32_t h = mant >> shift;
        const std::uint32_t rest = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (h & 1u))) ++h;
        return static_cast<std::uint16_t>(sign | h);
    }
    std::uint32_t h = (static_cast<std::uint32_t>(exp) << 10) | (mant >> 13);
    const std::uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return static_cast<std::uint16_t>(sign | h);
}

namespace {
void storeValue(unsigned char *p, Depth d, float v) {
    switch (d) {
        case Depth::Byte: *p = static_cast<unsigned char>(std::lround(std::clamp(v, 0.f, 1.f) * 255.f)); break;
        case Depth::Short: {
            const auto x = static_cast<std::uint16_t>(std::lround(std::clamp(v, 0.f, 1.f) * 65535.f));
            std::memcpy(p, &x, 2);
            break;
        }
        case Depth::Half: {
            const std::uint16_t x = floatToHalf(v);
            std::memcpy(p, &x, 2);
            break;
        }
        case Depth::Float: std::memcpy(p, &v, 4); break;
    }
}

class NpyDirectory : public FrameProvider {
public:
    explicit NpyDirectory(const std::string &dir) {
        DIR *d = opendir(dir.c_str());
        if (!d) throw std::runtime_error("cannot list " + dir);
        std::vector<std::string> names;
        while (dirent *e = readdir(d)) {
            std::string n = e->d_name;
            if (n.size() > 4 && n.substr(n.size() - 4) == ".npy") names.push_back(n);
        }
        closedir(d);
        std::sort(names.begin(), names.end());
        if (names.empty()) throw std::runtime_error("no .npy frames in " + dir);
        for (const auto &n : names) frames_.push_back(readNpy(dir + "/" + n));
        const auto &a = frames_[0];
        if (a.shape.size() < 2) throw std::runtime_error(dir + ": frames must be [H,W] or [H,W,C]");
        h_ = static_cast<int>(a.shape[0]);
        w_ = static_cast<int>(a.shape[1]);
        // Frames may differ in size (a plate whose region grows, as a rotation makes it): each its own.
        for (const auto &f : frames_)
            if (f.shape.size() < 2 || f.shape[0] < 1 || f.shape[1] < 1)
                throw std::runtime_error(dir + ": frames must be [H,W] or [H,W,C]");
    }
    int width() const override { return w_; }
    int height() const override { return h_; }
    int frameWidth(int i) const override { return static_cast<int>(frames_.at(i).shape[1]); }
    int frameHeight(int i) const override { return static_cast<int>(frames_.at(i).shape[0]); }
    int frames() const override { return static_cast<int>(frames_.size()); }
    FloatFrame frame(int i, int comps) const override {
        const NpyArray &a = frames_.at(i);
        const int src = a.shape.size() == 3 ? static_cast<int>(a.shape[2]) : 1;
        const int w = frameWidth(i), h = frameHeight(i);
        FloatFrame f;
        f.width = w;
        f.height = h;
        f.comps = comps;
        f.v.resize(static_cast<std::size_t>(w) * h * comps);
        for (std::size_t px = 0, n = static_cast<std::size_t>(w) * h; px < n; ++px) {
            float in[4] = {0, 0, 0, 1};
            for (int c = 0; c < src && c < 4; ++c) {
                const std::size_t k = px * src + c;
                if (a.dtype == "u1") in[c] = a.data[k] / 255.f;
                else if (a.dtype == "u2") {
                    std::uint16_t x;
                    std::memcpy(&x, &a.data[k * 2], 2);
                    in[c] = x / 65535.f;
                } else {
                    std::memcpy(&in[c], &a.data[k * 4], 4);
                }
            }
            if (src == 1) in[1] = in[2] = in[3] = in[0];  // a mask served with more channels keeps its value in all
            for (int c = 0; c < comps; ++c) f.v[px * comps + c] = comps == 1 ? in[0] : in[c];
        }
        return f;
    }

private:
    std::vector<NpyArray> frames_;
    int w_ = 0, h_ = 0;
};

class Synthetic : public FrameProvider {
public:
    Synthetic(int w, int h, int t, bool mask) : w_(w), h_(h), t_(t), mask_(mask) {}
    int width() const override { return w_; }
    int height() const override { return h_; }
    int frames() const override { return t_; }
    FloatFrame frame(int i, int comps) const override {
        FloatFrame f;
        f.width = w_;
        f.height = h_;
        f.comps = comps;
        f.v.resize(static_cast<std::size_t>(w_) * h_ * comps);
        const float cx = w_ * (0.3f + 0.4f * i / std::max(t_, 1)), cy = h_ * 0.5f, r = std::max(2.f, h_ * 0.15f);
        for (int y = 0; y < h_; ++y)
            for (int x = 0; x < w_; ++x) {
                float *p = &f.v[(static_cast<std::size_t>(y) * w_ + x) * comps];
                const bool inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r;
                if (mask_) {
                    for (int c = 0; c < comps; ++c) p[c] = inside ? 1.f : 0.f;
                    continue;
                }
                const float rgb[4] = {float((x + 3 * i) % 64) / 63.f, float(y) / std::max(h_ - 1, 1),
                                      float((x + y) % 32) / 31.f, 1.f};
                for (int c = 0; c < comps; ++c) p[c] = comps == 1 ? rgb[0] : rgb[c];
            }
        return f;
    }

private:
    int w_, h_, t_;
    bool mask_;
};
}  // namespace

std::unique_ptr<FrameProvider> npyDirectory(const std::string &dir) { return std::make_unique<NpyDirectory>(dir); }
std::unique_ptr<FrameProvider> syntheticClip(int w, int h, int t, bool mask) {
    return std::make_unique<Synthetic>(w, h, t, mask);
}

std::vector<unsigned char> ImageLayout::packed() const {
    const std::size_t pix = depthBytes(depth) * comps, row = pix * width;
    std::vector<unsigned char> out(row * height);
    const unsigned char *base = store->data() + dataOffset;
    for (int r = 0; r < height; ++r) {
        const int yi = height - 1 - r;  // bottom-up image row for top-down output row r
        std::memcpy(&out[r * row], base + static_cast<std::ptrdiff_t>(yi) * rowBytes, row);
    }
    return out;
}

// ---- the host object ------------------------------------------------------------------------------------------
void Host::event(const std::string &json) {
    // Every event carries "t": seconds since the host started, so benches can time phases.
    static const auto start = std::chrono::steady_clock::now();
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char stamp[48];
    std::snprintf(stamp, sizeof stamp, "{\"t\": %.4f, ", t);
    std::lock_guard<std::mutex> l(logMutex_);
    std::cout << (json.size() > 1 && json[0] == '{' ? stamp + json.substr(1) : json) << std::endl;
}

void Host::refused(const char *call, const char *name, OfxStatus status, const std::string &why) {
    ++refusals_;
    event("{\"event\": \"refused\", \"call\": \"" + jsonEscape(call) + "\", \"property\": \"" +
          jsonEscape(name ? name : "") + "\", \"status\": " + std::to_string(status) + ", \"why\": \"" +
          jsonEscape(why) + "\"}");
}

int Host::outstandingImages() const {
    std::lock_guard<std::mutex> l(imagesMutex_);
    return static_cast<int>(images_.size());
}

void Host::originAt(double time, int *x, int *y) const {
    const auto it = opt_.frameOrigins.find(static_cast<int>(std::lround(time)));
    *x = it == opt_.frameOrigins.end() ? opt_.originX : it->second.first;
    *y = it == opt_.frameOrigins.end() ? opt_.originY : it->second.second;
}

void Host::scaledRod(double time, int fullW, int fullH, int *x1, int *y1, int *w, int *h) const {
    const double s = scale_;
    int ox = 0, oy = 0;
    originAt(time, &ox, &oy);
    const double fx1 = ox * s, fy1 = oy * s;
    *x1 = static_cast<int>(std::floor(fx1));
    *y1 = static_cast<int>(std::floor(fy1));
    *w = static_cast<int>(std::ceil((ox + fullW) * s)) - *x1;
    *h = static_cast<int>(std::ceil((oy + fullH) * s)) - *y1;
}

// One field of a frame with each of its lines doubled into the other field's line above it (parity 0: the lower
// field, lines y = 0, 2, 4 ... counted from the bottom in pixel coordinates; 1: the upper field).
static void doubleField(FloatFrame &f, int parity, int originY) {
    const std::size_t row = static_cast<std::size_t>(f.width) * f.comps;
    for (int r = 0; r < f.height; ++r) {  // r: top-down storage row
        const int y = originY + (f.height - 1 - r);
        if (((y % 2) + 2) % 2 == parity) continue;
        const int from = parity == 0 ? r + 1 : r - 1;  // the field line just below (lower) or above (upper)
        const int src = std::clamp(from, 0, f.height - 1);
        std::copy_n(&f.v[static_cast<std::size_t>(src) * row], row, &f.v[static_cast<std::size_t>(r) * row]);
    }
}

// A proxy-scale version of a frame, filtered as hosts filter their proxies: each pixel is the area average of the
// full-resolution pixels its footprint covers (shares of the cells at its edges). The footprint of top-down row r
// is [r, r + 1) * height / h whichever way rows are counted, since the scaled frame spans the whole one.
static FloatFrame downsample(const FloatFrame &f, int w, int h) {
    FloatFrame o;
    o.width = w;
    o.height = h;
    o.comps = f.comps;
    o.v.assign(static_cast<std::size_t>(w) * h * f.comps, 0.f);
    const double sx = static_cast<double>(f.width) / w, sy = static_cast<double>(f.height) / h;
    auto share = [](int cell, double lo, double hi) { return std::min(cell + 1.0, hi) - std::max<double>(cell, lo); };
    for (int r = 0; r < h; ++r) {
        const double ylo = r * sy, yhi = ylo + sy;
        for (int x = 0; x < w; ++x) {
            const double xlo = x * sx, xhi = xlo + sx;
            std::vector<double> sum(static_cast<std::size_t>(f.comps), 0.0);
            double weight = 0;
            for (int sr = static_cast<int>(std::floor(ylo)); sr < std::min<int>(f.height, std::ceil(yhi)); ++sr) {
                for (int sc = static_cast<int>(std::floor(xlo)); sc < std::min<int>(f.width, std::ceil(xhi)); ++sc) {
                    const double wgt = share(sr, ylo, yhi) * share(sc, xlo, xhi);
                    if (wgt <= 0) continue;
                    for (int c = 0; c < f.comps; ++c)
                        sum[c] += wgt * f.v[(static_cast<std::size_t>(sr) * f.width + sc) * f.comps + c];
                    weight += wgt;
                }
            }
            for (int c = 0; c < f.comps; ++c)
                o.v[(static_cast<std::size_t>(r) * w + x) * f.comps + c] = static_cast<float>(sum[c] / weight);
        }
    }
    return o;
}

OfxPropertySetHandle Host::makeImage(double time, int width, int height, const FloatFrame *content, Depth depth,
                                     int comps, ImageLayout *layout, const char *field) {
    auto img = std::make_unique<Image>();
    const std::size_t pix = depthBytes(depth) * comps;
    const std::ptrdiff_t row = static_cast<std::ptrdiff_t>(pix * width + opt_.rowPadding);
    img->store = std::make_shared<std::vector<unsigned char>>(static_cast<std::size_t>(row) * height, 0xCD);
    const std::ptrdiff_t offset = opt_.negativeRowBytes ? row * (height - 1) : 0;
    const std::ptrdiff_t rowBytes = opt_.negativeRowBytes ? -row : row;
    unsigned char *data = img->store->data() + offset;
    if (content) {
        for (int yi = 0; yi < height; ++yi) {  // yi: bottom-up row index
            const int r = height - 1 - yi;
            unsigned char *dst = data + yi * rowBytes;
            const float *src = &content->v[static_cast<std::size_t>(r) * width * comps];
            for (int k = 0; k < width * comps; ++k) storeValue(dst + k * depthBytes(depth), depth, src[k]);
        }
    }
    PropertySet &p = img->props;
    // width and height are already at the current scale; the origin (the frame's) scales with them.
    int ox = 0, oy = 0;
    originAt(time, &ox, &oy);
    const int x1 = static_cast<int>(std::floor(ox * scale_.load()));
    const int y1 = static_cast<int>(std::floor(oy * scale_.load()));
    p.setString(kOfxPropType, {kOfxTypeImage});
    p.setPointer(kOfxImagePropData, {data});
    p.setInt(kOfxImagePropBounds, {x1, y1, x1 + width, y1 + height});
    if (!opt_.noImageRod) p.setInt(kOfxImagePropRegionOfDefinition, {x1, y1, x1 + width, y1 + height});
    p.setInt(kOfxImagePropRowBytes, {static_cast<int>(rowBytes)});
    p.setString(kOfxImageEffectPropPixelDepth, {depthName(depth)});
    p.setString(kOfxImageEffectPropComponents,
                {comps == 4 ? kOfxImageComponentRGBA : comps == 3 ? kOfxImageComponentRGB : kOfxImageComponentAlpha});
    p.setString(kOfxImageEffectPropPreMultiplication, {comps == 4 ? kOfxImageUnPreMultiplied : kOfxImageOpaque});
    p.setDouble(kOfxImageEffectPropRenderScale, {scale_.load(), scale_.load()});
    p.setDouble(kOfxImagePropPixelAspectRatio, {1.0});
    p.setString(kOfxImagePropField, {field ? std::string(field) : renderField()});
    p.setString(kOfxImagePropUniqueIdentifier, {"img" + std::to_string(++imageSerial_) + "@" + std::to_string(time)});
    if (layout) {
        *layout = ImageLayout{img->store, offset, rowBytes, x1, y1, width, height, comps, depth};
    }
    OfxPropertySetHandle h = img->props.handle();
    std::lock_guard<std::mutex> l(imagesMutex_);
    images_[&img->props] = std::move(img);
    return h;
}

bool Host::releaseImage(OfxPropertySetHandle h) {
    std::lock_guard<std::mutex> l(imagesMutex_);
    return images_.erase(PropertySet::from(h)) == 1;
}

// ---- the suites -------------------------------------------------------------------------------------------------
struct Suites {
    // property suite
    // A plugin may only set what the set holds, with the property's type, inside its dimension (a property of
    // any dimension may grow by one value at a time), as HostSupport's property sets do.
    template <typename T> static OfxStatus setN(OfxPropertySetHandle h, const char *name, int index, T value,
                                                const char *call) {
        if (!h || !name) return kOfxStatErrBadHandle;
        PropertySet *ps = PropertySet::from(h);
        std::lock_guard<std::recursive_mutex> l(ps->mutex);
        auto it = ps->props.find(name);
        if (it == ps->props.end()) return refuse(call, name, kOfxStatErrUnknown, "no such property in this set");
        Prop &p = it->second;
        constexpr Prop::Type type = std::is_same_v<T, int> ? Prop::Int : std::is_same_v<T, double> ? Prop::Double
                                  : std::is_same_v<T, const char *> ? Prop::String : Prop::Pointer;
        if (p.type != type) return refuse(call, name, kOfxStatErrValue, "the property has another type");
        if (index < 0 || (p.dimension > 0 && index >= p.dimension) || (p.dimension == 0 && index > p.size()))
            return refuse(call, name, kOfxStatErrBadIndex,
                          "index " + std::to_string(index) + " outside dimension " + std::to_string(p.dimension));
        if constexpr (std::is_same_v<T, int>) {
            if (static_cast<int>(p.i.size()) <= index) p.i.resize(index + 1);
            p.i[index] = value;
        } else if constexpr (std::is_same_v<T, double>) {
            if (static_cast<int>(p.d.size()) <= index) p.d.resize(index + 1);
            p.d[index] = value;
        } else if constexpr (std::is_same_v<T, const char *>) {
            if (static_cast<int>(p.s.size()) <= index) p.s.resize(index + 1);
            p.s[index] = value ? value : "";
        } else {
            if (static_cast<int>(p.p.size()) <= index) p.p.resize(index + 1);
            p.p[index] = value;
        }
        return kOfxStatOK;
    }
    static OfxStatus refuse(const char *call, const char *name, OfxStatus st, const std::string &why) {
        Host::current->refused(call, name, st, why);
        return st;
    }
    static OfxStatus propSetPointer(OfxPropertySetHandle h, const char *n, int i, void *v) { return setN<void *>(h, n, i, v, "propSetPointer"); }
    static OfxStatus propSetString(OfxPropertySetHandle h, const char *n, int i, const char *v) { return setN<const char *>(h, n, i, v, "propSetString"); }
    static OfxStatus propSetDouble(OfxPropertySetHandle h, const char *n, int i, double v) { return setN<double>(h, n, i, v, "propSetDouble"); }
    static OfxStatus propSetInt(OfxPropertySetHandle h, const char *n, int i, int v) { return setN<int>(h, n, i, v, "propSetInt"); }
    template <typename T, typename V> static OfxStatus setMany(OfxPropertySetHandle h, const char *n, int c, V v, const char *call) {
        if (c < 0) return refuse(call, n ? n : "", kOfxStatErrBadIndex, "negative count");
        for (int i = 0; i < c; ++i)
            if (OfxStatus s = setN<T>(h, n, i, v[i], call)) return s;
        return kOfxStatOK;
    }
    static OfxStatus propSetPointerN(OfxPropertySetHandle h, const char *n, int c, void *const *v) { return setMany<void *>(h, n, c, v, "propSetPointerN"); }
    static OfxStatus propSetStringN(OfxPropertySetHandle h, const char *n, int c, const char *const *v) { return setMany<const char *>(h, n, c, v, "propSetStringN"); }
    static OfxStatus propSetDoubleN(OfxPropertySetHandle h, const char *n, int c, const double *v) { return setMany<double>(h, n, c, v, "propSetDoubleN"); }
    static OfxStatus propSetIntN(OfxPropertySetHandle h, const char *n, int c, const int *v) { return setMany<int>(h, n, c, v, "propSetIntN"); }
    // Gets: the set must hold the property, with that type (no int read as a double), and the index a value.
    static const Prop *lookup(OfxPropertySetHandle h, const char *name, Prop::Type t, int index, OfxStatus &st,
                              const char *call) {
        if (!h || !name) {
            st = kOfxStatErrBadHandle;
            return nullptr;
        }
        PropertySet *ps = PropertySet::from(h);
        auto it = ps->props.find(name);
        if (it == ps->props.end()) {
            st = refuse(call, name, kOfxStatErrUnknown, "no such property in this set");
            return nullptr;
        }
        if (it->second.type != t) {
            st = refuse(call, name, kOfxStatErrValue, "the property has another type");
            return nullptr;
        }
        if (index < 0 || index >= it->second.size()) {
            st = refuse(call, name, kOfxStatErrBadIndex,
                        "index " + std::to_string(index) + " of " + std::to_string(it->second.size()) + " values");
            return nullptr;
        }
        st = kOfxStatOK;
        return &it->second;
    }
    static OfxStatus propGetPointer(OfxPropertySetHandle h, const char *n, int i, void **v) {
        if (!h) return kOfxStatErrBadHandle;
        OfxStatus st;
        std::lock_guard<std::recursive_mutex> l(PropertySet::from(h)->mutex);
        if (const Prop *p = lookup(h, n, Prop::Pointer, i, st, "propGetPointer")) *v = p->p[i];
        return st;
    }
    static OfxStatus propGetString(OfxPropertySetHandle h, const char *n, int i, char **v) {
        if (!h) return kOfxStatErrBadHandle;
        OfxStatus st;
        std::lock_guard<std::recursive_mutex> l(PropertySet::from(h)->mutex);
        if (const Prop *p = lookup(h, n, Prop::String, i, st, "propGetString")) *v = const_cast<char *>(p->s[i].c_str());
        return st;
    }
    static OfxStatus propGetDouble(OfxPropertySetHandle h, const char *n, int i, double *v) {
        if (!h) return kOfxStatErrBadHandle;
        OfxStatus st;
        std::lock_guard<std::recursive_mutex> l(PropertySet::from(h)->mutex);
        if (const Prop *p = lookup(h, n, Prop::Double, i, st, "propGetDouble")) *v = p->d[i];
        return st;
    }
    static OfxStatus propGetInt(OfxPropertySetHandle h, const char *n, int i, int *v) {
        if (!h) return kOfxStatErrBadHandle;
        OfxStatus st;
        std::lock_guard<std::recursive_mutex> l(PropertySet::from(h)->mutex);
        if (const Prop *p = lookup(h, n, Prop::Int, i, st, "propGetInt")) *v = p->i[i];
        return st;
    }
    static OfxStatus propGetPointerN(OfxPropertySetHandle h, const char *n, int c, void **v) {
        for (int i = 0; i < c; ++i)
            if (OfxStatus s = propGetPointer(h, n, i, &v[i])) return s;
        return kOfxStatOK;
    }
    static OfxStatus propGetStringN(OfxPropertySetHandle h, const char *n, int c, char **v) {
        for (int i = 0; i < c; ++i)
            if (OfxStatus s = propGetString(h, n, i, &v[i])) return s;
        return kOfxStatOK;
    }
    static OfxStatus propGetDoubleN(OfxPropertySetHandle h, const char *n, int c, double *v) {
        for (int i = 0; i < c; ++i)
            if (OfxStatus s = propGetDouble(h, n, i, &v[i])) return s;
        return kOfxStatOK;
    }
    static OfxStatus propGetIntN(OfxPropertySetHandle h, const char *n, int c, int *v) {
        for (int i = 0; i < c; ++i)
            if (OfxStatus s = propGetInt(h, n, i, &v[i])) return s;
        return kOfxStatOK;
    }
    static OfxStatus propReset(OfxPropertySetHandle h, const char *n) {
        if (!h || !n) return kOfxStatErrBadHandle;
        PropertySet *ps = PropertySet::from(h);
        std::lock_guard<std::recursive_mutex> l(ps->mutex);
        auto it = ps->props.find(n);
        if (it == ps->props.end()) return refuse("propReset", n, kOfxStatErrUnknown, "no such property in this set");
        Prop &p = it->second;  // back to the zero/empty default
        const std::size_t d = static_cast<std::size_t>(p.dimension);
        p.i.assign(p.type == Prop::Int ? d : 0, 0);
        p.d.assign(p.type == Prop::Double ? d : 0, 0.0);
        p.s.assign(p.type == Prop::String ? d : 0, "");
        p.p.assign(p.type == Prop::Pointer ? d : 0, nullptr);
        return kOfxStatOK;
    }
    static OfxStatus propGetDimension(OfxPropertySetHandle h, const char *n, int *count) {
        if (!h || !n || !count) return kOfxStatErrBadHandle;
        PropertySet *ps = PropertySet::from(h);
        std::lock_guard<std::recursive_mutex> l(ps->mutex);
        auto it = ps->props.find(n);
        if (it == ps->props.end()) return refuse("propGetDimension", n, kOfxStatErrUnknown, "no such property in this set");
        *count = it->second.size();
        return kOfxStatOK;
    }

    // image effect suite
    static Effect *effect(OfxImageEffectHandle h) { return reinterpret_cast<Effect *>(h); }
    static OfxStatus getPropertySet(OfxImageEffectHandle h, OfxPropertySetHandle *p) {
        if (!h) return kOfxStatErrBadHandle;
        *p = effect(h)->props.handle();
        return kOfxStatOK;
    }
    static OfxStatus getParamSet(OfxImageEffectHandle h, OfxParamSetHandle *p) {
        if (!h) return kOfxStatErrBadHandle;
        *p = reinterpret_cast<OfxParamSetHandle>(&effect(h)->params);
        return kOfxStatOK;
    }
    static OfxStatus clipDefine(OfxImageEffectHandle h, const char *name, OfxPropertySetHandle *p) {
        Effect *e = effect(h);
        if (!e || e->isInstance) return kOfxStatErrBadHandle;
        auto &c = e->clips[name];
        if (!c) {
            c = std::make_unique<Clip>();
            c->name = name;
            c->owner = e;
            for (const std::string &n : propsOf(SetKind::ClipDescriptor)) c->props.declare(n);
            c->props.setString(kOfxPropType, {kOfxTypeClip});
            c->props.setString(kOfxPropName, {name});
            c->props.setString(kOfxPropLabel, {name});
            c->props.setInt(kOfxImageEffectPropSupportsTiles, {1});
            c->props.setString(kOfxImageClipPropFieldExtraction, {"OfxFieldDoubled"});  // the spec's default
        }
        *p = c->props.handle();
        return kOfxStatOK;
    }
    static OfxStatus clipGetHandle(OfxImageEffectHandle h, const char *name, OfxImageClipHandle *clip,
                                   OfxPropertySetHandle *p) {
        Effect *e = effect(h);
        if (!e) return kOfxStatErrBadHandle;
        Clip *c = e->clip(name);
        if (!c) return kOfxStatErrUnknown;
        *clip = reinterpret_cast<OfxImageClipHandle>(c);
        if (p) *p = c->props.handle();
        return kOfxStatOK;
    }
    static OfxStatus clipGetPropertySet(OfxImageClipHandle clip, OfxPropertySetHandle *p) {
        if (!clip) return kOfxStatErrBadHandle;
        *p = reinterpret_cast<Clip *>(clip)->props.handle();
        return kOfxStatOK;
    }
    static OfxStatus clipGetImage(OfxImageClipHandle clipH, OfxTime time, const OfxRectD *region,
                                  OfxPropertySetHandle *img) {
        const auto t0 = std::chrono::steady_clock::now();
        const OfxStatus st = makeClipImage(clipH, time, region, img);
        if (st == kOfxStatOK && reinterpret_cast<Clip *>(clipH)->name != kOfxImageEffectOutputClipName)
            Host::current->addImageServed(reinterpret_cast<Clip *>(clipH)->name == kOfxImageEffectSimpleSourceClipName);
        Host::current->addImageMicros(
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
        return st;
    }
    static OfxStatus makeClipImage(OfxImageClipHandle clipH, OfxTime time, const OfxRectD *, OfxPropertySetHandle *img) {
        Clip *c = reinterpret_cast<Clip *>(clipH);
        if (!c || !img) return kOfxStatErrBadHandle;
        Host *host = Host::current;
        if (c->name == kOfxImageEffectOutputClipName) {
            if (!host->outputImage) return kOfxStatFailed;
            *img = host->outputImage(*c, time);
            return *img ? kOfxStatOK : kOfxStatFailed;
        }
        if (!c->provider) return kOfxStatFailed;
        if (c->name == "Mask" && host->maskMissingAt(static_cast<int>(std::lround(time)))) return kOfxStatFailed;
        if (host->natronHabits() && host->rendering == 0 && c->name != kOfxImageEffectSimpleSourceClipName &&
            c->owner && host->identityOutsideRender && host->identityOutsideRender(*c->owner, time))
            return kOfxStatFailed;  // Natron: outside a render, an identity node gives no image of another input
        const int first = static_cast<int>(c->props.getDouble(kOfxImageEffectPropFrameRange, 0));
        const int i = static_cast<int>(std::lround(time)) - first;
        if (i < 0 || i >= c->provider->frames()) return kOfxStatFailed;
        FloatFrame f = c->provider->frame(i, c->comps == 4 && c->maskInAlpha ? 3 : c->comps);
        if (c->maskInAlpha && c->comps == 4) {  // Source RGBA whose alpha is the mask (Filter context)
            FloatFrame a = c->alphaFrom->frame(i, 1);
            FloatFrame rgba;
            rgba.width = f.width;
            rgba.height = f.height;
            rgba.comps = 4;
            rgba.v.resize(static_cast<std::size_t>(f.width) * f.height * 4);
            for (std::size_t px = 0, n = static_cast<std::size_t>(f.width) * f.height; px < n; ++px) {
                for (int k = 0; k < 3; ++k) rgba.v[px * 4 + k] = f.v[px * 3 + k];
                rgba.v[px * 4 + 3] = a.v[px];
            }
            f = std::move(rgba);
        }
        // Fielded material: a single-field render hands out what the clip asked for (kOfxImageClipPropFieldExtraction):
        // "OfxFieldDoubled" (the default) that field's lines each doubled, "OfxFieldBoth" the whole interlaced frame.
        const std::string field = host->renderField();
        std::string imageField = field;
        if (field == kOfxImageFieldLower || field == kOfxImageFieldUpper) {
            const std::string extraction = c->props.getString(kOfxImageClipPropFieldExtraction, 0, kOfxImageFieldDoubled);
            if (extraction == kOfxImageFieldDoubled) {
                int ox = 0, oy = 0;
                host->originAt(time, &ox, &oy);
                doubleField(f, field == kOfxImageFieldLower ? 0 : 1, oy);
            } else if (extraction == kOfxImageFieldBoth) {
                imageField = kOfxImageFieldBoth;
            } else {
                return kOfxStatErrUnsupported;  // OfxFieldSingle (half-height images) is not offered by this host
            }
        }
        if (host->renderScale() != 1.0) {
            int x1, y1, w, h;
            host->scaledRod(time, f.width, f.height, &x1, &y1, &w, &h);
            f = downsample(f, w, h);
        }
        *img = host->makeImage(time, f.width, f.height, &f, c->depth, c->comps, nullptr, imageField.c_str());
        return kOfxStatOK;
    }
    static OfxStatus clipReleaseImage(OfxPropertySetHandle h) {
        return Host::current->releaseImage(h) ? kOfxStatOK : kOfxStatErrBadHandle;
    }
    static OfxStatus clipGetRegionOfDefinition(OfxImageClipHandle clipH, OfxTime time, OfxRectD *r) {
        Clip *c = reinterpret_cast<Clip *>(clipH);
        if (!c || !r) return kOfxStatErrBadHandle;
        Host::current->addRodQuery();
        if (Host::current->noRodAtScale() && Host::current->renderScale() != 1.0) return kOfxStatFailed;
        const FrameProvider *p = c->provider;
        if (!p) {  // the output and unconnected clips take the Source's region
            c = c->owner->clip(kOfxImageEffectSimpleSourceClipName);
            p = c ? c->provider : nullptr;
        }
        int w = p ? p->width() : 0, h = p ? p->height() : 0;
        if (p) {  // the size of the clip's frame at that time (its first frame's outside its range)
            const int first = static_cast<int>(c->props.getDouble(kOfxImageEffectPropFrameRange, 0));
            const int i = static_cast<int>(std::lround(time)) - first;
            if (i >= 0 && i < p->frames()) {
                w = p->frameWidth(i);
                h = p->frameHeight(i);
            }
        }
        int ox = 0, oy = 0;
        Host::current->originAt(time, &ox, &oy);
        *r = OfxRectD{double(ox), double(oy), double(ox + w), double(oy + h)};
        if (Host::current->fracEdgeFrame() == static_cast<int>(std::lround(time))) r->x2 = r->x2 - 1.0 + 1e-7;
        return kOfxStatOK;
    }
    static int abort(OfxImageEffectHandle h) { return h && effect(h)->abortFlag.load() ? 1 : 0; }
    struct Mem {
        std::vector<unsigned char> bytes;
        int locks = 0;
    };
    static OfxStatus imageMemoryAlloc(OfxImageEffectHandle, size_t n, OfxImageMemoryHandle *m) {
        *m = reinterpret_cast<OfxImageMemoryHandle>(new Mem{std::vector<unsigned char>(n), 0});
        return kOfxStatOK;
    }
    static OfxStatus imageMemoryFree(OfxImageMemoryHandle m) {
        delete reinterpret_cast<Mem *>(m);
        return kOfxStatOK;
    }
    static OfxStatus imageMemoryLock(OfxImageMemoryHandle m, void **p) {
        auto *mem = reinterpret_cast<Mem *>(m);
        ++mem->locks;
        *p = mem->bytes.data();
        return kOfxStatOK;
    }
    static OfxStatus imageMemoryUnlock(OfxImageMemoryHandle m) {
        --reinterpret_cast<Mem *>(m)->locks;
        return kOfxStatOK;
    }

    // parameter suite
    static OfxStatus paramDefine(OfxParamSetHandle set, const char *type, const char *name, OfxPropertySetHandle *props) {
        auto *ps = reinterpret_cast<ParamSet *>(set);
        if (!ps || !type || !name) return kOfxStatErrBadHandle;
        if (ps->find(name)) return kOfxStatErrExists;
        const std::string t = type;
        if (t != kOfxParamTypeString && t != kOfxParamTypeDouble && t != kOfxParamTypeInteger &&
            t != kOfxParamTypeBoolean && t != kOfxParamTypeChoice && t != kOfxParamTypePushButton &&
            t != kOfxParamTypeGroup && t != kOfxParamTypePage)
            return kOfxStatErrUnknown;  // a parameter type this host does not offer
        auto p = std::make_unique<Param>();
        p->name = name;
        p->type = type;
        for (const std::string &n : propsOf(t == kOfxParamTypePage ? SetKind::Page : SetKind::ParamDescriptor, t))
            p->props.declare(n);
        p->props.setString(kOfxPropType, {kOfxTypeParameter});
        p->props.setString(kOfxPropName, {name});
        p->props.setString(kOfxParamPropType, {type});
        p->props.setString(kOfxPropLabel, {name});
        p->props.setInt(kOfxParamPropEnabled, {1});
        if (p->props.has(kOfxParamPropDefault)) {
            p->props.setInt(kOfxParamPropEvaluateOnChange, {1});
            p->props.setInt(kOfxParamPropAnimates, {1});
            p->props.setInt(kOfxParamPropPersistant, {1});
            p->props.setInt(kOfxParamPropCanUndo, {1});
            p->props.setString(kOfxParamPropCacheInvalidation, {kOfxParamInvalidateValueChange});
        }
        if (t == kOfxParamTypeString) {
            p->props.setString(kOfxParamPropDefault, {""});
            p->props.setString(kOfxParamPropStringMode, {kOfxParamStringIsSingleLine});
        } else if (t == kOfxParamTypeDouble) {
            p->props.setDouble(kOfxParamPropDefault, {0.0});
            for (const char *n : {kOfxParamPropMin, kOfxParamPropDisplayMin}) p->props.setDouble(n, {-1e300});
            for (const char *n : {kOfxParamPropMax, kOfxParamPropDisplayMax}) p->props.setDouble(n, {1e300});
        } else if (t == kOfxParamTypeInteger) {
            p->props.setInt(kOfxParamPropDefault, {0});
            for (const char *n : {kOfxParamPropMin, kOfxParamPropDisplayMin}) p->props.setInt(n, {-2147483647 - 1});
            for (const char *n : {kOfxParamPropMax, kOfxParamPropDisplayMax}) p->props.setInt(n, {2147483647});
        } else if (t == kOfxParamTypeBoolean || t == kOfxParamTypeChoice) {
            p->props.setInt(kOfxParamPropDefault, {0});
        }
        if (props) *props = p->props.handle();
        ps->params.push_back(std::move(p));
        return kOfxStatOK;
    }
    static OfxStatus paramGetHandle(OfxParamSetHandle set, const char *name, OfxParamHandle *param, OfxPropertySetHandle *props) {
        auto *ps = reinterpret_cast<ParamSet *>(set);
        if (!ps) return kOfxStatErrBadHandle;
        Param *p = ps->find(name);
        if (!p) return kOfxStatErrUnknown;
        *param = reinterpret_cast<OfxParamHandle>(p);
        if (props) *props = p->props.handle();
        return kOfxStatOK;
    }
    static OfxStatus paramSetGetPropertySet(OfxParamSetHandle set, OfxPropertySetHandle *props) {
        *props = reinterpret_cast<ParamSet *>(set)->props.handle();
        return kOfxStatOK;
    }
    static OfxStatus paramGetPropertySet(OfxParamHandle param, OfxPropertySetHandle *props) {
        *props = reinterpret_cast<Param *>(param)->props.handle();
        return kOfxStatOK;
    }
    static OfxStatus getValue(Param *p, va_list ap) {
        const std::string &t = p->type;
        if (Host::current->unreadable(t)) return kOfxStatErrMissingHostFeature;
        if (t == kOfxParamTypeBoolean && Host::current->exampleBooleans()) {  // as HostSupport's example host
            *va_arg(ap, int *) = 1;
            return kOfxStatOK;
        }
        if (t == kOfxParamTypeInteger || t == kOfxParamTypeBoolean || t == kOfxParamTypeChoice) {
            *va_arg(ap, int *) = p->i;
        } else if (t == kOfxParamTypeDouble) {
            *va_arg(ap, double *) = p->d;
        } else if (t == kOfxParamTypeString) {
            *va_arg(ap, char **) = const_cast<char *>(p->s.c_str());
        } else {
            return kOfxStatErrBadHandle;
        }
        return kOfxStatOK;
    }
    static OfxStatus paramGetValue(OfxParamHandle h, ...) {
        va_list ap;
        va_start(ap, h);
        OfxStatus s = getValue(reinterpret_cast<Param *>(h), ap);
        va_end(ap);
        return s;
    }
    static OfxStatus paramGetValueAtTime(OfxParamHandle h, OfxTime time, ...) {
        va_list ap;
        va_start(ap, time);  // parameters do not animate in this host: the value is the same at every time
        OfxStatus s = getValue(reinterpret_cast<Param *>(h), ap);
        va_end(ap);
        return s;
    }
    static OfxStatus paramGetDerivative(OfxParamHandle, OfxTime, ...) { return kOfxStatErrUnsupported; }
    static OfxStatus paramGetIntegral(OfxParamHandle, OfxTime, OfxTime, ...) { return kOfxStatErrUnsupported; }
    static OfxStatus paramSetValue(OfxParamHandle h, ...) {
        Param *p = reinterpret_cast<Param *>(h);
        if (!p) return kOfxStatErrBadHandle;
        va_list ap;
        va_start(ap, h);
        if (Host::current->rendering > 0) {
            va_end(ap);
            return refuse("paramSetValue", p->name.c_str(), kOfxStatErrUnsupported, "a parameter set during a Render action");
        }
        const std::string &t = p->type;
        if (Host::current->unreadable(t) || (t == kOfxParamTypeBoolean && Host::current->exampleBooleans())) {
            // as HostSupport's example host: neither get nor set (a Boolean: no set)
            va_end(ap);
            return kOfxStatErrMissingHostFeature;
        }
        OfxStatus s = kOfxStatOK;
        if (t == kOfxParamTypeInteger || t == kOfxParamTypeBoolean || t == kOfxParamTypeChoice) p->i = va_arg(ap, int);
        else if (t == kOfxParamTypeDouble) p->d = va_arg(ap, double);
        else if (t == kOfxParamTypeString) {
            const char *v = va_arg(ap, const char *);
            p->s = v ? v : "";
        } else s = kOfxStatErrBadHandle;
        va_end(ap);
        if (s == kOfxStatOK && p->owner && Host::current->paramChangedByPlugin)
            Host::current->paramChangedByPlugin(*p->owner, *p);
        return s;
    }
    static OfxStatus paramSetValueAtTime(OfxParamHandle, OfxTime, ...) { return kOfxStatErrUnsupported; }
    static OfxStatus paramGetNumKeys(OfxParamHandle, unsigned int *n) {
        *n = 0;
        return kOfxStatOK;
    }
    static OfxStatus paramGetKeyTime(OfxParamHandle, unsigned int, OfxTime *) { return kOfxStatErrBadIndex; }
    static OfxStatus paramGetKeyIndex(OfxParamHandle, OfxTime, int, int *) { return kOfxStatFailed; }
    static OfxStatus paramDeleteKey(OfxParamHandle, OfxTime) { return kOfxStatErrBadIndex; }
    static OfxStatus paramDeleteAllKeys(OfxParamHandle) { return kOfxStatOK; }
    static OfxStatus paramCopy(OfxParamHandle, OfxParamHandle, OfxTime, const OfxRangeD *) { return kOfxStatErrUnsupported; }
    static OfxStatus paramEditBegin(OfxParamSetHandle, const char *) { return kOfxStatOK; }
    static OfxStatus paramEditEnd(OfxParamSetHandle) { return kOfxStatOK; }

    // memory suite
    static OfxStatus memoryAlloc(void *, size_t n, void **p) {
        *p = std::malloc(n ? n : 1);
        return *p ? kOfxStatOK : kOfxStatErrMemory;
    }
    static OfxStatus memoryFree(void *p) {
        std::free(p);
        return kOfxStatOK;
    }

    // multithread suite
    static thread_local unsigned int threadIndex;
    static thread_local bool spawned;
    static OfxStatus multiThread(OfxThreadFunctionV1 fn, unsigned int n, void *arg) {
        if (n == 0) n = 1;
        if (spawned) {  // nested: run serially, as hosts do
            for (unsigned int i = 0; i < n; ++i) fn(i, n, arg);
            return kOfxStatOK;
        }
        std::vector<std::thread> threads;
        for (unsigned int i = 0; i < n; ++i)
            threads.emplace_back([=] {
                spawned = true;
                threadIndex = i;
                fn(i, n, arg);
            });
        for (auto &t : threads) t.join();
        return kOfxStatOK;
    }
    static OfxStatus multiThreadNumCPUs(unsigned int *n) {
        *n = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
        return kOfxStatOK;
    }
    static OfxStatus multiThreadIndex(unsigned int *i) {
        *i = spawned ? threadIndex : 0;
        return kOfxStatOK;
    }
    static int multiThreadIsSpawnedThread() { return spawned ? 1 : 0; }
    static OfxStatus mutexCreate(OfxMutexHandle *m, int lockCount) {
        auto *mx = new std::recursive_mutex;
        for (int i = 0; i < lockCount; ++i) mx->lock();
        *m = reinterpret_cast<OfxMutexHandle>(mx);
        return kOfxStatOK;
    }
    static OfxStatus mutexDestroy(const OfxMutexHandle m) {
        delete reinterpret_cast<std::recursive_mutex *>(m);
        return kOfxStatOK;
    }
    static OfxStatus mutexLock(const OfxMutexHandle m) {
        reinterpret_cast<std::recursive_mutex *>(m)->lock();
        return kOfxStatOK;
    }
    static OfxStatus mutexUnLock(const OfxMutexHandle m) {
        reinterpret_cast<std::recursive_mutex *>(m)->unlock();
        return kOfxStatOK;
    }
    static OfxStatus mutexTryLock(const OfxMutexHandle m) {
        return reinterpret_cast<std::recursive_mutex *>(m)->try_lock() ? kOfxStatOK : kOfxStatFailed;
    }

    // message suites
    // The spec allows a null message id, but HostSupport's example host prints it with "%s" (undefined behaviour), and
    // a host that streams it into std::cout loses its output: counted as a refusal, so the strict tests catch it.
    static void nullId(const char *call) {
        Host::current->refused(call, "messageId", kOfxStatErrValue, "a null message id");
    }
    static std::string format(const char *fmt, va_list ap) {
        char buf[4096];
        std::vsnprintf(buf, sizeof buf, fmt ? fmt : "", ap);
        return buf;
    }
    static OfxStatus message(void *handle, const char *type, const char *id, const char *fmt, ...) {
        if (!id) nullId("message");
        va_list ap;
        va_start(ap, fmt);
        std::string text = format(fmt, ap);
        va_end(ap);
        if (Effect *e = reinterpret_cast<Effect *>(handle); e && type && std::strcmp(type, kOfxMessageError) == 0) {
            std::lock_guard<std::mutex> l(e->msgMutex);
            e->lastPlainError = text;
        }
        ++Host::current->messages_;
        Host::current->event("{\"event\": \"message\", \"type\": \"" + jsonEscape(type ? type : "") + "\", \"text\": \"" +
                             jsonEscape(text) + "\"}");
        return kOfxStatOK;
    }
    static OfxStatus setPersistentMessage(void *handle, const char *type, const char *id, const char *fmt, ...) {
        if (!id) nullId("setPersistentMessage");
        va_list ap;
        va_start(ap, fmt);
        std::string text = format(fmt, ap);
        va_end(ap);
        Effect *e = reinterpret_cast<Effect *>(handle);
        if (!e) return kOfxStatErrBadHandle;
        {
            std::lock_guard<std::mutex> l(e->msgMutex);
            e->persistent = text;
            e->persistentType = type ? type : "";
        }
        ++Host::current->messages_;
        Host::current->event("{\"event\": \"persistent_message\", \"type\": \"" + jsonEscape(type ? type : "") +
                             "\", \"text\": \"" + jsonEscape(text) + "\"}");
        return kOfxStatOK;
    }
    static OfxStatus clearPersistentMessage(void *handle) {
        Effect *e = reinterpret_cast<Effect *>(handle);
        if (!e) return kOfxStatErrBadHandle;
        std::lock_guard<std::mutex> l(e->msgMutex);
        if (!e->persistent.empty()) Host::current->event("{\"event\": \"persistent_cleared\"}");
        e->persistent.clear();
        e->persistentType.clear();
        return kOfxStatOK;
    }

    // progress suites
    static OfxStatus progressStartV1(void *, const char *label) {
        Host::current->event("{\"event\": \"progress_start\", \"label\": \"" + jsonEscape(label ? label : "") + "\"}");
        return kOfxStatOK;
    }
    static OfxStatus progressStartV2(void *h, const char *label, const char *) { return progressStartV1(h, label); }
    static OfxStatus progressUpdate(void *, double p) {
        const int n = ++Host::current->progressUpdates_;
        const int limit = Host::current->options().cancelProgressAfter;
        if (limit >= 0 && n > limit) return kOfxStatReplyNo;
        if (Host::current->natronHabits() && Host::current->duringProgress) Host::current->duringProgress();
        return kOfxStatOK;
    }
    static OfxStatus progressEnd(void *) {
        Host::current->event("{\"event\": \"progress_end\"}");
        return kOfxStatOK;
    }

    static const void *fetchSuite(OfxPropertySetHandle, const char *name, int version);
};

thread_local unsigned int Suites::threadIndex = 0;
thread_local bool Suites::spawned = false;

namespace {
const OfxPropertySuiteV1 kPropertySuite = {
    Suites::propSetPointer, Suites::propSetString, Suites::propSetDouble, Suites::propSetInt,
    Suites::propSetPointerN, Suites::propSetStringN, Suites::propSetDoubleN, Suites::propSetIntN,
    Suites::propGetPointer, Suites::propGetString, Suites::propGetDouble, Suites::propGetInt,
    Suites::propGetPointerN, Suites::propGetStringN, Suites::propGetDoubleN, Suites::propGetIntN,
    Suites::propReset, Suites::propGetDimension};
const OfxImageEffectSuiteV1 kEffectSuite = {
    Suites::getPropertySet, Suites::getParamSet, Suites::clipDefine, Suites::clipGetHandle,
    Suites::clipGetPropertySet, Suites::clipGetImage, Suites::clipReleaseImage, Suites::clipGetRegionOfDefinition,
    Suites::abort, Suites::imageMemoryAlloc, Suites::imageMemoryFree, Suites::imageMemoryLock,
    Suites::imageMemoryUnlock};
const OfxParameterSuiteV1 kParamSuite = {
    Suites::paramDefine, Suites::paramGetHandle, Suites::paramSetGetPropertySet, Suites::paramGetPropertySet,
    Suites::paramGetValue, Suites::paramGetValueAtTime, Suites::paramGetDerivative, Suites::paramGetIntegral,
    Suites::paramSetValue, Suites::paramSetValueAtTime, Suites::paramGetNumKeys, Suites::paramGetKeyTime,
    Suites::paramGetKeyIndex, Suites::paramDeleteKey, Suites::paramDeleteAllKeys, Suites::paramCopy,
    Suites::paramEditBegin, Suites::paramEditEnd};
const OfxMemorySuiteV1 kMemorySuite = {Suites::memoryAlloc, Suites::memoryFree};
const OfxMultiThreadSuiteV1 kThreadSuite = {
    Suites::multiThread, Suites::multiThreadNumCPUs, Suites::multiThreadIndex, Suites::multiThreadIsSpawnedThread,
    Suites::mutexCreate, Suites::mutexDestroy, Suites::mutexLock, Suites::mutexUnLock, Suites::mutexTryLock};
const OfxMessageSuiteV1 kMessageV1 = {Suites::message};
const OfxMessageSuiteV2 kMessageV2 = {Suites::message, Suites::setPersistentMessage, Suites::clearPersistentMessage};
const OfxProgressSuiteV1 kProgressV1 = {Suites::progressStartV1, Suites::progressUpdate, Suites::progressEnd};
const OfxProgressSuiteV2 kProgressV2 = {Suites::progressStartV2, Suites::progressUpdate, Suites::progressEnd};
}  // namespace

const OfxImageEffectSuiteV1 *effectSuite() { return &kEffectSuite; }

const void *Suites::fetchSuite(OfxPropertySetHandle, const char *name, int version) {
    const Options &o = Host::current->options();
    const std::string n = name ? name : "";
    const void *suite = nullptr;
    if (n == kOfxPropertySuite && version == 1) suite = &kPropertySuite;
    else if (n == kOfxImageEffectSuite && version == 1) suite = &kEffectSuite;
    else if (n == kOfxParameterSuite && version == 1 && o.paramSuite) suite = &kParamSuite;
    else if (n == kOfxMemorySuite && version == 1) suite = &kMemorySuite;
    else if (n == kOfxMultiThreadSuite && version == 1 && o.multiThread) suite = &kThreadSuite;
    else if (n == kOfxMessageSuite && version == 1) suite = &kMessageV1;
    else if (n == kOfxMessageSuite && version == 2 && o.messageV2) suite = &kMessageV2;
    else if (n == kOfxProgressSuite && version == 1 && o.progressSuite) suite = &kProgressV1;
    else if (n == kOfxProgressSuite && version == 2 && o.progressSuite) suite = &kProgressV2;
    Host::current->event("{\"event\": \"fetch_suite\", \"suite\": \"" + jsonEscape(n) + "\", \"version\": " +
                         std::to_string(version) + ", \"given\": " + (suite ? "true" : "false") + "}");
    return suite;
}

Host::Host(const Options &opt) : opt_(opt) {
    current = this;
    hostProps_.setString(kOfxPropType, {kOfxTypeImageEffectHost});
    hostProps_.setString(kOfxPropName, {opt.name});
    hostProps_.setString(kOfxPropLabel, {"vinpaint OFX harness"});
    hostProps_.setInt(kOfxPropAPIVersion, {1, 4});
    hostProps_.setInt(kOfxImageEffectHostPropIsBackground, {opt.background ? 1 : 0});
    hostProps_.setInt(kOfxImageEffectPropSupportsMultiResolution, {1});
    hostProps_.setInt(kOfxImageEffectPropSupportsTiles, {1});
    hostProps_.setInt(kOfxImageEffectPropTemporalClipAccess, {opt.temporalAccess ? 1 : 0});
    hostProps_.setString(kOfxImageEffectPropSupportedComponents,
                         {kOfxImageComponentRGBA, kOfxImageComponentRGB, kOfxImageComponentAlpha});
    hostProps_.setString(kOfxImageEffectPropSupportedContexts,
                         {kOfxImageEffectContextGeneral, kOfxImageEffectContextFilter});
    hostProps_.setString(kOfxImageEffectPropSupportedPixelDepths, {kOfxBitDepthFloat, kOfxBitDepthShort, kOfxBitDepthByte});
    hostProps_.setInt(kOfxImageEffectPropSupportsMultipleClipDepths, {0});
    host_.host = hostProps_.handle();
    host_.fetchSuite = &Suites::fetchSuite;
}

}  // namespace harness
