// Pixel conversion between OFX images (bottom-up rows, bounds, row bytes, 8/16-bit or float, 1/3/4 channels)
// and the wire's packed arrays (top-down [H][W][C], little-endian u1/u2/f4). One template per bit depth pair;
// every function works on a band of rows so callers can split the work over the host's threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace vinpaint::px {

enum class Depth : std::uint8_t { U8, U16, F32 };

std::size_t bytesOf(Depth d);
std::optional<Depth> depthFromOfx(const std::string &ofxBitDepth);  // kOfxBitDepthByte ...
const char *ofxDepthName(Depth d);
const char *wireDtype(Depth d);                                      // "u1" | "u2" | "f4"
std::optional<Depth> depthFromWire(const std::string &dtype);
// Components from kOfxImageComponent*: 1 (Alpha), 3 (RGB), 4 (RGBA); nullopt otherwise.
std::optional<int> componentsFromOfx(const std::string &ofxComponents);

struct Rect {
    int x1 = 0, y1 = 0, x2 = 0, y2 = 0;
    int width() const { return x2 - x1; }
    int height() const { return y2 - y1; }
    bool contains(int x, int y) const { return x >= x1 && x < x2 && y >= y1 && y < y2; }
    bool contains(const Rect &r) const { return r.x1 >= x1 && r.y1 >= y1 && r.x2 <= x2 && r.y2 <= y2; }
    bool operator==(const Rect &r) const { return x1 == r.x1 && y1 == r.y1 && x2 == r.x2 && y2 == r.y2; }
    bool operator!=(const Rect &r) const { return !(*this == r); }
};

// The smallest rectangle holding both (an empty one, width or height 0 or less, holds nothing).
Rect unite(const Rect &a, const Rect &b);

// An OFX image as the host hands it over: data points at pixel (bounds.x1, bounds.y1), rows go up in memory by
// rowBytes (which may be negative or padded).
struct View {
    unsigned char *data = nullptr;
    Rect bounds;
    std::ptrdiff_t rowBytes = 0;
    Depth depth = Depth::U8;
    int comps = 4;

    std::size_t pixelBytes() const { return bytesOf(depth) * static_cast<std::size_t>(comps); }
    unsigned char *row(int y) const { return data + static_cast<std::ptrdiff_t>(y - bounds.y1) * rowBytes; }
    unsigned char *pixel(int x, int y) const {
        return row(y) + static_cast<std::ptrdiff_t>(x - bounds.x1) * static_cast<std::ptrdiff_t>(pixelBytes());
    }
};

// A packed top-down array as it travels on the wire: row 0 is the top of the frame.
struct Plane {
    void *data = nullptr;
    int width = 0, height = 0, comps = 3;
    Depth depth = Depth::U8;
    std::size_t bytes() const {
        return static_cast<std::size_t>(width) * height * comps * bytesOf(depth);
    }
};

enum class MaskChannel { Alpha, Luminance };

// The channel a mask image is read from when `chosen` is Alpha: its luminance where the image carries no matte in
// an alpha, an RGB image or an alpha opaque everywhere while the colour varies (a black-and-white matte read with
// an added opaque alpha; read as alpha, every pixel would be hole). Before (2026-12-03) an RGB mask failed every Train and render, and hosts without Choice
// parameters (HostSupport's example) could not set Mask channel to Luminance.
MaskChannel matteChannel(const View &mask, MaskChannel chosen);

// src with its pixels limited to `region` (bounds cut to it; an image may hold pixels outside its region of
// definition, which to a host are not part of the frame).
View within(const View &src, const Rect &region);
// src moved by (dx, dy): its pixel (x, y) answers at (x + dx, y + dy). Addressing is unchanged, only the bounds move.
View shifted(const View &src, int dx, int dy);

// Rows [rowBegin, rowEnd) of the frame (top-down row numbers) of src's RGB into dst (dst.depth == src.depth,
// dst.comps == 3, dst.width/height == frame size). Pixels of the frame outside src.bounds become 0. Exact copy.
void packRgb(const View &src, const Rect &frame, const Plane &dst, int rowBegin, int rowEnd);

// Hole pixels (mask 255, packed as packMask writes it) in rows [rowBegin, rowEnd) where src gives no colour to
// take whole: outside src.bounds (transparent black to a host), or an alpha below one half on a 4-channel view.
// A painted reference replaces its frame's hole with its colour, so such pixels would come out black or faded.
// `useAlpha` false: only the bounds count (an alpha that means nothing, see anyAlpha). `only`: pixels outside it
// do not count (a moving plate's margin, hole on the canvas but no part of the painted frame).
std::size_t countSeeThrough(const View &src, const Rect &frame, const unsigned char *mask, int rowBegin, int rowEnd,
                            bool useAlpha = true, const Rect *only = nullptr);

