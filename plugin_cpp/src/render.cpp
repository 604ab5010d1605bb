// Render(t): a finished frame comes from the daemon (through the in-plugin cache) and is written out, also while
// the job still trains other windows of a long shot; an unfinished one shows the source with a persistent message
// in interactive use, or is waited for (polling, with the host's abort check) in a batch render when the node
// says so. A dead daemon is a message and a failure.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
#include <utility>

#include "effect.h"
#include "frame_cache.h"

namespace vinpaint {

namespace {

struct RenderArgs {
    OfxTime time = 0;
    px::Rect window;
    bool interactive = true;
    // A final render in Natron's window: its viewer's playback is one too (Natron gives playback no interactive
    // render status), so such a render neither trains the node nor waits for a frame (finding: playback stalled
    // until training finished); a background render (NatronRenderer) does both.
    bool natronWindow = false;
    int fieldParity = -1;  // a single field is rendered: only rows y with y % 2 == fieldParity (0 lower, 1 upper)
    double scaleX = 1.0, scaleY = 1.0;  // kOfxImageEffectPropRenderScale
};

bool aborted(OfxImageEffectHandle h) { return ofx::suites().effect->abort && ofx::suites().effect->abort(h) != 0; }

// How long a waiting batch render lets a job go without any sign of progress before it fails the frame: farm and
// command-line renders rarely abort, so a job that stalls in a daemon that still answers (a hung trainer, a
// streaming job whose uploads never come) would otherwise hold the render forever. VINPAINT_BATCH_STALL_MINUTES
// (decimals allowed; 0: no limit); 30 minutes by default, far above any pause between a job's progress reports.
constexpr double kDefaultStallMinutes = 30.0;

double batchStallSeconds() {
    const char *v = std::getenv("VINPAINT_BATCH_STALL_MINUTES");
    if (!v || !*v) return kDefaultStallMinutes * 60.0;
    char *end = nullptr;
    const double minutes = std::strtod(v, &end);
    if (end == v || !std::isfinite(minutes) || minutes < 0) return kDefaultStallMinutes * 60.0;
    return minutes * 60.0;
}

// Everything in a job's status that moves while it makes progress (its own steps, its place in the queue, the
// daemon's sentence, which names the job training ahead of a queued one); not the clock.
std::string progressSignature(const proto::StatusReply &st) {
    return st.state + '\x1f' + st.phase + '\x1f' + std::to_string(st.step) + '/' + std::to_string(st.total) + '\x1f' +
           (st.position ? std::to_string(*st.position) : "-") + '\x1f' +
           (st.framesDone ? std::to_string(*st.framesDone) : "-") + '\x1f' + st.message;
}

std::string durationText(double seconds) {
    char text[32];
    if (seconds < 120) std::snprintf(text, sizeof text, "%g s", std::round(seconds * 10.0) / 10.0);
    else std::snprintf(text, sizeof text, "%g min", std::round(seconds / 6.0) / 10.0);
    return text;
}

// Copies/transforms row bands of the window, checking the host's abort flag between bands. For a single-field
// render only that field's rows are written (the host keeps the other field's rows from its other render).
template <typename F> bool forWindowRows(OfxImageEffectHandle h, const px::Rect &window, int fieldParity, F &&rowsFn) {
    const int rows = window.height();
    constexpr int kChunk = 64;
    for (int y = 0; y < rows; y += kChunk) {
        if (aborted(h)) return false;
        const int end = std::min(rows, y + kChunk);
        if (fieldParity < 0) {
            forRowBands(end - y, [&](int a, int b) { rowsFn(window.y1 + y + a, window.y1 + y + b); });
        } else {
            for (int r = window.y1 + y; r < window.y1 + end; ++r)
                if (((r % 2) + 2) % 2 == fieldParity) rowsFn(r, r + 1);
        }
    }
    return true;
}

void writeSource(Instance &inst, const px::View &src, const px::View &out, const RenderArgs &a) {
    forWindowRows(inst.handle, a.window, a.fieldParity, [&](int y0, int y1) { px::copyView(src, out, a.window, y0, y1); });
}

class Renderer {
public:
    Renderer(Instance &inst, const RenderArgs &args)
        : inst_(inst), a_(args), budget_(Timeouts::interactive().control) {}
    OfxStatus run();

private:
    // The daemon's result frame, or (matte) its matte: white = propagated, grey = generated, black = outside.
    OfxStatus inpainted(bool matte = false);
    std::string trainForBatch(bool *abortedNow, std::pair<std::string, int> *job);
    void checkRenderJob();
    // A warning when the Reference input at this frame is not what Train sent (another painting, or one connected
    // since); empty when it is, or when nothing can be said (the trained references are not known).
    std::string referenceWarning(const JobReferences &refs, int index, const px::Plane &plane);
    OfxStatus overlay();
    OfxStatus showSourceWith(const char *type, const std::string &message);
    OfxStatus fail(const std::string &message);
    bool writeResult(const FetchedFrame &f, const std::string &job, int index);
    std::optional<FetchedFrame> matteOf(const std::string &job, int index, int width, int height);
    DaemonClient renderClient();
    bool writeMatte(const FetchedFrame &f);
    // inCanvas: the plane is the job's (a frame or matte), placed as sampling() says; else it covers the output.
    bool writeMattePlane(const std::vector<unsigned char> &rgb, int width, int height, bool inCanvas);
    proto::Geometry geometry(DaemonClient &client, const std::string &job);
    // How the output maps onto a plane of the job's (width x height): the frame's part of its canvas.
    px::Sampling sampling(int width, int height);
    std::optional<px::Rect> canvasOf(int width, int height);
    bool knownMoving();

