// Pixel conversion per bit depth: OFX images with offset bounds, padded and negative row bytes, 1/3/4 channels,
// packed top-down for the wire and written back; exact copies within a depth, the documented conversions across.
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "check.h"
#include "pixels.h"

using namespace vinpaint::px;

namespace {

// An OFX-style image held in a vector: bounds, bottom-up rows, optional padding, optionally negative row bytes.
template <typename T> struct TestImage {
    Rect bounds;
    int comps;
    std::vector<unsigned char> store;
    View view;
    TestImage(Rect b, int c, Depth d, int pad, bool negative) : bounds(b), comps(c) {
        const std::ptrdiff_t row = static_cast<std::ptrdiff_t>(b.width()) * c * sizeof(T) + pad;
        store.assign(static_cast<std::size_t>(row) * b.height(), 0xAB);
        view.bounds = b;
        view.comps = c;
        view.depth = d;
        if (negative) {  // first row (y1) at the end of the buffer, rows going down in memory
            view.data = store.data() + row * (b.height() - 1);
            view.rowBytes = -row;
        } else {
            view.data = store.data();
            view.rowBytes = row;
        }
    }
    T *at(int x, int y) { return reinterpret_cast<T *>(view.pixel(x, y)); }
};

template <typename T> T sampleValue(int x, int y, int c) {
    const int v = (x * 7 + y * 13 + c * 29) % 256;
    if constexpr (std::is_same_v<T, float>) return v / 255.f + 0.001f * c;
    else if constexpr (std::is_same_v<T, std::uint16_t>) return static_cast<T>(v * 251 + c);
    else return static_cast<T>(v);
}

template <typename T> void roundTrip(Depth d, int comps, bool negative) {
    const Rect frame{-3, 5, 17, 16};               // W=20, H=11, not at the origin
    const Rect bounds{-1, 6, 15, 16};              // smaller than the frame: the rest packs as 0
    TestImage<T> src(bounds, comps, d, 12, negative);
    for (int y = bounds.y1; y < bounds.y2; ++y)
        for (int x = bounds.x1; x < bounds.x2; ++x)
            for (int c = 0; c < comps; ++c) src.at(x, y)[c] = sampleValue<T>(x, y, c);

    std::vector<T> plane(static_cast<std::size_t>(frame.width()) * frame.height() * 3);
    Plane p{plane.data(), frame.width(), frame.height(), 3, d};
    packRgb(src.view, frame, p, 0, 4);
    packRgb(src.view, frame, p, 4, frame.height());  // in two bands, as the host's threads would
    bool exact = true;
    for (int r = 0; r < frame.height(); ++r) {
        const int y = frame.y2 - 1 - r;  // row 0 is the top of the picture
        for (int x = frame.x1; x < frame.x2; ++x)
            for (int c = 0; c < 3; ++c) {
                const T got = plane[(static_cast<std::size_t>(r) * frame.width() + (x - frame.x1)) * 3 + c];
                const T want = bounds.contains(x, y) ? sampleValue<T>(x, y, comps == 1 ? 0 : c) : T(0);
                if (std::memcmp(&got, &want, sizeof(T)) != 0) exact = false;
            }
    }
    CHECK_MSG(exact, "packRgb depth " + std::to_string(int(d)) + " comps " + std::to_string(comps));

    // Back into an output image of the same depth: identical to the source inside its bounds, alpha from it.
    TestImage<T> out(frame, comps == 1 ? 4 : comps, d, 4, !negative);
    Sampling map{frame, frame.width(), frame.height()};
    writePlane(p, map, out.view, frame, frame.y1, frame.y2, &src.view, AlphaMode::FromSource);
    exact = true;
    for (int y = bounds.y1; y < bounds.y2; ++y)
        for (int x = bounds.x1; x < bounds.x2; ++x) {
            for (int c = 0; c < 3; ++c) {
                const T want = sampleValue<T>(x, y, comps == 1 ? 0 : c);
                if (std::memcmp(&out.at(x, y)[c], &want, sizeof(T)) != 0) exact = false;
            }
            if (comps == 4 && std::memcmp(&out.at(x, y)[3], &src.at(x, y)[3], sizeof(T)) != 0) exact = false;
        }
    CHECK_MSG(exact, "writePlane round trip depth " + std::to_string(int(d)));
    // Padding bytes between rows are never touched.
    const std::size_t rowData = static_cast<std::size_t>(frame.width()) * out.comps * sizeof(T);
    const std::size_t row = rowData + 4;
    bool padIntact = true;
    for (int r = 0; r < frame.height(); ++r)
        for (std::size_t i = rowData; i < row; ++i)
            if (out.store[r * row + i] != 0xAB) padIntact = false;
    CHECK(padIntact);
}

void testMaskThresholds() {
    const Rect frame{0, 0, 4, 1};
    {  // u8 alpha image: 127 keeps, 128 removes (SPEC: more than half of full scale)
        std::vector<std::uint8_t> a = {0, 127, 128, 255};
        View v{reinterpret_cast<unsigned char *>(a.data()), frame, 4, Depth::U8, 1};
        unsigned char m[4];
        CHECK(packMask(v, frame, MaskChannel::Alpha, false, m, 0, 1) == 2);
        CHECK(m[0] == 0 && m[1] == 0 && m[2] == 255 && m[3] == 255);
        CHECK(packMask(v, frame, MaskChannel::Alpha, true, m, 0, 1) == 2);
        CHECK(m[0] == 255 && m[1] == 255 && m[2] == 0 && m[3] == 0);
    }
    {  // u16
        std::vector<std::uint16_t> a = {0, 32767, 32768, 65535};
        View v{reinterpret_cast<unsigned char *>(a.data()), frame, 8, Depth::U16, 1};
        unsigned char m[4];
        packMask(v, frame, MaskChannel::Alpha, false, m, 0, 1);
        CHECK(m[0] == 0 && m[1] == 0 && m[2] == 255 && m[3] == 255);
    }
    {  // float RGBA: alpha channel vs luminance
        std::vector<float> a = {1, 1, 1, 0.5f, 0, 0, 0, 0.51f, 1, 0, 0, 0, 0, 1, 0, 1};
        View v{reinterpret_cast<unsigned char *>(a.data()), frame, 64, Depth::F32, 4};
        unsigned char m[4];
        packMask(v, frame, MaskChannel::Alpha, false, m, 0, 1);
        CHECK(m[0] == 0 && m[1] == 255 && m[2] == 0 && m[3] == 255);
        packMask(v, frame, MaskChannel::Luminance, false, m, 0, 1);  // white, black, red (0.21), green (0.72)
        CHECK(m[0] == 255 && m[1] == 0 && m[2] == 0 && m[3] == 255);
    }
    {  // RGB has no alpha: a clear error, not garbage
        std::vector<std::uint8_t> a(12, 0);
        View v{a.data(), frame, 12, Depth::U8, 3};
        unsigned char m[4];
        bool threw = false;
        try {
            packMask(v, frame, MaskChannel::Alpha, false, m, 0, 1);
        } catch (const std::invalid_argument &) {
            threw = true;
        }
        CHECK(threw);
    }
    {  // matteChannel: Alpha asked of an image that carries no matte in an alpha reads its luminance
        std::vector<std::uint8_t> rgb = {0, 0, 0, 255, 255, 255, 0, 0, 0, 0, 0, 0};
        const View v3{rgb.data(), frame, 12, Depth::U8, 3};
        CHECK(matteChannel(v3, MaskChannel::Alpha) == MaskChannel::Luminance);  // RGB
        std::vector<std::uint8_t> opaque = {0, 0, 0, 255, 255, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255};
        const View vo{opaque.data(), frame, 16, Depth::U8, 4};
        CHECK(matteChannel(vo, MaskChannel::Alpha) == MaskChannel::Luminance);  // a b/w matte, alpha added opaque
        unsigned char m[4];
        CHECK(packMask(vo, frame, matteChannel(vo, MaskChannel::Alpha), false, m, 0, 1) == 1);
        CHECK(m[0] == 0 && m[1] == 255 && m[2] == 0 && m[3] == 0);
        std::vector<std::uint8_t> roto = {0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0};
        const View vr{roto.data(), frame, 16, Depth::U8, 4};
        CHECK(matteChannel(vr, MaskChannel::Alpha) == MaskChannel::Alpha);  // the alpha varies: it is the matte
        std::vector<std::uint8_t> flat(16, 255);
        const View vf{flat.data(), frame, 16, Depth::U8, 4};
        CHECK(matteChannel(vf, MaskChannel::Alpha) == MaskChannel::Alpha);  // nothing varies: the alpha as given
        // a roto shape outside its lifetime over the plate's colour: alpha 0 everywhere is nothing to remove, not
        // a hole at every bright pixel (a review, 2026-12-03)
        std::vector<std::uint8_t> absent = {10, 10, 10, 0, 250, 250, 250, 0, 200, 200, 200, 0, 30, 30, 30, 0};
        const View va{absent.data(), frame, 16, Depth::U8, 4};
        CHECK(matteChannel(va, MaskChannel::Alpha) == MaskChannel::Alpha);
        CHECK(packMask(va, frame, matteChannel(va, MaskChannel::Alpha), false, m, 0, 1) == 0);
        CHECK(matteChannel(vo, MaskChannel::Luminance) == MaskChannel::Luminance);
    }
}

// A reference's hole pixels must carry colour to take whole: alpha of at least one half, inside the bounds.
void testSeeThrough() {
    const Rect frame{0, 0, 4, 2};                    // two rows; top-down row 0 is y = 1
    const unsigned char hole[8] = {255, 255, 255, 0,  // top row: the first three pixels are hole
                                   0, 0, 255, 255};   // bottom row: the last two
    {  // u16 RGBA covering the frame: alpha per pixel, y = 0 (bottom) first in memory
        std::vector<std::uint16_t> a(4 * 8, 65535);
        auto alpha = [&](int x, int y) -> std::uint16_t & { return a[(static_cast<std::size_t>(y) * 4 + x) * 4 + 3]; };
        alpha(0, 1) = 32767;  // hole, below half
        alpha(1, 1) = 32768;  // hole, at half: paint enough
        alpha(3, 1) = 0;      // not hole: never counted
        alpha(3, 0) = 100;    // hole
        View v{reinterpret_cast<unsigned char *>(a.data()), frame, 32, Depth::U16, 4};
        CHECK(countSeeThrough(v, frame, hole, 0, 2) == 2);
        CHECK(countSeeThrough(v, frame, hole, 0, 1) + countSeeThrough(v, frame, hole, 1, 2) == 2);
    }
    {  // float RGBA with a NaN alpha in the hole
        std::vector<float> a(4 * 8, 1.f);
        a[(1 * 4 + 2) * 4 + 3] = std::nanf("");
        View v{reinterpret_cast<unsigned char *>(a.data()), frame, 64, Depth::F32, 4};
        CHECK(countSeeThrough(v, frame, hole, 0, 2) == 1);
    }
    {  // an alpha of 0 everywhere (an RGB image handed over as RGBA): no alpha at all, only the bounds count
        std::vector<std::uint8_t> a(4 * 8, 200);
        for (int i = 0; i < 8; ++i) a[i * 4 + 3] = 0;
        View v{a.data(), frame, 16, Depth::U8, 4};
        CHECK(!anyAlpha(v));
        CHECK(countSeeThrough(v, frame, hole, 0, 2) == 5 && countSeeThrough(v, frame, hole, 0, 2, false) == 0);
        a[7 * 4 + 3] = 1;  // one pixel with any coverage: the alpha means something
        CHECK(anyAlpha(v));
    }
    {  // RGB whose bounds miss the frame's left column: the one hole pixel there (x = 0, top row; none below)
        const Rect bounds{1, 0, 4, 2};
        std::vector<std::uint8_t> a(3 * 6, 200);
        View v{a.data(), bounds, 9, Depth::U8, 3};
        CHECK(countSeeThrough(v, frame, hole, 0, 2) == 1);
        const unsigned char none[8] = {};
        CHECK(countSeeThrough(v, frame, none, 0, 2) == 0);
    }
}

void testDepthConversion() {
    // One u8 plane written to u16 and float outputs, and back.
    std::vector<std::uint8_t> p8 = {0, 1, 128, 254, 255, 77};
    Plane plane{p8.data(), 2, 1, 3, Depth::U8};
    const Rect r{0, 0, 2, 1};
    Sampling map{r, 2, 1};
    std::vector<std::uint16_t> o16(8, 0);
    View v16{reinterpret_cast<unsigned char *>(o16.data()), r, 16, Depth::U16, 4};
    writePlane(plane, map, v16, r, 0, 1, nullptr, AlphaMode::Opaque);
    CHECK(o16[0] == 0 && o16[1] == 257 && o16[2] == 128 * 257 && o16[3] == 65535);
    CHECK(o16[4] == 254 * 257 && o16[5] == 65535 && o16[6] == 77 * 257 && o16[7] == 65535);
    std::vector<float> of(8, 0);
    View vf{reinterpret_cast<unsigned char *>(of.data()), r, 32, Depth::F32, 4};
    writePlane(plane, map, vf, r, 0, 1, nullptr, AlphaMode::Opaque);
    CHECK(of[0] == 0.f && std::fabs(of[2] - 128 / 255.f) < 1e-7f && of[5] == 1.f && of[7] == 1.f);
    // float -> u8 rounds to nearest and clamps; u16 -> u8 rounds.
    std::vector<float> pf = {-0.5f, 0.5f, 1.5f, 0.002f, 0.998f, std::nanf("")};
    Plane planeF{pf.data(), 2, 1, 3, Depth::F32};
    std::vector<std::uint8_t> o8(6, 9);
    View v8{o8.data(), r, 6, Depth::U8, 3};
    writePlane(planeF, map, v8, r, 0, 1, nullptr, AlphaMode::Opaque);
    CHECK(o8[0] == 0 && o8[1] == 128 && o8[2] == 255 && o8[3] == 1 && o8[4] == 254 && o8[5] == 0);
    std::vector<std::uint16_t> p16 = {0, 128, 129, 32768, 65278, 65535};
    std::vector<std::uint8_t> c8(6);
    convertPlane(Plane{p16.data(), 2, 1, 3, Depth::U16}, Plane{c8.data(), 2, 1, 3, Depth::U8});
    CHECK(c8[0] == 0 && c8[1] == 0 && c8[2] == 1 && c8[3] == 128 && c8[4] == 254 && c8[5] == 255);
}

void testSampling() {
    // At render scale 0.5 the output RoD is half the frame: each output pixel takes the centre-nearest pixel.
    Sampling s{Rect{0, 0, 5, 3}, 10, 6};
    CHECK(s.column(0) == 1 && s.column(4) == 9);
    CHECK(s.row(0) == 6 - 1 - 1 && s.row(2) == 0);  // y up: output row 0 is near the bottom of the frame
    Sampling same{Rect{-2, 3, 8, 9}, 10, 6};        // scale 1: the identity, whatever the origin
    bool identity = true;
    for (int x = -2; x < 8; ++x) identity &= same.column(x) == x + 2;
    for (int y = 3; y < 9; ++y) identity &= same.row(y) == 6 - 1 - (y - 3);
    CHECK(identity);
}

// A moving plate: each frame is its region's part of its job's canvas (the union of the clip's regions).
void testCanvas() {
    // The output's region (scale 1) maps to plane columns 3..6 and rows 1..3 (top-down), clamped to that part.
    Sampling part{Rect{10, 20, 14, 23}, 8, 6, 3, 1, 4, 3};
    CHECK(part.column(10) == 3 && part.column(13) == 6 && part.column(100) == 6 && part.column(-5) == 3);
    CHECK(part.row(22) == 1 && part.row(20) == 3 && part.row(99) == 1);
    // Packed into a canvas: a frame's pixels at its region's place, black outside it even where the image holds
    // more (within), and its mask never hole outside it, inverted or not.
    const Rect canvas{0, 0, 6, 4}, rod{2, 1, 5, 3};
    std::vector<std::uint8_t> rgba(8 * 5 * 4, 200);  // an image larger than its region: (-1, -1)-(7, 4)
    View big{rgba.data(), Rect{-1, -1, 7, 4}, 8 * 4, Depth::U8, 4};
    std::vector<std::uint8_t> plane(6 * 4 * 3, 7);
    packRgb(within(big, rod), canvas, Plane{plane.data(), 6, 4, 3, Depth::U8}, 0, 4);
    bool placed = true;
    for (int r = 0; r < 4; ++r)
        for (int x = 0; x < 6; ++x)
            placed &= plane[(static_cast<std::size_t>(r) * 6 + x) * 3] == (rod.contains(x, 3 - r) ? 200 : 0);
    CHECK_MSG(placed, "packRgb into a canvas");
    std::vector<std::uint8_t> mask(6 * 4, 9);
    for (bool invert : {false, true}) {
        // no mask pixel outside the region: inverted, that would be hole but for the region
        const std::size_t holes =
            packMask(within(big, rod), canvas, MaskChannel::Alpha, invert, mask.data(), 0, 4, &rod);
        bool inside = true;
        for (int r = 0; r < 4; ++r)
            for (int x = 0; x < 6; ++x)
                inside &= mask[static_cast<std::size_t>(r) * 6 + x] == (rod.contains(x, 3 - r) && !invert ? 255 : 0);
        CHECK_MSG(inside && holes == (invert ? 0u : 6u), "packMask limited to the frame's region");
    }
    {  // a moving plate's margin as hole: 255 outside the region, not counted; the frame's own pixels as before
        const std::size_t holes =
            packMask(within(big, rod), canvas, MaskChannel::Alpha, false, mask.data(), 0, 4, &rod, 255);
        bool margin = true;
        for (int r = 0; r < 4; ++r)
            for (int x = 0; x < 6; ++x) margin &= mask[static_cast<std::size_t>(r) * 6 + x] == 255;
        CHECK_MSG(margin && holes == 6u, "packMask: the margin is hole, and only the region's holes are counted");
        // a painting covering its frame: the margin is hole but no part of it, so it is not seen through
        CHECK(countSeeThrough(within(big, rod), canvas, mask.data(), 0, 4, true, &rod) == 0);
        CHECK(countSeeThrough(within(big, rod), canvas, mask.data(), 0, 4, true) == 18u);
    }
    // shifted: a painting whose region starts elsewhere answers at the frame's place.
    const View moved = shifted(big, 3, -2);
    CHECK(moved.bounds.x1 == 2 && moved.bounds.y1 == -3 && moved.pixel(2, -3) == big.pixel(-1, -1));
    // A proxy (one output pixel for a 2x2 part) averages its part only, not the canvas beside it.
    std::vector<std::uint8_t> cells = {0, 0, 0, 0, 0, 0, 100, 100, 100, 200, 200, 200,
                                       0, 0, 0, 0, 0, 0, 100, 100, 100, 200, 200, 200};
    std::uint8_t o[3] = {1, 1, 1};
    Sampling half{Rect{0, 0, 1, 1}, 4, 2, 2, 0, 2, 2};
    const View out{o, Rect{0, 0, 1, 1}, 3, Depth::U8, 3};
    writeProxy(Plane{cells.data(), 4, 2, 3, Depth::U8}, nullptr, half, nullptr, out, Rect{0, 0, 1, 1}, 0, 1,
               AlphaMode::Opaque);
    CHECK(o[0] == 150 && o[1] == 150 && o[2] == 150);
}

void testCopyChannels() {
    const Rect r{0, 0, 1, 1};
    std::uint8_t rgb[3] = {10, 20, 30};
    View src{rgb, r, 3, Depth::U8, 3};
    std::uint8_t rgba[4] = {0, 0, 0, 0};
    View out{rgba, r, 4, Depth::U8, 4};
    copyView(src, out, r, 0, 1);
    CHECK(rgba[0] == 10 && rgba[1] == 20 && rgba[2] == 30 && rgba[3] == 255);
    // Outside the source's bounds the output is transparent black.
    View none{nullptr, Rect{0, 0, 0, 0}, 0, Depth::U8, 4};
    copyView(none, out, r, 0, 1);
    CHECK(rgba[0] == 0 && rgba[3] == 0);
}

}  // namespace

int main() {
    for (bool neg : {false, true}) {
        roundTrip<std::uint8_t>(Depth::U8, 4, neg);
        roundTrip<std::uint8_t>(Depth::U8, 3, neg);
        roundTrip<std::uint16_t>(Depth::U16, 4, neg);
        roundTrip<std::uint16_t>(Depth::U16, 3, neg);
        roundTrip<float>(Depth::F32, 4, neg);
        roundTrip<float>(Depth::F32, 3, neg);
        roundTrip<std::uint8_t>(Depth::U8, 1, neg);
    }
    testMaskThresholds();
    testSeeThrough();
    testDepthConversion();
    testSampling();
    testCopyChannels();
    testCanvas();
    TEST_MAIN_END();
}
