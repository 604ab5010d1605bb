#include "pixels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "vinpaint/ofx_abi.h"

namespace vinpaint::px {

std::size_t bytesOf(Depth d) {
    switch (d) {
        case Depth::U8: return 1;
        case Depth::U16: return 2;
        case Depth::F32: return 4;
    }
    return 1;
}

std::optional<Depth> depthFromOfx(const std::string &s) {
    if (s == kOfxBitDepthByte) return Depth::U8;
    if (s == kOfxBitDepthShort) return Depth::U16;
    if (s == kOfxBitDepthFloat) return Depth::F32;
    return std::nullopt;
}

const char *ofxDepthName(Depth d) {
    switch (d) {
        case Depth::U8: return kOfxBitDepthByte;
        case Depth::U16: return kOfxBitDepthShort;
        case Depth::F32: return kOfxBitDepthFloat;
    }
    return kOfxBitDepthNone;
}

const char *wireDtype(Depth d) {
    switch (d) {
        case Depth::U8: return "u1";
        case Depth::U16: return "u2";
        case Depth::F32: return "f4";
    }
    return "";
}

std::optional<Depth> depthFromWire(const std::string &s) {
    if (s == "u1") return Depth::U8;
    if (s == "u2") return Depth::U16;
    if (s == "f4") return Depth::F32;
    return std::nullopt;
}

std::optional<int> componentsFromOfx(const std::string &s) {
    if (s == kOfxImageComponentRGBA) return 4;
    if (s == kOfxImageComponentRGB) return 3;
    if (s == kOfxImageComponentAlpha) return 1;
    return std::nullopt;
}

namespace {

// ---- value conversion between depths: identity within a depth, so copies are bit exact --------------------
template <typename T> struct Limits;
template <> struct Limits<std::uint8_t> { static constexpr float max = 255.f; };
template <> struct Limits<std::uint16_t> { static constexpr float max = 65535.f; };
template <> struct Limits<float> { static constexpr float max = 1.f; };

template <typename T> float toUnit(T v) { return static_cast<float>(v) / Limits<T>::max; }
template <> float toUnit<float>(float v) { return v; }

template <typename D> D fromUnit(float v) {
    if (!(v > 0.f)) return 0;  // also maps NaN to 0
    if (v >= 1.f) return static_cast<D>(Limits<D>::max);
    return static_cast<D>(v * Limits<D>::max + 0.5f);
}
template <> float fromUnit<float>(float v) { return v; }

template <typename S, typename D> inline D convert(S v) {
    if constexpr (std::is_same_v<S, D>) {
        return v;
    } else if constexpr (std::is_same_v<S, std::uint8_t> && std::is_same_v<D, std::uint16_t>) {
        return static_cast<std::uint16_t>(v * 257u);
    } else if constexpr (std::is_same_v<S, std::uint16_t> && std::is_same_v<D, std::uint8_t>) {
        return static_cast<std::uint8_t>((v * 255u + 32767u) / 65535u);
    } else {
        return fromUnit<D>(toUnit<S>(v));
    }
}

template <typename T> constexpr T opaque() { return static_cast<T>(Limits<T>::max); }

// Calls f.template operator()<T>() with T the C++ type of the depth.
template <typename F> void withType(Depth d, F &&f) {
    switch (d) {
        case Depth::U8: f(std::uint8_t{}); return;
        case Depth::U16: f(std::uint16_t{}); return;
        case Depth::F32: f(float{}); return;
    }
}

template <typename T> inline const T *at(const View &v, int x, int y) {
    return reinterpret_cast<const T *>(v.pixel(x, y));
}

// ---- packRgb ------------------------------------------------------------------------------------------------
template <typename T>
void packRgbT(const View &src, const Rect &frame, const Plane &dst, int rowBegin, int rowEnd) {
    const int w = frame.width();
    T *out = static_cast<T *>(dst.data);
    for (int r = rowBegin; r < rowEnd; ++r) {
        const int y = frame.y2 - 1 - r;  // top-down row r is canonical y counted from the top
        T *o = out + static_cast<std::size_t>(r) * w * 3;
        std::memset(o, 0, sizeof(T) * 3 * w);
        if (y < src.bounds.y1 || y >= src.bounds.y2) continue;
        const int xa = std::max(frame.x1, src.bounds.x1), xb = std::min(frame.x2, src.bounds.x2);
        for (int x = xa; x < xb; ++x) {
            const T *p = at<T>(src, x, y);
            T *q = o + static_cast<std::size_t>(x - frame.x1) * 3;
            if (src.comps == 1) {
                q[0] = q[1] = q[2] = p[0];
            } else {
                q[0] = p[0];
                q[1] = p[1];
                q[2] = p[2];
            }
        }
    }
}

// ---- countSeeThrough --------------------------------------------------------------------------------------------
template <typename T>
std::size_t countSeeThroughT(const View &src, const Rect &frame, const unsigned char *mask, int rowBegin, int rowEnd,
                             bool useAlpha, const Rect *only) {
    const int w = frame.width();
    std::size_t n = 0;
    for (int r = rowBegin; r < rowEnd; ++r) {
        const int y = frame.y2 - 1 - r;
        const unsigned char *m = mask + static_cast<std::size_t>(r) * w;
        const bool rowInside = y >= src.bounds.y1 && y < src.bounds.y2;
        for (int x = frame.x1; x < frame.x2; ++x) {
            if (m[x - frame.x1] != 255 || (only && !only->contains(x, y))) continue;
            if (!rowInside || x < src.bounds.x1 || x >= src.bounds.x2) {
                ++n;
            } else if (useAlpha && src.comps == 4) {
                const float a = toUnit<T>(at<T>(src, x, y)[3]);
                n += !(a >= 0.5f);  // NaN counts as see-through
            }
        }
    }
    return n;
}

// ---- packMask -----------------------------------------------------------------------------------------------
template <typename T>
std::size_t packMaskT(const View &m, const Rect &frame, MaskChannel ch, bool invert, unsigned char *dst,
                      int rowBegin, int rowEnd, const Rect *only, unsigned char margin) {
    const int w = frame.width();
    std::size_t holes = 0;
    const unsigned char outside = invert ? 255 : 0;  // no mask pixel = value 0, inverted = hole
    for (int r = rowBegin; r < rowEnd; ++r) {
        const int y = frame.y2 - 1 - r;
        unsigned char *o = dst + static_cast<std::size_t>(r) * w;
        for (int x = frame.x1; x < frame.x2; ++x) {
            unsigned char hole = outside;
            if (only && !only->contains(x, y)) {
                o[x - frame.x1] = margin;  // outside this frame's own region: no pixel of the frame
                continue;
            } else if (m.bounds.contains(x, y)) {
                const T *p = at<T>(m, x, y);
                float v;
                if (m.comps == 1) v = toUnit(p[0]);
                else if (ch == MaskChannel::Alpha) v = toUnit(p[3]);
                else v = 0.2126f * toUnit(p[0]) + 0.7152f * toUnit(p[1]) + 0.0722f * toUnit(p[2]);
                if (invert) v = 1.f - v;
                hole = v > 0.5f ? 255 : 0;
            }
            o[x - frame.x1] = hole;
            holes += hole ? 1 : 0;
        }
    }
    return holes;
}

// ---- writePlane -----------------------------------------------------------------------------------------------
template <typename S, typename D>
void writePlaneT(const Plane &plane, const Sampling &map, const View &out, const Rect &window, int yBegin,
                 int yEnd, const View *alphaSrc, AlphaMode alphaMode) {
    const S *pl = static_cast<const S *>(plane.data);
    std::vector<int> cols(static_cast<std::size_t>(window.width()));
    for (int x = window.x1; x < window.x2; ++x) cols[x - window.x1] = map.column(x);
    for (int y = yBegin; y < yEnd; ++y) {
        const S *prow = pl + static_cast<std::size_t>(map.row(y)) * plane.width * 3;
        D *o = reinterpret_cast<D *>(out.pixel(window.x1, y));
        for (int x = window.x1; x < window.x2; ++x, o += out.comps) {
            const S *p = prow + static_cast<std::size_t>(cols[x - window.x1]) * 3;
            if (out.comps == 1) {
                o[0] = convert<S, D>(p[0]);
                continue;
            }
            o[0] = convert<S, D>(p[0]);
            o[1] = convert<S, D>(p[1]);
            o[2] = convert<S, D>(p[2]);
            if (out.comps == 4) {
                D a = opaque<D>();
                if (alphaMode == AlphaMode::FromSource && alphaSrc && alphaSrc->comps == 4 &&
                    alphaSrc->bounds.contains(x, y)) {
                    withType(alphaSrc->depth, [&](auto tag) {
                        using A = decltype(tag);
                        a = convert<A, D>(at<A>(*alphaSrc, x, y)[3]);
                    });
                }
                o[3] = a;
            }
        }
    }
}

// One pixel of a view (1, 3 or 4 channels) into another, converting depth and channels: RGB->RGBA gets opaque
// alpha, Alpha->RGB(A) puts the value in every channel, RGBA->Alpha keeps the alpha.
template <typename S, typename D> inline void copyPixel(const S *p, int srcComps, D *o, int outComps) {
    if (outComps == 1) {
        o[0] = convert<S, D>(srcComps == 4 ? p[3] : p[0]);
    } else if (srcComps == 1) {
        for (int c = 0; c < outComps; ++c) o[c] = convert<S, D>(p[0]);
    } else {
        o[0] = convert<S, D>(p[0]);
        o[1] = convert<S, D>(p[1]);
        o[2] = convert<S, D>(p[2]);
        if (outComps == 4) o[3] = srcComps == 4 ? convert<S, D>(p[3]) : opaque<D>();
    }
}

// ---- writeProxy -----------------------------------------------------------------------------------------------
// The plane cells [first, last) an output pixel's footprint [lo, hi) (in plane cells) covers, each with its share.
struct Footprint {
    int first = 0, last = 0;
    double lo = 0, hi = 0;
    double share(int cell) const { return std::min(cell + 1.0, hi) - std::max(static_cast<double>(cell), lo); }
};

// `size` cells of the plane from `offset` on are the part the output covers (Sampling's); the footprint stays in it.
inline Footprint footprint(int index, double cells, int size, int offset) {
    Footprint f;
    f.lo = index * cells;
    f.hi = f.lo + cells;
    f.first = std::clamp(static_cast<int>(std::floor(f.lo)), 0, size - 1);
    f.last = std::clamp(static_cast<int>(std::ceil(f.hi)), f.first + 1, size);
    f.lo += offset;
    f.hi += offset;
    f.first += offset;
    f.last += offset;
    return f;
}

template <typename S, typename D, typename A>
void writeProxyT(const Plane &plane, const unsigned char *matte, const Sampling &map, const View *src,
                 const View &out, const Rect &window, int yBegin, int yEnd, AlphaMode alphaMode) {
    const S *pl = static_cast<const S *>(plane.data);
    const Rect &rod = map.outRod;
    // The part of the plane this frame covers (all of it unless the plate moves within its job's canvas).
    const int partX = map.subX, partY = map.subY, partW = map.width(), partH = map.height();
    const double cellsX = static_cast<double>(partW) / std::max(1, rod.width());
    const double cellsY = static_cast<double>(partH) / std::max(1, rod.height());
    // The hole is looked for one proxy pixel beyond each footprint: a host's proxy pixel covers canonical
    // [x, x + 1) / scale, which where the region's edges fall between proxy pixels (an odd origin, a 2048-wide plate
    // at 0.3) lies up to a proxy pixel off the footprint assumed here, and its proxy holds part of the object.
    const int padX = static_cast<int>(std::ceil(cellsX)), padY = static_cast<int>(std::ceil(cellsY));
    std::vector<Footprint> cols(static_cast<std::size_t>(window.width()));
    for (int x = window.x1; x < window.x2; ++x) cols[x - window.x1] = footprint(x - rod.x1, cellsX, partW, partX);
    // Per output row: how many plane columns up to k hold a hole pixel in the row's padded band, so that whether a
    // footprint touches the hole is one subtraction, not a scan of its padded box for every output pixel.
    std::vector<int> holeColumnsBefore(static_cast<std::size_t>(plane.width) + 1, 0);
    // only the columns this window's footprints reach (footprints rise with x)
    const int kLo = cols.empty() ? 0 : std::max(partX, cols.front().first - padX);
    const int kHi = cols.empty() ? 0 : std::min(partX + partW, cols.back().last + padX);
    auto touches = [&](const Footprint &c) {
        const int k0 = std::max(partX, c.first - padX), k1 = std::min(partX + partW, c.last + padX);
        return k1 > k0 && holeColumnsBefore[k1] > holeColumnsBefore[k0];
    };
    for (int y = yBegin; y < yEnd; ++y) {
        // Output rows count up from the bottom of the region of definition, plane rows down from its top.
        const Footprint rows = footprint(rod.y2 - 1 - y, cellsY, partH, partY);
        if (matte) {
            const int r0 = std::max(partY, rows.first - padY), r1 = std::min(partY + partH, rows.last + padY);
            for (int k = kLo; k < kHi; ++k) {
                bool any = false;
                for (int r = r0; r < r1 && !any; ++r) any = matte[static_cast<std::size_t>(r) * plane.width + k] != 0;
                holeColumnsBefore[k + 1] = holeColumnsBefore[k] + (any ? 1 : 0);
            }
        }
        D *o = reinterpret_cast<D *>(out.pixel(window.x1, y));
        for (int x = window.x1; x < window.x2; ++x, o += out.comps) {
            const Footprint &c = cols[x - window.x1];
            const bool fromSrc = src && src->bounds.contains(x, y);
            if (matte != nullptr && fromSrc && !touches(c)) {  // the host's own proxy pixel, converted as copyView
                copyPixel(at<A>(*src, x, y), src->comps, o, out.comps);  // does; alpha as writePlane's
                if (out.comps == 4 && !(alphaMode == AlphaMode::FromSource && src->comps == 4)) o[3] = opaque<D>();
                continue;
            }
            double sum[3] = {0, 0, 0}, weight = 0;
            for (int r = rows.first; r < rows.last; ++r) {
                const double wy = rows.share(r);
                const S *prow = pl + static_cast<std::size_t>(r) * plane.width * 3;
                for (int k = c.first; k < c.last; ++k) {
                    const double wgt = wy * c.share(k);
                    if (wgt <= 0) continue;
                    for (int ch = 0; ch < 3; ++ch) sum[ch] += wgt * toUnit(prow[static_cast<std::size_t>(k) * 3 + ch]);
                    weight += wgt;
                }
            }
            float rgb[3];
            for (int ch = 0; ch < 3; ++ch) rgb[ch] = weight > 0 ? static_cast<float>(sum[ch] / weight) : 0.f;
            if (out.comps == 1) {
                o[0] = fromUnit<D>(rgb[0]);
                continue;
            }
            for (int ch = 0; ch < 3; ++ch) o[ch] = fromUnit<D>(rgb[ch]);
            if (out.comps == 4) {
                D a = opaque<D>();
                if (alphaMode == AlphaMode::FromSource && fromSrc && src->comps == 4)
                    a = convert<A, D>(at<A>(*src, x, y)[3]);
                o[3] = a;
            }
        }
    }
}

// ---- writeMatted ----------------------------------------------------------------------------------------------
// Whether the Source's sample differs from the one trained on: exactly for integer samples; for float ones beyond
// a rounding's worth (1e-5 relative), since a float pipeline upstream need not give the same bits twice.
template <typename T> inline bool differs(T a, T b) {
    if constexpr (std::is_floating_point_v<T>)
        return std::fabs(a - b) > 1e-5f * std::max(1.0f, std::max(std::fabs(a), std::fabs(b)));
    else
        return a != b;
}

template <typename S, typename D, typename A>
std::size_t writeMattedT(const Plane &plane, const unsigned char *matte, const Sampling &map, const View &src,
                         const View &out, const Rect &window, int yBegin, int yEnd, AlphaMode alphaMode) {
    const S *pl = static_cast<const S *>(plane.data);
    const bool comparable = std::is_same_v<S, A> && src.comps >= 3;
    std::size_t changed = 0;
    for (int y = yBegin; y < yEnd; ++y) {
        const int r = map.row(y);
        const S *prow = pl + static_cast<std::size_t>(r) * plane.width * 3;
        const unsigned char *mrow = matte + static_cast<std::size_t>(r) * plane.width;
        D *o = reinterpret_cast<D *>(out.pixel(window.x1, y));
        for (int x = window.x1; x < window.x2; ++x, o += out.comps) {
            const int c = map.column(x);
            const S *p = prow + static_cast<std::size_t>(c) * 3;
            const bool fromSrc = src.bounds.contains(x, y);
            if (mrow[c] == 0 && fromSrc) {
                const A *s = at<A>(src, x, y);
                if constexpr (std::is_same_v<S, A>) {
                    if (comparable && (differs(s[0], p[0]) || differs(s[1], p[1]) || differs(s[2], p[2]))) ++changed;
                }
                copyPixel(s, src.comps, o, out.comps);
                if (out.comps == 4 && !(alphaMode == AlphaMode::FromSource && src.comps == 4)) o[3] = opaque<D>();
                continue;
            }
            o[0] = convert<S, D>(p[0]);
            if (out.comps == 1) continue;
            o[1] = convert<S, D>(p[1]);
            o[2] = convert<S, D>(p[2]);
            if (out.comps == 4)
                o[3] = alphaMode == AlphaMode::FromSource && fromSrc && src.comps == 4 ? convert<A, D>(at<A>(src, x, y)[3])
                                                                                       : opaque<D>();
        }
    }
    return changed;
}

// ---- copyView -------------------------------------------------------------------------------------------------
template <typename S, typename D>
void copyViewT(const View &src, const View &out, const Rect &window, int yBegin, int yEnd) {
    for (int y = yBegin; y < yEnd; ++y) {
        D *o = reinterpret_cast<D *>(out.pixel(window.x1, y));
        for (int x = window.x1; x < window.x2; ++x, o += out.comps) {
            if (!src.bounds.contains(x, y)) {
                for (int c = 0; c < out.comps; ++c) o[c] = 0;
                continue;
            }
            copyPixel(at<S>(src, x, y), src.comps, o, out.comps);
        }
    }
}

template <typename S, typename D>
void overlayT(const View &src, const unsigned char *mask, const Sampling &map, const View &out, const Rect &window,
              int yBegin, int yEnd) {
    for (int y = yBegin; y < yEnd; ++y) {
        const unsigned char *mrow = mask + static_cast<std::size_t>(map.row(y)) * map.planeWidth;
        D *o = reinterpret_cast<D *>(out.pixel(window.x1, y));
        for (int x = window.x1; x < window.x2; ++x, o += out.comps) {
            float rgb[3] = {0.f, 0.f, 0.f}, a = 1.f;
            if (src.bounds.contains(x, y)) {
                const S *p = at<S>(src, x, y);
                for (int c = 0; c < 3; ++c) rgb[c] = toUnit(p[src.comps == 1 ? 0 : c]);
                if (src.comps == 4) a = toUnit(p[3]);
            }
            if (mrow[map.column(x)]) {
                rgb[0] = 0.5f * rgb[0] + 0.5f;
                rgb[1] *= 0.5f;
                rgb[2] *= 0.5f;
            }
            if (out.comps == 1) {
                o[0] = fromUnit<D>(a);
                continue;
            }
            for (int c = 0; c < 3; ++c) o[c] = fromUnit<D>(rgb[c]);
            if (out.comps == 4) o[3] = fromUnit<D>(a);
        }
    }
}

template <typename S, typename D> void convertPlaneT(const Plane &src, const Plane &dst) {
    const S *s = static_cast<const S *>(src.data);
    D *d = static_cast<D *>(dst.data);
    const std::size_t n = static_cast<std::size_t>(src.width) * src.height * src.comps;
    for (std::size_t i = 0; i < n; ++i) d[i] = convert<S, D>(s[i]);
}

}  // namespace

Rect unite(const Rect &a, const Rect &b) {
    if (a.width() <= 0 || a.height() <= 0) return b;
    if (b.width() <= 0 || b.height() <= 0) return a;
    return Rect{std::min(a.x1, b.x1), std::min(a.y1, b.y1), std::max(a.x2, b.x2), std::max(a.y2, b.y2)};
}

View within(const View &src, const Rect &region) {
    View v = src;
    v.bounds = Rect{std::max(src.bounds.x1, region.x1), std::max(src.bounds.y1, region.y1),
                    std::min(src.bounds.x2, region.x2), std::min(src.bounds.y2, region.y2)};
    if (v.bounds.width() <= 0 || v.bounds.height() <= 0) {
        v.bounds = Rect{src.bounds.x1, src.bounds.y1, src.bounds.x1, src.bounds.y1};  // nothing
        return v;
    }
    v.data = src.pixel(v.bounds.x1, v.bounds.y1);
    return v;
}

View shifted(const View &src, int dx, int dy) {
    View v = src;
    v.bounds = Rect{src.bounds.x1 + dx, src.bounds.y1 + dy, src.bounds.x2 + dx, src.bounds.y2 + dy};
    return v;
}

void packRgb(const View &src, const Rect &frame, const Plane &dst, int rowBegin, int rowEnd) {
    if (dst.depth != src.depth || dst.comps != 3 || dst.width != frame.width() || dst.height != frame.height())
        throw std::invalid_argument("packRgb: destination does not match the frame");
    withType(src.depth, [&](auto tag) { packRgbT<decltype(tag)>(src, frame, dst, rowBegin, rowEnd); });
}

std::size_t countSeeThrough(const View &src, const Rect &frame, const unsigned char *mask, int rowBegin, int rowEnd,
                            bool useAlpha, const Rect *only) {
    std::size_t n = 0;
    withType(src.depth, [&](auto tag) {
        n = countSeeThroughT<decltype(tag)>(src, frame, mask, rowBegin, rowEnd, useAlpha, only);
    });
    return n;
}

bool anyAlpha(const View &src) {
    if (src.comps != 4) return false;
    bool found = false;
    withType(src.depth, [&](auto tag) {
        using T = decltype(tag);
        for (int y = src.bounds.y1; y < src.bounds.y2 && !found; ++y)
            for (int x = src.bounds.x1; x < src.bounds.x2; ++x)
                if (toUnit<T>(at<T>(src, x, y)[3]) > 0.f) {
                    found = true;
                    break;
                }
    });
    return found;
}

MaskChannel matteChannel(const View &mask, MaskChannel chosen) {
    if (chosen != MaskChannel::Alpha || mask.comps == 1) return chosen;
    if (mask.comps == 3) return MaskChannel::Luminance;
    // Opaque everywhere only: an alpha of 0 everywhere is a frame with nothing to remove (a roto shape outside its
    // lifetime, the plate's colour passed through), whose luminance would make a hole of every bright pixel.
    bool seeThrough = false, colourVaries = false;
    withType(mask.depth, [&](auto tag) {
        using T = decltype(tag);
        if (mask.bounds.width() < 1 || mask.bounds.height() < 1) return;
        const T *first = at<T>(mask, mask.bounds.x1, mask.bounds.y1);
        for (int y = mask.bounds.y1; y < mask.bounds.y2 && !seeThrough; ++y) {
            const T *p = at<T>(mask, mask.bounds.x1, y);
            for (int x = mask.bounds.x1; x < mask.bounds.x2; ++x, p += 4) {
                seeThrough = seeThrough || toUnit<T>(p[3]) < 1.f - 1e-4f;  // a float alpha of 0.9999999: opaque
                colourVaries = colourVaries || p[0] != first[0] || p[1] != first[1] || p[2] != first[2];
            }
        }
    });
    return !seeThrough && colourVaries ? MaskChannel::Luminance : MaskChannel::Alpha;
}

std::size_t packMask(const View &mask, const Rect &frame, MaskChannel channel, bool invert, unsigned char *dst,
                     int rowBegin, int rowEnd, const Rect *only, unsigned char outside) {
    if (channel == MaskChannel::Alpha && mask.comps == 3)
        throw std::invalid_argument("the mask image has no alpha channel: set Mask channel to Luminance");
    std::size_t n = 0;
    withType(mask.depth, [&](auto tag) {
        n = packMaskT<decltype(tag)>(mask, frame, channel, invert, dst, rowBegin, rowEnd, only, outside);
    });
    return n;
}

int Sampling::column(int x) const {
    const int w = outRod.width(), pw = width();
    if (w <= 0) return subX;
    long long c = (w == pw) ? (x - outRod.x1) : static_cast<long long>(std::floor((x - outRod.x1 + 0.5) * pw / w));
    return subX + static_cast<int>(std::clamp<long long>(c, 0, pw - 1));
}

int Sampling::row(int y) const {
    const int h = outRod.height(), ph = height();
    if (h <= 0) return subY;
    long long up = (h == ph) ? (y - outRod.y1) : static_cast<long long>(std::floor((y - outRod.y1 + 0.5) * ph / h));
    up = std::clamp<long long>(up, 0, ph - 1);
    return subY + ph - 1 - static_cast<int>(up);
}

void writePlane(const Plane &plane, const Sampling &map, const View &out, const Rect &window, int yBegin, int yEnd,
                const View *alphaSrc, AlphaMode alphaMode) {
    if (plane.comps != 3) throw std::invalid_argument("writePlane: the plane must be RGB");
    withType(plane.depth, [&](auto s) {
        withType(out.depth, [&](auto d) {
            writePlaneT<decltype(s), decltype(d)>(plane, map, out, window, yBegin, yEnd, alphaSrc, alphaMode);
        });
    });
}

void writeProxy(const Plane &plane, const unsigned char *matte, const Sampling &map, const View *src,
                const View &out, const Rect &window, int yBegin, int yEnd, AlphaMode alphaMode) {
    if (plane.comps != 3) throw std::invalid_argument("writeProxy: the plane must be RGB");
    withType(plane.depth, [&](auto s) {
        withType(out.depth, [&](auto d) {
            withType(src ? src->depth : out.depth, [&](auto a) {
                writeProxyT<decltype(s), decltype(d), decltype(a)>(plane, matte, map, src, out, window, yBegin,
                                                                     yEnd, alphaMode);
            });
        });
    });
}

std::size_t writeMatted(const Plane &plane, const unsigned char *matte, const Sampling &map, const View &src,
                        const View &out, const Rect &window, int yBegin, int yEnd, AlphaMode alphaMode) {
    if (plane.comps != 3) throw std::invalid_argument("writeMatted: the plane must be RGB");
    std::size_t changed = 0;
    withType(plane.depth, [&](auto s) {
        withType(out.depth, [&](auto d) {
            withType(src.depth, [&](auto a) {
                changed = writeMattedT<decltype(s), decltype(d), decltype(a)>(plane, matte, map, src, out, window,
                                                                               yBegin, yEnd, alphaMode);
            });
        });
    });
    return changed;
}

void copyView(const View &src, const View &out, const Rect &window, int yBegin, int yEnd) {
    withType(src.depth, [&](auto s) {
        withType(out.depth, [&](auto d) { copyViewT<decltype(s), decltype(d)>(src, out, window, yBegin, yEnd); });
    });
}

void overlayMask(const View &src, const unsigned char *mask, const Sampling &map, const View &out,
                 const Rect &window, int yBegin, int yEnd) {
    withType(src.depth, [&](auto s) {
        withType(out.depth,
                 [&](auto d) { overlayT<decltype(s), decltype(d)>(src, mask, map, out, window, yBegin, yEnd); });
    });
}

void convertPlane(const Plane &src, const Plane &dst) {
    if (src.width != dst.width || src.height != dst.height || src.comps != dst.comps)
        throw std::invalid_argument("convertPlane: shapes differ");
    withType(src.depth, [&](auto s) {
        withType(dst.depth, [&](auto d) { convertPlaneT<decltype(s), decltype(d)>(src, dst); });
    });
}

}  // namespace vinpaint::px