    Instance &inst_;
    RenderArgs a_;
    ofx::Image srcImg_, outImg_;
    px::View src_, out_;
    px::Rect srcRod_;
    bool hasSource_ = false;
    std::string job_;     // the node's job and the Source frame that is its frame 0 (inpainted())
    int firstFrame_ = 0;
    RenderBudget budget_;  // an interactive render's time with the daemon, all its requests together
};

OfxStatus Renderer::run() {
    outImg_ = inst_.output.fetch(a_.time);
    if (!outImg_) throw OfxError(kOfxStatFailed, "vinpaint: the host gave no output image");
    out_ = viewOf(outImg_);
    // Never write outside what the host gave us, whatever window it asked for.
    a_.window.x1 = std::max(a_.window.x1, out_.bounds.x1);
    a_.window.y1 = std::max(a_.window.y1, out_.bounds.y1);
    a_.window.x2 = std::max(a_.window.x1, std::min(a_.window.x2, out_.bounds.x2));
    a_.window.y2 = std::max(a_.window.y1, std::min(a_.window.y2, out_.bounds.y2));
    srcImg_ = inst_.source.fetch(a_.time);
    if (srcImg_) {
        src_ = viewOf(srcImg_);
        srcRod_ = imageRod(srcImg_);
        hasSource_ = true;
    } else {
        // No source here (unconnected, or outside its range): transparent black, nothing to inpaint.
        src_ = px::View{nullptr, px::Rect{0, 0, 0, 0}, 0, out_.depth, out_.comps};
        srcRod_ = a_.window;
    }
    switch (inst_.outputChoice.getIntAt(a_.time)) {  // at the render's time: the spec's rule in render actions
        case kOutputSource:
            ofx::clearPersistentMessage(inst_.handle);  // a daemon error from an earlier render no longer applies
            writeSource(inst_, src_, out_, a_);
            return kOfxStatOK;
        case kOutputOverlay: return overlay();
        case kOutputMatte: return inpainted(true);
        default: return inpainted();
    }
}

OfxStatus Renderer::showSourceWith(const char *type, const std::string &message) {
    ofx::setPersistentMessage(inst_.handle, type, message);
    writeSource(inst_, src_, out_, a_);
    return kOfxStatOK;
}

OfxStatus Renderer::fail(const std::string &message) {
    ofx::setPersistentMessage(inst_.handle, kOfxMessageError, message);
    return kOfxStatFailed;
}

OfxStatus Renderer::overlay() {
    if (!hasSource_) {
        writeSource(inst_, src_, out_, a_);
        return kOfxStatOK;
    }
    const int w = srcRod_.width(), h = srcRod_.height();
    std::vector<unsigned char> mask(static_cast<std::size_t>(w) * h);
    try {
        if (inst_.filterContext || !inst_.mask.connected()) {
            if (src_.comps != 4)  // the Filter context has no Mask input: its mask is the Source's alpha (as Train says)
                return showSourceWith(kOfxMessageWarning, inst_.filterContext
                                                              ? "vinpaint: no mask: the Source has no alpha channel to "
                                                                "use as the mask"
                                                              : "vinpaint: no mask: connect the Mask input");
            px::packMask(src_, srcRod_, px::MaskChannel::Alpha, inst_.invertMask.getIntAt(a_.time) != 0, mask.data(), 0, h);
        } else {
            ofx::Image m = inst_.mask.fetch(a_.time);
            if (m) {
                const auto ch = inst_.maskChannel.getIntAt(a_.time) == kMaskLuminance ? px::MaskChannel::Luminance : px::MaskChannel::Alpha;
                const px::View mv = viewOf(m);
                px::packMask(mv, srcRod_, px::matteChannel(mv, ch), inst_.invertMask.getIntAt(a_.time) != 0,
                             mask.data(), 0, h);
            }
        }
    } catch (const std::invalid_argument &e) {
        return fail(std::string("vinpaint: ") + e.what());
    }
    px::Sampling map{srcRod_, w, h};
    forWindowRows(inst_.handle, a_.window, a_.fieldParity,
                  [&](int y0, int y1) { px::overlayMask(src_, mask.data(), map, out_, a_.window, y0, y1); });
    ofx::clearPersistentMessage(inst_.handle);
    return kOfxStatOK;
}

// Mattes a proxy render could not have (the daemon down, or a job without mattes) and when: not asked again for a
// minute, so scrubbing cached frames at a proxy scale never waits on a daemon that is gone, frame after frame.
struct MatteMisses {
    std::mutex mutex;
    std::map<std::pair<std::string, int>, std::chrono::steady_clock::time_point> when;
};
MatteMisses &matteMisses() {
    static MatteMisses misses;
    return misses;
}
constexpr std::chrono::seconds kMatteRetry{60};

// The job's matte for a proxy render (cached beside the frames like a Matte output's), or nothing when the daemon
// cannot give it: the proxy is then the result averaged everywhere, still close to the host's own proxy.
std::optional<FetchedFrame> Renderer::matteOf(const std::string &job, int index, int width, int height) {
    const std::string key = job + ":matte";
    std::optional<FetchedFrame> m = FrameCache::global().get(key, index);
    if (!m) {
        MatteMisses &misses = matteMisses();
        {
            std::lock_guard<std::mutex> lock(misses.mutex);
            auto it = misses.when.find({job, index});
            if (it != misses.when.end() && std::chrono::steady_clock::now() - it->second < kMatteRetry)
                return std::nullopt;
        }
        try {
            DaemonClient client = renderClient();
            m = client.fetch(job, index, static_cast<std::size_t>(width) * height, proto::kLayerMatte);
            FrameCache::global().put(key, index, *m);
        } catch (const Cancelled &) {
            return std::nullopt;  // the host aborted this render and discards it: ask again next time
        } catch (const std::exception &) {
            std::lock_guard<std::mutex> lock(misses.mutex);
            if (misses.when.size() > 100000) misses.when.clear();  // bounded, whatever a session scrubs
            misses.when[{job, index}] = std::chrono::steady_clock::now();
            return std::nullopt;
        }
    }
    if (m->spec.shape.size() != 3 || m->spec.shape[0] != static_cast<std::uint32_t>(height) ||
        m->spec.shape[1] != static_cast<std::uint32_t>(width) || m->spec.shape[2] != 1 || m->spec.dtype != px::Depth::U8)
        return std::nullopt;
    return m;
}

// A client for this render: the host's abort ends its waits, and it fails at once where nothing answered a moment
// ago. Batch renders too: a farm frame after one that just waited the patient timeout for no daemon fails at once
// (before: every frame waited 10 s again, 17 minutes for a 100-frame shot on a host that carries on).
DaemonClient Renderer::renderClient() {
    DaemonClient client(daemonAddress(inst_), a_.interactive ? Timeouts::interactive() : Timeouts::patient(),
                        [this] { return aborted(inst_.handle); });
    client.setFailFast(true);
    if (a_.interactive) client.setBudget(&budget_);
    return client;
}

// A frame or matte is the job's own size and type, or the daemon is at fault: never resampled into the output as if
// it were a proxy, and never cached.
void checkFetched(const FetchedFrame &f, const proto::Geometry &g, bool matte) {
    const proto::BufferSpec want = matte ? proto::BufferSpec{px::Depth::U8, {static_cast<std::uint32_t>(g.height),
                                                                             static_cast<std::uint32_t>(g.width), 1u}}
                                         : g.frameSpec();
    if (f.spec.shape == want.shape && f.spec.dtype == want.dtype) return;
    auto text = [](const proto::BufferSpec &b) {
        std::string t;
        for (std::uint32_t d : b.shape) t += (t.empty() ? "" : "x") + std::to_string(d);
        return t + " " + px::wireDtype(b.dtype);
    };
    throw DaemonError(std::string("vinpaint: the daemon returned a ") + (matte ? "matte" : "frame") + " of " +
                      text(f.spec) + " for a job of " + text(want) + " (height x width x channels): refused");
}

bool Renderer::writeResult(const FetchedFrame &f, const std::string &job, int index) {
    if (f.spec.shape.size() != 3 || (f.spec.shape[2] != 3 && f.spec.shape[2] != 4))
        throw DaemonError("vinpaint: the daemon returned a frame that is not an RGB image");
    px::Plane plane{const_cast<void *>(f.data()), static_cast<int>(f.spec.shape[1]), static_cast<int>(f.spec.shape[0]),
                    static_cast<int>(f.spec.shape[2]), f.spec.dtype};
    std::vector<unsigned char> rgb;
    if (plane.comps == 4) {  // a job opened by another client with alpha: drop it, ours comes from the source
        rgb.resize(static_cast<std::size_t>(plane.width) * plane.height * 3 * px::bytesOf(plane.depth));
        const std::size_t px = px::bytesOf(plane.depth);
        const auto *s = static_cast<const unsigned char *>(plane.data);
        for (std::size_t i = 0, n = static_cast<std::size_t>(plane.width) * plane.height; i < n; ++i)
            std::memcpy(&rgb[i * 3 * px], s + i * 4 * px, 3 * px);
        plane.data = rgb.data();
        plane.comps = 3;
    }
    const px::Sampling map = sampling(plane.width, plane.height);
    const px::Rect &rod = map.outRod;
    const bool maskFromAlpha = inst_.filterContext || !inst_.mask.connected();
    const px::AlphaMode alpha = maskFromAlpha ? px::AlphaMode::Opaque : px::AlphaMode::FromSource;
    // A frame with a painted reference differs from the source where its matte says nothing (the painting replaced
    // its hole): the result everywhere. Which frames were painted is what Train sent (its record), whatever the
    // Reference input is now: disconnected after Train, or another painting connected; the live input only for a
    // job whose record the node lacks (a project saved before it was kept).
    const JobReferences refs = jobReferences(inst_, job);
    const bool painted = refs.known ? refs.at(index) != nullptr : referencePaintedAt(inst_, a_.time);
    const std::optional<FetchedFrame> m =
        hasSource_ && !painted ? matteOf(job, index, plane.width, plane.height) : std::nullopt;
    const auto *matte = m ? static_cast<const unsigned char *>(m->data()) : nullptr;
    if (map.width() == rod.width() && map.height() == rod.height()) {
        const std::string refWarning = referenceWarning(refs, index, plane);
        if (!matte) {  // no source, a painted frame, or a daemon without mattes: the result as it came
            if (!forWindowRows(inst_.handle, a_.window, a_.fieldParity, [&](int y0, int y1) {
                    px::writePlane(plane, map, out_, a_.window, y0, y1, hasSource_ ? &src_ : nullptr, alpha);
                }))
                return false;
            if (refWarning.empty()) return true;
            ofx::setPersistentMessage(inst_.handle, kOfxMessageWarning, refWarning);
            return false;
        }
        // The result in the hole, the Source as it is now outside it (before, session 34: the daemon's whole frame,
        // so a grade upstream after Train vanished at full resolution and showed at proxy scale).
        std::atomic<std::size_t> changed{0};
        if (!forWindowRows(inst_.handle, a_.window, a_.fieldParity, [&](int y0, int y1) {
                changed += px::writeMatted(plane, matte, map, src_, out_, a_.window, y0, y1, alpha);
            }))
            return false;
        // Between frames (motion blur, a retime upstream) the host blends Source frames: no frame to compare with.
        if (changed == 0 || a_.time != std::floor(a_.time)) {
            if (refWarning.empty()) return true;
            ofx::setPersistentMessage(inst_.handle, kOfxMessageWarning, refWarning);
            return false;
        }
        ofx::setPersistentMessage(inst_.handle, kOfxMessageWarning,
                                  "vinpaint: the Source has changed since Train (" + std::to_string(changed.load()) +
                                      " pixels outside the hole differ at frame " + std::to_string(std::lround(a_.time)) +
                                      "): the fill was made from the plate as it was then. Press Train to fill this one");
        return false;
    }
    // A proxy render: the result averaged over each pixel's footprint inside the hole, the host's proxy outside it
    // (a painted frame: averaged everywhere).
    return forWindowRows(inst_.handle, a_.window, a_.fieldParity, [&](int y0, int y1) {
        px::writeProxy(plane, matte, map, hasSource_ ? &src_ : nullptr, out_, a_.window, y0, y1, alpha);
    });
}

std::string Renderer::referenceWarning(const JobReferences &refs, int index, const px::Plane &plane) {
    if (!refs.known || !hasSource_ || a_.time != std::floor(a_.time) || !referencePaintedAt(inst_, a_.time))
        return {};
    const Sha256::Digest *sent = refs.at(index);
    proto::Geometry g;
    g.width = plane.width;
    g.height = plane.height;
    g.dtype = plane.depth;
    std::optional<Sha256::Digest> now;
    try {
        px::Rect packed = srcRod_;  // a plate that never moved is its own canvas, as sampling() says
        if (const JobCanvas known = jobCanvas(inst_, job_); known.moving)
            packed = known.canvas;
        else if (srcRod_.width() != plane.width || srcRod_.height() != plane.height)
            if (const std::optional<px::Rect> canvas = canvasOf(plane.width, plane.height)) packed = *canvas;
        now = referenceDigestAt(inst_, a_.time, srcRod_, packed, g);
    } catch (const OfxError &) {
        return {};  // the host could not give the painting: nothing to compare
    } catch (const DaemonError &) {
        return {};
    } catch (const Cancelled &) {
        return {};
    }
    const std::string frame = std::to_string(std::lround(a_.time));
    if (now && sent && *now != *sent)
        return "vinpaint: the Reference painting at frame " + frame + " has changed since Train: the frame shows "
               "the fill trained with the painting Train sent. Press Train to use this one";
    if (now && !sent)
        return "vinpaint: the Reference input has a painting at frame " + frame + " that Train did not send (it "
               "was connected or painted since): the frame shows the fill trained without it. Press Train to use it";
    return {};
}

bool Renderer::writeMatte(const FetchedFrame &f) {
    if (f.spec.shape.size() != 3 || f.spec.shape[2] != 1 || f.spec.dtype != px::Depth::U8)
        throw DaemonError("vinpaint: the daemon returned a matte that is not a u1 [H,W,1] image");
    const int w = static_cast<int>(f.spec.shape[1]), h = static_cast<int>(f.spec.shape[0]);
    const auto *m = static_cast<const unsigned char *>(f.data());
    std::vector<unsigned char> rgb(static_cast<std::size_t>(w) * h * 3);
    for (std::size_t i = 0, n = static_cast<std::size_t>(w) * h; i < n; ++i) {
        const unsigned char v = m[i] == 1 ? 255 : m[i] == 2 ? 128 : 0;  // propagated, generated, outside the hole
        rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = v;
    }
    return writeMattePlane(rgb, w, h, true);
}

bool Renderer::writeMattePlane(const std::vector<unsigned char> &rgb, int width, int height, bool inCanvas) {
    px::Plane plane{const_cast<unsigned char *>(rgb.data()), width, height, 3, px::Depth::U8};
    const px::Rect rod = hasSource_ ? srcRod_ : imageRod(outImg_);
    const px::Sampling map = inCanvas ? sampling(width, height) : px::Sampling{rod, width, height};
    return forWindowRows(inst_.handle, a_.window, a_.fieldParity, [&](int y0, int y1) {
        px::writePlane(plane, map, out_, a_.window, y0, y1, nullptr, px::AlphaMode::Opaque);
    });
}

proto::Geometry Renderer::geometry(DaemonClient &client, const std::string &job) {
    {
        std::lock_guard<std::mutex> lock(inst_.mutex);
        if (inst_.geometryJob == job) return inst_.geometry;
    }
    const proto::StatusReply st = client.status(job);
    std::lock_guard<std::mutex> lock(inst_.mutex);
    inst_.geometryJob = job;
    inst_.geometry = st.geometry;
    return st.geometry;
}

// A job's planes hold its canvas. A plate whose region never moved is its own canvas (the frame's region at scale
// 1 has the plane's size): the output covers the whole plane, as before. A moving one (a stabilised plate) lies at
// its region's place in the union of the clip's regions over the job's frames: the output covers that part only,
// so each frame takes its pixels from where they were trained and writes only its own region. The canvas is the
// one Train kept with the job (jobCanvas): no host or daemon call. Where a moving job's part cannot be found, an
// error says so: never the whole canvas squeezed into the frame.
px::Sampling Renderer::sampling(int width, int height) {
    const px::Rect rod = hasSource_ ? srcRod_ : imageRod(outImg_);
    px::Sampling map{rod, width, height};
    const JobCanvas known = jobCanvas(inst_, job_);
    const bool moving = known.moving || knownMoving();
    const std::string frame = std::to_string(std::lround(a_.time));
    px::Rect full = rod;  // this frame's region at full resolution: the image's own at scale 1, else the host's
    if (a_.scaleX != 1.0 || a_.scaleY != 1.0) {
        try {
            full = sourcePixelRod(inst_, a_.time);
        } catch (const OfxError &) {
            if (!moving) return map;  // the host cannot say: the whole plane, as before
            throw OfxError(kOfxStatFailed, "vinpaint: the host does not give the Source's region of definition at "
                                           "frame " + frame + " at this proxy scale, and this node's job was "
                                           "trained on a moving plate's canvas: the frame's part of it cannot be "
                                           "found. Render it at full resolution");
        }
    }
    if (!moving && full.width() == width && full.height() == height) return map;
    px::Rect canvas;
    if (known.moving) {
        canvas = known.canvas;
    } else if (const std::optional<px::Rect> rebuilt = canvasOf(width, height)) {
        canvas = *rebuilt;
    } else if (hasSource_) {
        // The clip's regions do not move, and this frame is not the size Train read (a new plate version, a Crop
        // or Reformat upstream): before, the job's frame was stretched over it without a word.
        throw OfxError(kOfxStatFailed, "vinpaint: the Source at frame " + frame + " is " +
                                           std::to_string(full.width()) + "x" + std::to_string(full.height()) +
                                           ", but this node's job was trained on frames of " +
                                           std::to_string(width) + "x" + std::to_string(height) + ": the Source "
                                           "has changed size since Train. Press Train to fill it again");
    } else {
        return map;  // no Source to compare with: the job's frames over the output, as before
    }
    if (canvas.width() != width || canvas.height() != height)
        throw OfxError(kOfxStatFailed, "vinpaint: the daemon's frames for this node's job are " +
                                           std::to_string(width) + "x" + std::to_string(height) + ", but the job "
                                           "was trained on a canvas of " + std::to_string(canvas.width()) + "x" +
                                           std::to_string(canvas.height()) + ": press Train to fill it again");
    if (!canvas.contains(full))
        throw OfxError(kOfxStatFailed, "vinpaint: the Source's region of definition at frame " + frame + " (" +
                                           std::to_string(full.width()) + "x" + std::to_string(full.height()) +
                                           " at (" + std::to_string(full.x1) + ", " + std::to_string(full.y1) +
                                           ")) lies outside the canvas this node's job was trained on: the Source "
                                           "has moved since Train. Press Train to fill it again");
    map.subX = full.x1 - canvas.x1;
    map.subY = canvas.y2 - full.y2;  // plane rows count down from the canvas's top
    map.subWidth = full.width();
    map.subHeight = full.height();
    return map;
}

// Whether this instance worked out (canvasOf) that the node's job, one saved without its canvas, is a moving one.
bool Renderer::knownMoving() {
    std::lock_guard<std::mutex> lock(inst_.mutex);
    return inst_.canvasJob == job_ && inst_.canvasError.empty() && !inst_.canvasUnmoving;
}

// The canvas of a job saved before Train kept it (jobCanvas): the union of the Source's regions over the job's
// frames, asked of the host once per instance and job, whatever it found (an error is said again by every render,
// the host not asked again). Nothing when those regions do not move (as before); an error when they cannot be
// had, or span another size than the job's.
std::optional<px::Rect> Renderer::canvasOf(int width, int height) {
    int frames = 0;
    {
        std::lock_guard<std::mutex> lock(inst_.mutex);
        if (inst_.canvasJob == job_) {
            if (!inst_.canvasError.empty()) throw OfxError(kOfxStatFailed, inst_.canvasError);
            if (inst_.canvasUnmoving) return std::nullopt;
            return inst_.canvas;
        }
        if (inst_.geometryJob == job_) frames = inst_.geometry.frames;
    }
    if (frames == 0) {
        DaemonClient client = renderClient();
        frames = geometry(client, job_).frames;
    }
    const std::string span = "frames " + std::to_string(firstFrame_) + "-" + std::to_string(firstFrame_ + frames - 1);
    auto keep = [&](const std::optional<px::Rect> &canvas, const std::string &error) {
        std::lock_guard<std::mutex> lock(inst_.mutex);
        inst_.canvasJob = job_;
        inst_.canvas = canvas.value_or(px::Rect{});
        inst_.canvasUnmoving = !canvas && error.empty();
        inst_.canvasError = error;
        if (!error.empty()) throw OfxError(kOfxStatFailed, error);
        return canvas;
    };
    const std::string lost = ": the canvas this node's job was trained on (a plate whose region moves) cannot be "
                             "worked out again (the project was saved before the node kept it). Press Train to "
                             "fill it again";
    std::vector<OfxRectD> rods;
    try {
        for (int i = 0; i < frames; ++i) rods.push_back(inst_.source.regionOfDefinition(firstFrame_ + i));
    } catch (const OfxError &) {
        return keep(std::nullopt, "vinpaint: the host does not give the Source's regions of definition over " + span +
                                      lost);
    }
    if (rods.empty()) return keep(std::nullopt, {});
    const double par = sourcePixelAspect(inst_);
    std::vector<px::Rect> rects;
    for (std::size_t i = 0; i < rods.size(); ++i) {
        const std::optional<px::Rect> r = pixelRect(rods[i], par);
        if (!r)
            return keep(std::nullopt, "vinpaint: the Source's region of definition at frame " +
                                          std::to_string(firstFrame_ + static_cast<int>(i)) + " is not finite" + lost);
        rects.push_back(*r);
    }
    if (std::all_of(rects.begin(), rects.end(), [&](const px::Rect &r) { return r == rects[0]; }))
        return keep(std::nullopt, {});
    std::optional<px::Rect> canvas = rects[0];
    for (const px::Rect &r : rects) canvas = px::unite(*canvas, r);
    if (canvas->width() != width || canvas->height() != height)
        return keep(std::nullopt, "vinpaint: the Source's regions of definition over " + span + " now span " +
                                      std::to_string(canvas->width()) + "x" + std::to_string(canvas->height()) +
                                      ", but this node's job was trained on a canvas of " + std::to_string(width) +
                                      "x" + std::to_string(height) + ": the Source has moved since Train. Press "
                                      "Train to fill it again");
    return keep(canvas, {});
}

// A final render (a farm, a script, a host with no Train to press) of a node never trained: with Wait for training
// on, the node trains itself here, once, and the render then waits for its frame like any batch render.
// Returns an error for fail(), or empty with *job set when the job is there (or the host aborted: *abortedNow is
// set). The job comes back here, not through the node, which another thread's sequence may clear meanwhile.
std::string Renderer::trainForBatch(bool *abortedNow, std::pair<std::string, int> *job) {
    std::unique_lock<std::timed_mutex> lock(inst_.renderTrainMutex, std::defer_lock);
    while (!lock.try_lock_for(std::chrono::milliseconds(50))) {  // another thread trains this node
        if (aborted(inst_.handle)) {
            *abortedNow = true;
            return {};
        }
    }
    if (*job = nodeJob(inst_, a_.time); !job->first.empty()) return {};  // it did
    try {
        const auto trained = trainFromRender(inst_, [this] { return aborted(inst_.handle); });
        std::lock_guard<std::mutex> jobLock(inst_.mutex);
        inst_.renderJob = trained.first;
        inst_.renderJobFirst = trained.second->first;
        inst_.renderClip = trained.second;
        *job = {trained.first, trained.second->first};
        return {};
    } catch (const Cancelled &) {
        *abortedNow = true;
        return {};
    } catch (const DaemonError &e) {
        return std::string(e.what()) + " (while this render trained the node, which was never trained)";
    } catch (const OfxError &e) {
        return std::string(e.what()) + " (while this render trained the node, which was never trained)";
    }
}

// A job a final render trained, kept across one-frame final sequences (a host that wraps each frame of a range in
// its own): this frame, its mask and its painting are checked against what that Train read, once per sequence
// (one frame read, not the clip); where they differ, the node trains again.
void Renderer::checkRenderJob() {
    const int frame = static_cast<int>(std::lround(a_.time));
    std::shared_ptr<const TrainedClip> clip;
    {
        std::lock_guard<std::mutex> lock(inst_.mutex);
        if (inst_.renderVerify.erase(frame) == 0 || inst_.renderJob.empty() || !inst_.renderClip) return;
        clip = inst_.renderClip;
    }
    if (!inst_.jobId.getString().empty()) return;  // the node shows the job Train saved, not this one
    const int index = frame - clip->first;
    if (index < 0 || index >= clip->geometry.frames) return;  // outside the clip: the render passes the source
    if (trainedFrameUnchanged(inst_, *clip, index)) return;
    std::lock_guard<std::mutex> lock(inst_.mutex);
    if (inst_.renderClip != clip) return;  // another thread trained it again meanwhile
    inst_.renderJob.clear();
    inst_.renderClip.reset();
}

OfxStatus Renderer::inpainted(bool matte) {
    if (!a_.interactive) checkRenderJob();
    auto [job, firstFrame] = nodeJob(inst_, a_.time);
    if (job.empty()) {
        if (a_.interactive)
            return showSourceWith(kOfxMessageWarning, "vinpaint: not trained yet: press Train (showing the source)");
        // A final render (a farm, a script, a Write node, a host with no Train to press) trains the node itself
        // when it is to wait for training anyway.
        if (a_.natronWindow)
            return fail("vinpaint: this node was never trained: press Train. Natron's playback and the renders "
                        "started from its window do not train it; a background render (NatronRenderer) does");
        if (inst_.waitInBatch.getIntAt(a_.time) == 0)
            return fail("vinpaint: this node was never trained: press Train before a batch render, or turn on 'Wait "
                        "for training in batch renders' to have the render train it (docs/plugin.md, Scripted "
                        "renders)");
        bool abortedNow = false;
        std::pair<std::string, int> trained;
        if (std::string error = trainForBatch(&abortedNow, &trained); !error.empty()) return fail(error);
        if (abortedNow) return kOfxStatOK;  // the host discards the frame
        std::tie(job, firstFrame) = trained;
        if (job.empty()) return fail("vinpaint: this node was never trained: press Train before a batch render");
    }
    const int index = static_cast<int>(std::lround(a_.time)) - firstFrame;
    job_ = job;
    firstFrame_ = firstFrame;

    const std::string cacheKey = matte ? job + ":matte" : job;  // mattes are cached beside the frames
    auto write = [&](const FetchedFrame &f) { return matte ? writeMatte(f) : writeResult(f, job, index); };
    if (auto cached = FrameCache::global().get(cacheKey, index)) {
        // A job saved without its canvas may ask the daemon for its frame count here (canvasOf): its failures and
        // the host's abort are said as the fetch below says them, not as an error of the node.
        try {
            if (write(*cached)) ofx::clearPersistentMessage(inst_.handle);
        } catch (const Cancelled &) {
            return kOfxStatOK;  // the host aborted the render; it discards this frame
        } catch (const DaemonError &e) {
            return fail(e.what());
        }
        return kOfxStatOK;
    }

    const bool wait = !a_.interactive && !a_.natronWindow && inst_.waitInBatch.getIntAt(a_.time) != 0;
    DaemonClient client = renderClient();
    try {
        const proto::Geometry g = geometry(client, job);
        if (index < 0 || index >= g.frames) {  // outside the trained range: the source as it is (nothing filled)
            if (!matte) writeSource(inst_, src_, out_, a_);
            else writeMattePlane(std::vector<unsigned char>(3, 0), 1, 1, false);  // black: nothing of it is the hole
            return kOfxStatOK;
        }
        const double stallLimit = wait ? batchStallSeconds() : 0.0;
        int doneWithoutFrame = 0;
        std::string lastSignature;
        auto lastChange = std::chrono::steady_clock::now();
        // Always ask for the frame first, whatever the job's state: a daemon with "partial_results" serves a long
        // shot's frames as their windows finish, while later windows train (a frame once written never changes,
        // so it is cached like a finished job's). Only a frame not written yet ends in the status below.
        for (;;) {
            try {
                FetchedFrame f = matte ? client.fetch(job, index, static_cast<std::size_t>(g.width) * g.height,
                                                      proto::kLayerMatte)
                                       : client.fetch(job, index, g.frameBytes());
                checkFetched(f, g, matte);
                FrameCache::global().put(cacheKey, index, f);
                if (write(f)) ofx::clearPersistentMessage(inst_.handle);
                return kOfxStatOK;
            } catch (const RemoteError &e) {
                if (e.code != "not_ready") throw;
            }
            // Not finished: say how far it is, then show the source or wait.
            const proto::StatusReply st = client.status(job);
            if (st.state == "done") {  // finished between the two calls, once; never in a loop
                if (++doneWithoutFrame < 3) continue;
                return fail("vinpaint: the daemon at " + client.endpoint() + " says this node's job is done but has "
                            "no frame " + std::to_string(std::lround(a_.time)) + " to give: press Train");
            }
            const std::string where = describeJob(st);
            if (st.state == "failed") return fail("vinpaint: training failed: " + (st.error.empty() ? st.message : st.error));
            if (!a_.interactive && (!wait || st.state == "cancelled" || st.state == "uploading"))
                return fail("vinpaint: frame " + std::to_string(std::lround(a_.time)) + " is not ready (" + where + ")" +
                            (wait ? "" : a_.natronWindow ? "; Natron's playback and the renders started from its "
                                                           "window do not wait: render it once it is done, or in "
                                                           "the background (NatronRenderer)"
                                                         : "; turn on 'Wait for training in batch renders' to wait"));
            if (a_.interactive)
                // Natron keeps no persistent message of type Message (it goes to its error log, the node shows none)
                return showSourceWith(hostIsNatron() ? kOfxMessageWarning : kOfxMessageMessage,
                                      "vinpaint: " + where + " - showing the source; press Refresh to update");
            // Batch and waiting: poll about once a second; the host's abort ends the wait, and so does a job that
            // shows no progress for the stall limit.
            const auto now = std::chrono::steady_clock::now();
            if (const std::string signature = progressSignature(st); signature != lastSignature) {
                lastSignature = signature;
                lastChange = now;
            } else if (stallLimit > 0 && std::chrono::duration<double>(now - lastChange).count() >= stallLimit) {
                return fail("vinpaint: frame " + std::to_string(std::lround(a_.time)) + ": the daemon at " +
                            client.endpoint() + " reported no progress on this job for " + durationText(stallLimit) +
                            " (" + where + "); the render stops waiting rather than hang. The job is left as it "
                            "is. Set VINPAINT_BATCH_STALL_MINUTES to wait longer (0: no limit)");
            }
            for (int i = 0; i < 20; ++i) {
                if (aborted(inst_.handle)) return kOfxStatOK;  // the host discards the frame
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        }
    } catch (const Cancelled &) {
        return kOfxStatOK;  // the host aborted the render; it discards this frame
    } catch (const RemoteError &e) {
        if (e.code == "not_found")
            return fail("vinpaint: the daemon at " + client.endpoint() +
                        " does not know this node's job (its store was cleared, or it is another daemon): press Train");
        return fail(e.what());
    } catch (const DaemonError &e) {
        return fail(e.what());
    }
}

}  // namespace

OfxStatus render(OfxImageEffectHandle effect, ofx::PropSet inArgs) {
    Instance &inst = instanceOf(effect);
    RenderArgs a;
    a.time = inArgs.getDouble(kOfxPropTime);
    a.window = rectProp(inArgs, kOfxImageEffectPropRenderWindow);
    const std::string field = inArgs.tryString(kOfxImageEffectPropFieldToRender).value_or(kOfxImageFieldNone);
    if (field == kOfxImageFieldLower) a.fieldParity = 0;
    else if (field == kOfxImageFieldUpper) a.fieldParity = 1;
    a.scaleX = inArgs.tryDouble(kOfxImageEffectPropRenderScale, 0).value_or(1.0);
    a.scaleY = inArgs.tryDouble(kOfxImageEffectPropRenderScale, 1).value_or(a.scaleX);
    // Interactive renders show the source until a frame is done; final ones wait or fail (never the source with
    // OK). Hosts before OFX 1.4 give no render status: their sequence's kOfxPropIsInteractive (OFX 1.0) says, so a
    // Write render started from a GUI is not taken for the viewer.
    bool interactiveKnown = true;
    if (auto interactive = inArgs.tryInt(kOfxImageEffectPropInteractiveRenderStatus)) {
        a.interactive = *interactive != 0;
    } else if (const int sequence = inst.sequenceInteractive.load(); sequence >= 0) {
        a.interactive = sequence != 0;
    } else {
        interactiveKnown = false;
    }
    const bool background = hostIsBackground();
    if (!interactiveKnown) a.interactive = !background;
    a.natronWindow = !a.interactive && !background && hostIsNatron();
    return Renderer(inst, a).run();
}

OfxStatus beginSequenceRender(OfxImageEffectHandle effect, ofx::PropSet inArgs) {
    Instance &inst = instanceOf(effect);
    if (auto interactive = inArgs.tryInt(kOfxPropIsInteractive)) {
        inst.sequenceInteractive = *interactive != 0;
        // A final sequence of several frames trains again what a render trained before: the clip or its mask may
        // have changed (an unchanged clip is found again by its content, after a re-read). Not a sequence of one
        // frame in a background render: Natron's renderer wraps each frame in its own, and so does a farm rendering
        // one frame a task in a process it keeps (the whole clip was read again for every frame); nothing edits the
        // mask inside such a process.
        const double first = inArgs.tryDouble(kOfxImageEffectPropFrameRange, 0).value_or(0.0);
        const double last = inArgs.tryDouble(kOfxImageEffectPropFrameRange, 1).value_or(first + 1.0);
        if (*interactive == 0 && last != first) {
            forgetRenderJob(inst);
        } else if (*interactive == 0 && !hostIsBackground()) {
            // A GUI host may wrap every frame of a range in a sequence of its own: the job is kept while its
            // frames are new to it (each checked against what trained it, in its render); the first frame rendered
            // again since it trained (the user rendering again, after a roto fix, say) trains it again. Before
            // (2026-12-03) each such frame read the whole clip again: T frames read T times.
            const int frame = static_cast<int>(std::lround(first));
            std::lock_guard<std::mutex> lock(inst.mutex);
            if (inst.renderSeen.count(frame)) forgetRenderJobLocked(inst);
            inst.renderSeen.insert(frame);
            if (!inst.renderJob.empty()) inst.renderVerify.insert(frame);
        }
    }
    return kOfxStatOK;
}

// The hint holds only inside its sequence: a viewer render after a final one is not taken for final.
OfxStatus endSequenceRender(OfxImageEffectHandle effect) {
    instanceOf(effect).sequenceInteractive = -1;
    return kOfxStatOK;
}

}  // namespace vinpaint