// Whether a 4-channel view has any pixel with alpha above 0. Hosts that hand every clip over as RGBA (Nuke) give
// an RGB image an alpha of 0 everywhere: such an alpha says nothing about where the image was painted.
bool anyAlpha(const View &src);

// Hole mask of the same frame rows: dst is width*height bytes, 255 where (channel value, inverted if asked)
// is above one half, 0 elsewhere. A 1-channel view is its own alpha and luminance. Returns the hole pixel count.
// `only` (a frame's region inside a larger canvas `frame`): pixels outside it are `outside` (0: known, 255: hole
// to fill, as a moving plate's margin), whatever the mask says there, and not counted. Throws
// std::invalid_argument for Alpha on a 3-channel view (callers ask matteChannel first).
std::size_t packMask(const View &mask, const Rect &frame, MaskChannel channel, bool invert, unsigned char *dst,
                     int rowBegin, int rowEnd, const Rect *only = nullptr, unsigned char outside = 0);

// Maps output pixel coordinates to a plane: outRod (the output's region of definition in pixels at the current
// render scale) covers the plane's part [subX, subX + subWidth) x [subY, subY + subHeight) (top-down rows), so this
// also handles proxy render scales; at scale 1 the mapping is a translation. A frame of a moving plate is such a
// part of its job's canvas (the union of the clip's regions); subWidth 0: the whole plane (a plate that does not
// move, whose canvas is its frame). Columns and rows never leave the part.
struct Sampling {
    Rect outRod;
    int planeWidth = 0, planeHeight = 0;
    int subX = 0, subY = 0, subWidth = 0, subHeight = 0;
    int width() const { return subWidth > 0 ? subWidth : planeWidth; }     // of the part outRod covers
    int height() const { return subHeight > 0 ? subHeight : planeHeight; }
    int column(int x) const;  // plane column for output x
    int row(int y) const;     // plane row (top-down) for output y
};

enum class AlphaMode { FromSource, Opaque };

// Writes rows [yBegin, yEnd) of window into out from the plane's RGB (converted to out.depth). Alpha (when out
// has 4 channels): alphaSrc's alpha where it has one, else opaque.
void writePlane(const Plane &plane, const Sampling &map, const View &out, const Rect &window, int yBegin, int yEnd,
                const View *alphaSrc, AlphaMode alphaMode);

// Full-resolution renders (the plane is map.outRod's size) with the job's `matte` (plane-sized bytes, top-down, 0
// outside the hole): the plane where the matte marks the hole or src lacks the pixel, src's own pixel elsewhere
// (converted as copyView does; alpha as writePlane's), so a Source changed after Train (a grade upstream, a new
// plate version) shows the change outside the hole instead of the plate as it was. Returns how many pixels
// outside the hole differ in RGB between src and the plane (counted where their depths match, else 0): the
// caller's evidence that the fill no longer belongs to this Source.
std::size_t writeMatted(const Plane &plane, const unsigned char *matte, const Sampling &map, const View &src,
                        const View &out, const Rect &window, int yBegin, int yEnd, AlphaMode alphaMode);

// Proxy renders (render scale below 1, so the plane is larger than map.outRod): each output pixel's footprint in
// the plane is averaged by area (what a filtering host shows of the finished plate), except where the footprint
// touches no hole pixel of `matte` (plane-sized bytes, top-down, 0 outside the hole) and src has the pixel: there
// the output is src's own pixel, the host's proxy, so the node changes nothing outside the hole at any scale. The
// hole is looked for one proxy pixel beyond the footprint (a host's proxy pixels need not line up with it). A null
// matte or src averages every pixel. Alpha as writePlane's, with src as alphaSrc.
void writeProxy(const Plane &plane, const unsigned char *matte, const Sampling &map, const View *src,
                const View &out, const Rect &window, int yBegin, int yEnd, AlphaMode alphaMode);

// Copies src into out over rows of the window, converting depth and channels (RGB->RGBA gets opaque alpha,
// Alpha->RGB(A) puts the value in every channel). Pixels outside src.bounds become 0.
void copyView(const View &src, const View &out, const Rect &window, int yBegin, int yEnd);

// Source with the hole tinted red at half strength (for lining up masks): mask is a frame plane of bytes
// (255 = hole) sampled with map.
void overlayMask(const View &src, const unsigned char *mask, const Sampling &map, const View &out,
                 const Rect &window, int yBegin, int yEnd);

// Converts a whole plane to another depth (same layout); used when the project depth changed after Train.
void convertPlane(const Plane &src, const Plane &dst);

}  // namespace vinpaint::px
