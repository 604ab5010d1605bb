// Train: gather the clip in InstanceChanged (the spec lets a plugin fetch other frames' images there after a user
// edit), hash it, open the job, upload what the daemon lacks, start it, return. Training runs in the daemon; the
// host's UI is only busy for the upload, under its progress bar with cancel. A job of several windows on a daemon
// with feature "stream" is started before the upload, so its first window trains while the rest arrives.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "effect.h"
#include "frame_cache.h"
#include "sha256.h"

namespace vinpaint {

namespace {

std::string frameRangeText(const OfxRangeD &range) {
    char text[64];
    std::snprintf(text, sizeof text, "%.17g-%.17g", range.min, range.max);
    return text;
}

// "WxH at (x, y)": a region of definition in pixels, for messages.
std::string rectText(const px::Rect &r) {
    return std::to_string(r.width()) + "x" + std::to_string(r.height()) + " at (" + std::to_string(r.x1) + ", " +
           std::to_string(r.y1) + ")";
}

// A painting of a Source frame lies where the frame lies (its own region may start elsewhere, a file written and
// read back say): pixel (x, y) of its region is pixel (x, y) of the Source frame's.
px::View paintingView(const px::View &image, const px::Rect &rod, const px::Rect &srcRod) {
    return px::within(px::shifted(image, srcRod.x1 - rod.x1, srcRod.y1 - rod.y1), srcRod);
}

struct Item {
    std::optional<zmq::message_t> frame, mask;  // kept when the clip fits in the memory budget
    Sha256::Digest frameDigest{}, maskDigest{};
};

std::size_t memoryBudget() {
    std::size_t mb = 4096;
    if (const char *v = std::getenv("VINPAINT_TRAIN_MEMORY_MB"); v && *v) mb = std::strtoull(v, nullptr, 10);
    return mb * 1024 * 1024;
}

class TrainJob {
public:
    explicit TrainJob(Instance &inst) : inst_(inst) {}
    // From a batch render (trainFromRender): no parameter is set, no progress bar; the host's abort stops it.
    TrainJob(Instance &inst, std::function<bool()> aborted) : inst_(inst), aborted_(std::move(aborted)) {}

    // To read frames again as the Train that read `clip` packed them (trainedFrameUnchanged).
    TrainJob(Instance &inst, const TrainedClip &clip) : inst_(inst) {
        first_ = clip.first;
        g_ = clip.geometry;
        frameRect_ = clip.frameRect;
        canvas_ = clip.canvas;
        moving_ = clip.moving;
        marginIsHole_ = clip.marginIsHole;
        maskFromSource_ = clip.maskFromSource;
        channel_ = clip.channel;
        invert_ = clip.invert;
        frameRods_.assign(static_cast<std::size_t>(g_.frames), frameRect_);
    }

    OfxStatus run();
    bool streamStarted() const { return streamStarted_; }
    // The job run() opened and the Source frame that is its frame 0 (what a render keeps: trainFromRender).
    const std::pair<std::string, int> &opened() const { return opened_; }
    // What run() read (a render keeps it to check frames against later).
    std::shared_ptr<const TrainedClip> clip() const { return clip_; }

    // One frame and its mask, packed into wire buffers. Throws OfxError with a message for the user.
    void readFrame(int i, zmq::message_t &frame, zmq::message_t &mask, std::size_t *holes);
    const px::Rect &frameRod(int i) const { return frameRods_[static_cast<std::size_t>(i)]; }  // as readFrame read it

private:
    // The canvas every frame is packed into (canvas_, moving_), from the host's regions of definition.
    void planCanvas();
    void failIfCancelled(double fraction);
    // Pass 1b: the painted clean frames, where the Reference clip has an image; kept in memory (they are few).
    // A painting must cover its frame's hole opaquely: items give the hole masks pass 1 kept (or read them again).
    void readReferences(const proto::HelloReply &hello, const std::string &address, const std::vector<Item> &items);

    bool fromRender() const { return static_cast<bool>(aborted_); }
    void status(const std::string &text) {
        if (!fromRender()) setStatusLine(inst_, text);
    }
    std::unique_ptr<ofx::Progress> progressBar(const std::string &label) {
        return fromRender() ? nullptr : std::make_unique<ofx::Progress>(inst_.handle, label);
    }

    Instance &inst_;
    std::function<bool()> aborted_;
    std::unique_ptr<ofx::Progress> progress_;
    double fraction_ = 0;
    std::chrono::steady_clock::time_point lastPoll_{};
    bool userCancelled_ = false;
    bool streamStarted_ = false;  // job.start(stream) went before the upload: the job runs even if it is cancelled
    std::pair<std::string, int> opened_;
    std::shared_ptr<const TrainedClip> clip_;

    int first_ = 0;
    proto::Geometry g_;
    px::Rect frameRect_;               // the first frame's region of definition (pixels at scale 1)
    // What the wire's planes cover: frameRect_, each frame packed in its own region, unless the Source's region of
    // definition moves over the clip (moving_): then the union of every frame's, each at its own region's place.
    px::Rect canvas_;
    bool moving_ = false;
    // A moving plate's canvas outside a frame's region is hole in that frame: no pixel of it, so nothing is copied
    // or diffused from there, and it is filled from the frames that do see it (a stabilised plate's edge). Black
    // and known where the hole is grown (mask.dilation): the growth would reach into the frame's own pixels; and
    // with a Reference input: a painted frame is known over its whole hole, a margin too.
    bool marginIsHole_ = false;
    std::vector<px::Rect> frameRods_;  // each frame's region as read (pass 1)
    bool maskFromSource_ = false;
    std::set<int> maskMissingAt_;  // frames whose Mask image the host did not give (read as nothing to remove)
    px::MaskChannel channel_ = px::MaskChannel::Alpha;
    bool invert_ = false;
    proto::ReferenceDigests refDigests_;           // (frame index, digest), ascending
    std::vector<zmq::message_t> refPixels_;        // the same order
};

void TrainJob::readReferences(const proto::HelloReply &hello, const std::string &address,
                              const std::vector<Item> &items) {
    if (inst_.filterContext || !inst_.reference || !inst_.reference.connected()) return;
    if (!hello.serves("references"))
        throw OfxError(kOfxStatFailed, "vinpaint: the daemon at " + address + " does not take reference frames (it "
                                       "is older than this plugin); update it, or disconnect the Reference input");
    for (int i = 0; i < g_.frames; ++i) {
        const double t = first_ + i;
        if (!referencePaintedAt(inst_, t)) continue;
        failIfCancelled(0.5);
        ofx::Image img = inst_.reference.fetch(t);
        if (!img || referenceIsTheSource(inst_, t, img)) continue;
        const px::View image = viewOf(img);
        const px::Rect rod = imageRod(img);
        const std::string frame = std::to_string(first_ + i);
        const px::Rect &srcRod = frameRods_[i];  // the Source frame it paints
        if (rod.width() != srcRod.width() || rod.height() != srcRod.height())
            throw OfxError(kOfxStatFailed, "vinpaint: the Reference image at frame " + frame + " is " +
                                               std::to_string(rod.width()) + "x" + std::to_string(rod.height()) +
                                               " but the Source is " + std::to_string(srcRod.width()) + "x" +
                                               std::to_string(srcRod.height()) + "; paint it at the Source's size");
        const px::View v = paintingView(image, rod, srcRod);
        const px::Rect packed = moving_ ? canvas_ : srcRod;
        if (v.depth != g_.dtype)
            throw OfxError(kOfxStatFailed, "vinpaint: the Reference image at frame " + frame +
                                               " has another bit depth than the Source");
        // The painting replaces the whole hole with its colour: where it is transparent (an unpainted part of a
        // layer, or no pixels at all) that colour is black or faded, so refuse it as the CLI does.
        zmq::message_t reread, unusedFrame;
        if (!items[i].mask) {
            std::size_t unused = 0;
            readFrame(i, unusedFrame, reread, &unused);
        }
        const auto *hole = static_cast<const unsigned char *>(items[i].mask ? items[i].mask->data() : reread.data());
        std::atomic<std::size_t> seeThrough{0};
        const bool alphaMeans = px::anyAlpha(image);  // all 0: an RGB painting handed over as RGBA (Nuke)
        const px::Rect *only = moving_ ? &srcRod : nullptr;  // the margin is hole, but no part of the painting
        forRowBands(g_.height, [&](int a, int b) {
            seeThrough += px::countSeeThrough(v, packed, hole, a, b, alphaMeans, only);
        });
        if (seeThrough > 0) {  // (a margin is never hole where a Reference is connected: marginIsHole_)
            const std::size_t holes = static_cast<std::size_t>(std::count(hole, hole + g_.maskBytes(), 255));
            throw OfxError(kOfxStatFailed, "vinpaint: the Reference image at frame " + frame + " is transparent over " +
                                               std::to_string(seeThrough.load()) + " of the " + std::to_string(holes) +
                                               " hole pixels there (alpha below one half, or no image); a reference "
                                               "replaces that frame's whole hole with its colour, so paint it opaque "
                                               "over the hole or merge it over the plate first");
        }
        zmq::message_t buf(g_.frameBytes());
        px::Plane plane{buf.data(), g_.width, g_.height, 3, g_.dtype};
        forRowBands(g_.height, [&](int a, int b) { px::packRgb(v, packed, plane, a, b); });
        refDigests_.emplace_back(i, Sha256::of(buf.data(), buf.size()));
        refPixels_.push_back(std::move(buf));
    }
}

void TrainJob::failIfCancelled(double fraction) {
    fraction_ = fraction;
    if (aborted_ && aborted_()) throw Cancelled();
    if (progress_ && !progress_->update(fraction)) {
        userCancelled_ = true;
        throw Cancelled();
    }
}

void TrainJob::readFrame(int i, zmq::message_t &frame, zmq::message_t &mask, std::size_t *holes) {
    const OfxTime t = first_ + i;
    ofx::Image src = inst_.source.fetch(t);
    if (!src) throw OfxError(kOfxStatFailed, "vinpaint: the host has no Source image at frame " + std::to_string(first_ + i));
    px::View sv = viewOf(src);
    const px::Rect rod = imageRod(src);
    if (moving_) {
        // The canvas holds every frame's region rounded plainly outwards, the most any host makes of it: an image
        // beyond that is not the region the host gives for its frame, and would be again (nothing to press).
        if (!canvas_.contains(rod))
            throw OfxError(kOfxStatFailed, "vinpaint: Source frame " + std::to_string(first_ + i) + " is " +
                                               rectText(rod) + ", outside the regions of definition the host gives "
                                               "for the clip's frames (together " + rectText(canvas_) + "): the "
                                               "host's image and its region of definition disagree, so the frame "
                                               "has no place on the canvas; put a Crop (or a Reformat) before "
                                               "this node so that they agree");
    } else if (rod.width() != frameRect_.width() || rod.height() != frameRect_.height()) {
        throw OfxError(kOfxStatFailed, "vinpaint: Source frame " + std::to_string(first_ + i) + " is " +
                                           std::to_string(rod.width()) + "x" + std::to_string(rod.height()) +
                                           " but frame " + std::to_string(first_) + " is " +
                                           std::to_string(frameRect_.width()) + "x" + std::to_string(frameRect_.height()) +
                                           "; every frame of a clip must have the same size");
    }
    frameRods_[i] = rod;
    // A plate that does not move is packed in its own region; a moving one at its region's place in the canvas,
    // the canvas outside it transparent black (what a host means by pixels outside the region), hole to fill
    // (marginIsHole_) or, where the hole is grown, known.
    const px::Rect packed = moving_ ? canvas_ : rod;
    const px::Rect *only = moving_ ? &rod : nullptr;
    if (sv.depth != g_.dtype)
        throw OfxError(kOfxStatFailed, "vinpaint: Source frames change bit depth within the clip");
    // Outside a render no region of interest is set, and the spec lets a host serve less than the region of
    // definition then: the rest would pack as black and be trained on as the plate.
    if (sv.bounds.x1 > rod.x1 || sv.bounds.y1 > rod.y1 || sv.bounds.x2 < rod.x2 || sv.bounds.y2 < rod.y2)
        throw OfxError(kOfxStatFailed, "vinpaint: the host served only part of Source frame " + std::to_string(first_ + i) +
                                           " to Train (its pixels cover less than the frame's region); this host "
                                           "cannot give Train whole frames");

    frame.rebuild(g_.frameBytes());
    px::Plane plane{frame.data(), g_.width, g_.height, 3, g_.dtype};
    const px::View pixels = px::within(sv, rod);
    forRowBands(g_.height, [&](int a, int b) { px::packRgb(pixels, packed, plane, a, b); });

    mask.rebuild(g_.maskBytes());
    auto *mdst = static_cast<unsigned char *>(mask.data());
    std::size_t n = 0;
    std::mutex nm;
    auto packFrom = [&](const px::View &mv, px::MaskChannel ch, bool invert) {
        forRowBands(g_.height, [&](int a, int b) {
            const std::size_t k = px::packMask(mv, packed, ch, invert, mdst, a, b, only, marginIsHole_ ? 255 : 0);
            std::lock_guard<std::mutex> lock(nm);
            n += k;
        });
    };
    try {
        if (maskFromSource_) {
            packFrom(sv, px::MaskChannel::Alpha, invert_);
        } else {
            ofx::Image m = inst_.mask.fetch(t);
            if (!m) {  // no image there: nothing to remove at that frame (Natron's Roto with no shape active),
                maskMissingAt_.insert(first_ + i);  // inverted or not, as the Overlay shows it; said by Train
                packFrom(px::View{}, channel_, false);
            } else {
                const px::View mv = viewOf(m);
                packFrom(mv, px::matteChannel(mv, channel_), invert_);
            }
        }
    } catch (const std::invalid_argument &e) {
        throw OfxError(kOfxStatFailed, std::string("vinpaint: ") + e.what());
    }
    // The engine refuses a frame that is hole everywhere (nothing to learn it from); say so before any upload.
    // In the General context without a Mask input it is the usual mistake: an opaque plate's alpha is all hole.
    if (n == static_cast<std::size_t>(rod.width()) * static_cast<std::size_t>(rod.height())) {
        const std::string frameNo = std::to_string(first_ + i);
        if (maskFromSource_ && !inst_.filterContext)
            throw OfxError(kOfxStatFailed, "vinpaint: the mask covers all of frame " + frameNo +
                                               ": no Mask input is connected, so the Source's alpha is the mask, "
                                               "and it is opaque there; connect a Mask input that marks what to remove");
        throw OfxError(kOfxStatFailed, "vinpaint: the mask covers all of frame " + frameNo +
                                           ", so nothing is left to learn that frame from (check the mask, Mask "
                                           "channel and Invert mask)");
    }
    *holes += n;
}

// A plate whose region of definition moves or changes size (stabilised with an animated Transform, say) trains on
// one canvas, the union of every frame's region, so that what stands still in the plate stands still in the clip
// the daemon learns from. The host's regions are asked for each frame (no image is made for it). A clip whose
// region never moves, or a host that cannot say, keeps each frame's own region, as before.
void TrainJob::planCanvas() {
    canvas_ = frameRect_;
    moving_ = false;
    std::vector<OfxRectD> rods;
    try {
        for (int i = 0; i < g_.frames; ++i) rods.push_back(inst_.source.regionOfDefinition(first_ + i));
    } catch (const OfxError &) {
        return;
    }
    auto same = [&](const OfxRectD &r) {
        return r.x1 == rods[0].x1 && r.y1 == rods[0].y1 && r.x2 == rods[0].x2 && r.y2 == rods[0].y2;
    };
    if (std::all_of(rods.begin(), rods.end(), same)) return;
    const double par = sourcePixelAspect(inst_);
    std::vector<px::Rect> rects;
    for (int i = 0; i < g_.frames; ++i) {
        const std::optional<px::Rect> r = pixelRect(rods[i], par);
        const std::string frame = std::to_string(first_ + i);
        if (!r)
            throw OfxError(kOfxStatFailed, "vinpaint: the Source's region of definition at frame " + frame +
                                               " is not finite (an unbounded generator?) while other frames' are; "
                                               "crop it to a frame (a Crop node)");
        if (r->width() < 1 || r->height() < 1)
            throw OfxError(kOfxStatFailed, "vinpaint: the Source's region of definition at frame " + frame +
                                               " is empty; every frame Train reads needs pixels");
        rects.push_back(*r);
    }
    if (std::all_of(rects.begin(), rects.end(), [&](const px::Rect &r) { return r == rects[0]; }) &&
        rects[0] == frameRect_)
        return;  // regions that differ by less than a pixel
    moving_ = true;
    double largest = static_cast<double>(frameRect_.width()) * frameRect_.height();
    int widest = frameRect_.width(), tallest = frameRect_.height();
    for (int i = 0; i < g_.frames; ++i) {
        // A host may round a region outwards with no allowance (Natron: floor/ceil), so a canonical edge a hair
        // past a pixel makes an image a pixel larger than rects[i]: the canvas holds that too.
        canvas_ = px::unite(canvas_, *pixelRect(rods[i], par, true));
    }
    for (const px::Rect &r : rects) {
        canvas_ = px::unite(canvas_, r);
        largest = std::max(largest, static_cast<double>(r.width()) * r.height());
        widest = std::max(widest, r.width());
        tallest = std::max(tallest, r.height());
    }
    if (static_cast<double>(canvas_.width()) * canvas_.height() <= kMaxCanvasGrowth * largest) return;
    // Name the two frames farthest apart, along the direction the canvas grew most.
    const bool alongX =
        static_cast<double>(canvas_.width()) / widest >= static_cast<double>(canvas_.height()) / tallest;
    std::size_t a = 0, b = 0;
    for (std::size_t k = 1; k < rects.size(); ++k) {
        if (alongX ? rects[k].x1 < rects[a].x1 : rects[k].y1 < rects[a].y1) a = k;
        if (alongX ? rects[k].x2 > rects[b].x2 : rects[k].y2 > rects[b].y2) b = k;
    }
    char growth[16];
    std::snprintf(growth, sizeof growth, "%g", kMaxCanvasGrowth);
    throw OfxError(kOfxStatFailed,
                   "vinpaint: the Source's region of definition moves too far over the clip to train it on one "
                   "canvas: frame " + std::to_string(first_ + static_cast<int>(a)) + " is " + rectText(rects[a]) +
                       " and frame " + std::to_string(first_ + static_cast<int>(b)) + " is " + rectText(rects[b]) +
                       ", so a canvas holding every frame would be " + std::to_string(canvas_.width()) + "x" +
                       std::to_string(canvas_.height()) + ", more than " + growth + " times the largest frame; "
                       "stabilise the plate less, or train the shot in shorter ranges");
}

OfxStatus TrainJob::run() {
    const std::string address = daemonAddress(inst_);
    if (!inst_.source.connected()) {
        throw OfxError(kOfxStatFailed, "vinpaint: connect the Source input before pressing Train");
    }
    if (!hostAllowsTemporalAccess())  // its fetches of other frames are undefined: nothing, or the current frame
        throw OfxError(kOfxStatFailed, "vinpaint: this host lets a node read only the frame it renders (its "
                                       "temporal clip access is off), and Train reads every frame of the Source; "
                                       "inpaint the plates with `vinpaint inpaint` or `vinpaint submit` instead");
    status("contacting the daemon...");
    // A dead daemon should fail the button press in about two seconds, before anything is read.
    // (A render is patient from the start: it is a batch render.)
    DaemonClient client(address, fromRender() ? Timeouts::patient() : Timeouts::interactive(), [this] {
        if (aborted_) return aborted_();
        const auto now = std::chrono::steady_clock::now();
        if (!progress_ || now - lastPoll_ < std::chrono::milliseconds(100)) return false;
        lastPoll_ = now;
        if (!progress_->update(fraction_)) userCancelled_ = true;
        return userCancelled_;
    });
    // A render fails at once where nothing answered a moment ago, as Renderer::renderClient's do: a farm's frames of
    // a node nobody trained, with no daemon, waited the patient timeout each (10 s a frame, in turn on every thread).
    if (fromRender()) client.setFailFast(true);
    const proto::HelloReply hello = client.hello(clientName());
    client.setTimeouts(Timeouts::patient());

    const std::string preset = kPresetNames[std::clamp(inst_.preset.getInt(), 0, 2)];
    if (std::find(hello.presets.begin(), hello.presets.end(), preset) == hello.presets.end())
        throw OfxError(kOfxStatFailed, "vinpaint: the daemon does not offer the preset '" + preset + "'");
    proto::Value::Map overrides;  // checked before anything is read; the daemon checks names and ranges at job.open
    try {
        overrides = proto::overridesFromText(inst_.engineSettings.getString());
    } catch (const std::invalid_argument &e) {
        throw OfxError(kOfxStatFailed, std::string("vinpaint: ") + e.what());
    }

    // Geometry from the clip's frame range and its first frame.
    const OfxRangeD range = inst_.source.frameRange();
    // A generator's range may be unbounded (the spec's INT_MIN..INT_MAX): said before any conversion to int.
    const double count = std::floor(range.max) - std::ceil(range.min) + 1.0;
    if (!std::isfinite(count) || !std::isfinite(range.min) || std::abs(range.min) > 1e9 || std::abs(range.max) > 1e9 ||
        count > hello.maxFrames)
        throw OfxError(kOfxStatFailed, "vinpaint: the Source clip's frame range " + frameRangeText(range) +
                                           " is longer than the daemon accepts (at most " +
                                           std::to_string(hello.maxFrames) + " frames): connect a clip of finite "
                                           "length, or limit it with a FrameRange node");
    first_ = static_cast<int>(std::ceil(range.min));
    const int last = static_cast<int>(std::floor(range.max));
    g_.frames = last - first_ + 1;
    if (g_.frames < 1) throw OfxError(kOfxStatFailed, "vinpaint: the Source clip has no frames");
    {
        ofx::Image img = inst_.source.fetch(first_);
        if (!img) throw OfxError(kOfxStatFailed, "vinpaint: the host has no Source image at frame " + std::to_string(first_));
        const double sx = img.props().tryDouble(kOfxImageEffectPropRenderScale, 0).value_or(1.0);
        const double sy = img.props().tryDouble(kOfxImageEffectPropRenderScale, 1).value_or(1.0);
        if (sx != 1.0 || sy != 1.0)
            throw OfxError(kOfxStatFailed, "vinpaint: Train needs full-resolution frames; turn proxy mode off and press Train again");
        px::View v = viewOf(img);
        frameRect_ = imageRod(img);
        g_.dtype = v.depth;
        maskFromSource_ = inst_.filterContext || !inst_.mask.connected();
        if (maskFromSource_ && v.comps != 4)
            throw OfxError(kOfxStatFailed, inst_.filterContext
                                               ? "vinpaint: the Source has no alpha channel to use as the mask"
                                               : "vinpaint: connect a Mask input (or give the Source an alpha channel "
                                                 "that marks what to remove)");
    }
    if (frameRect_.width() < 1 || frameRect_.height() < 1)
        throw OfxError(kOfxStatFailed, "vinpaint: the Source frame is empty");
    planCanvas();
    bool grown = inst_.dilation.getInt() > 0;  // by the parameter, or (whatever its value) Engine settings
    for (const auto &setting : overrides) grown = grown || setting.first == "mask.dilation";
    // A painted frame is known over its whole hole: a margin there would be known black again, and copied.
    const bool painting = !inst_.filterContext && inst_.reference && inst_.reference.connected();
    marginIsHole_ = moving_ && !grown && !painting;
    g_.width = canvas_.width();
    g_.height = canvas_.height();
    g_.channels = 3;
    g_.maskDtype = px::Depth::U8;
    // A moving plate's frames are its canvas: the limits are said of that.
    const std::string framesOf = moving_ ? "the Source's region of definition moves over the clip, and the canvas "
                                           "holding every frame's region is "
                                         : "frames of ";
    if (g_.width > hello.maxWidth || g_.height > hello.maxHeight)
        throw OfxError(kOfxStatFailed, "vinpaint: " + framesOf + std::to_string(g_.width) + "x" +
                                           std::to_string(g_.height) + (moving_ ? ", " : " are ") +
                                           "larger than the daemon accepts (" + std::to_string(hello.maxWidth) +
                                           "x" + std::to_string(hello.maxHeight) + ")");
    if (static_cast<std::int64_t>(g_.frameBytes()) > hello.maxMessageBytes)
        throw OfxError(kOfxStatFailed, std::string("vinpaint: one frame ") +
                                           (moving_ ? "of the canvas holding every frame's region (" +
                                                          std::to_string(g_.width) + "x" + std::to_string(g_.height) +
                                                          ") "
                                                    : "") +
                                           "is " + std::to_string(g_.frameBytes() >> 20) +
                                           " MB, more than the daemon accepts per message");
    frameRods_.assign(static_cast<std::size_t>(g_.frames), frameRect_);
    channel_ = inst_.maskChannel.getInt() == kMaskLuminance ? px::MaskChannel::Luminance : px::MaskChannel::Alpha;
    invert_ = inst_.invertMask.getInt() != 0;

    // Pass 1: read and hash every frame, keeping the buffers while they fit the budget.
    const bool keep = static_cast<double>(g_.frames) * (g_.frameBytes() + g_.maskBytes()) <= static_cast<double>(memoryBudget());
    std::vector<Item> items(static_cast<std::size_t>(g_.frames));
    std::size_t holes = 0;
    progress_ = progressBar("vinpaint: reading " + std::to_string(g_.frames) + " frames");
    status("reading frames...");
    for (int i = 0; i < g_.frames; ++i) {
        failIfCancelled(0.5 * i / g_.frames);
        zmq::message_t frame, mask;
        readFrame(i, frame, mask, &holes);
        items[i].frameDigest = Sha256::of(frame.data(), frame.size());
        items[i].maskDigest = Sha256::of(mask.data(), mask.size());
        if (keep) {
            items[i].frame.emplace(std::move(frame));
            items[i].mask.emplace(std::move(mask));
        }
    }
    if (holes == 0 && static_cast<int>(maskMissingAt_.size()) >= g_.frames)
        throw OfxError(kOfxStatFailed, "vinpaint: the host gave no Mask image at any frame (is the mask input "
                                       "enabled, and a channel chosen for it?)");
    if (holes == 0)
        throw OfxError(kOfxStatFailed, "vinpaint: the mask is empty on every frame, so there is nothing to remove "
                                       "(check the Mask input, Mask channel and Invert mask)");
    std::vector<Sha256::Digest> fd, md;
    for (const auto &it : items) {
        fd.push_back(it.frameDigest);
        md.push_back(it.maskDigest);
    }
    readReferences(hello, address, items);
    std::vector<int> refIndices;
    for (const auto &r : refDigests_) refIndices.push_back(r.first);
    const std::string hash = proto::contentHash(g_, fd, md, refDigests_);

    proto::Settings settings;
    settings.preset = preset;
    settings.maskDilation = std::clamp(inst_.dilation.getInt(), 0, 512);
    settings.maskFeather = std::clamp(inst_.feather.getInt(), 0, 512);
    settings.overrides = std::move(overrides);
    std::string name = "ofx frames " + std::to_string(first_) + "-" + std::to_string(last);
    if (!refIndices.empty()) name += ", " + std::to_string(refIndices.size()) + " reference frame(s)";
    const proto::OpenReply opened = client.open(g_, hash, settings, name, refIndices);

    // Saved with the project straight away: an interrupted upload resumes, a finished job is found again.
    const std::string previous = inst_.jobId.getString();
    if (previous != opened.job) FrameCache::global().dropJob(previous);
    opened_ = {opened.job, first_};
    if (!fromRender()) {  // parameters may not be set during a render: the caller keeps it once all went well
        inst_.jobId.setString(opened.job);
        inst_.jobFirstFrame.setInt(first_);
        // Which frames were painted, and with what: renders decide from this, not from the Reference input now.
        inst_.jobReferences.setString(referencesRecord(opened.job, refDigests_));
        // The canvas it packed the frames on: renders place each frame from this, not from the clip now.
        inst_.jobCanvas.setString(canvasRecord(opened.job, moving_, canvas_));
    } else {
        auto clip = std::make_shared<TrainedClip>();
        clip->first = first_;
        clip->geometry = g_;
        clip->frameRect = frameRect_;
        clip->canvas = canvas_;
        clip->moving = moving_;
        clip->marginIsHole = marginIsHole_;
        clip->maskFromSource = maskFromSource_;
        clip->invert = invert_;
        clip->channel = channel_;
        clip->frameDigests = fd;
        clip->maskDigests = md;
        clip->references = refDigests_;
        clip_ = std::move(clip);
    }
    {
        std::lock_guard<std::mutex> lock(inst_.mutex);
        inst_.geometryJob = opened.job;
        inst_.geometry = g_;
        inst_.canvasJob = moving_ ? opened.job : std::string();
        inst_.canvas = canvas_;
        inst_.canvasUnmoving = false;
        inst_.canvasError.clear();
    }

    // Frame i and its mask for the wire: the buffers pass 1 kept (once), else read again and checked unchanged.
    auto takeOrRead = [&](int i, zmq::message_t &frame, zmq::message_t &mask) {
        if (items[i].frame) {
            frame = std::move(*items[i].frame);
            mask = std::move(*items[i].mask);
            items[i].frame.reset();
            items[i].mask.reset();
            return;
        }
        std::size_t unused = 0;
        readFrame(i, frame, mask, &unused);
        if (Sha256::of(frame.data(), frame.size()) != items[i].frameDigest ||
            Sha256::of(mask.data(), mask.size()) != items[i].maskDigest)
            throw OfxError(kOfxStatFailed, "vinpaint: Source or Mask frame " + std::to_string(first_ + i) +
                                               " changed while Train was reading the clip; press Train again");
    };
    std::vector<bool> haveFrame(g_.frames, false), haveMask(g_.frames, false), haveRef(g_.frames, false);
    for (int i : opened.haveFrames)
        if (i >= 0 && i < g_.frames) haveFrame[i] = true;
    for (int i : opened.haveMasks)
        if (i >= 0 && i < g_.frames) haveMask[i] = true;
    for (int i : opened.haveReferences)
        if (i >= 0 && i < g_.frames) haveRef[i] = true;
    int todo = 0;
    for (int i = 0; i < g_.frames; ++i) todo += !haveFrame[i] + !haveMask[i];
    for (const auto &r : refDigests_) todo += !haveRef[r.first];
    // Feature "stream": a job of several windows starts before its upload, so the first window trains while the
    // rest arrives. A job started that way and left half uploaded (Train cancelled) is in another state than
    // "uploading" with items missing; pressing Train again uploads the rest.
    const bool streams = hello.serves("stream") && opened.windows.value_or(1) > 1 && todo > 0;
    if (opened.state == "uploading" || (hello.serves("stream") && todo > 0)) {
        progress_.reset();
        progress_ = progressBar("vinpaint: uploading " + std::to_string(g_.frames) + " frames");
        if (streams) {
            if (opened.state != "queued" && opened.state != "training") client.start(opened.job, true);
            streamStarted_ = true;
        }
        status(streamStarted_ ? "uploading (training starts as the first window's frames arrive)..." : "uploading...");
        int done = 0;
        auto uploadReference = [&](std::size_t k) {
            const int i = refDigests_[k].first;
            if (haveRef[i]) return;
            failIfCancelled(0.5 + 0.5 * done / std::max(todo, 1));
            client.queueUpload(opened.job, proto::kKindReference, i, Sha256::hex(refDigests_[k].second), g_.frameSpec(),
                               std::move(refPixels_[k]));
            ++done;
        };
        std::size_t nextRef = 0;  // a streaming upload sends frame i's reference with it: its window needs it
        for (int i = 0; i < g_.frames; ++i) {
            if (!(haveFrame[i] && haveMask[i])) {
                failIfCancelled(0.5 + 0.5 * done / std::max(todo, 1));
                zmq::message_t frame, mask;
                takeOrRead(i, frame, mask);
                if (!haveFrame[i]) {
                    client.queueUpload(opened.job, false, i, Sha256::hex(items[i].frameDigest), g_.frameSpec(), std::move(frame));
                    ++done;
                }
                if (!haveMask[i]) {
                    client.queueUpload(opened.job, true, i, Sha256::hex(items[i].maskDigest), g_.maskSpec(), std::move(mask));
                    ++done;
                }
            }
            for (; streamStarted_ && nextRef < refDigests_.size() && refDigests_[nextRef].first <= i; ++nextRef)
                uploadReference(nextRef);
        }
        for (; nextRef < refDigests_.size(); ++nextRef) uploadReference(nextRef);
        client.drainUploads();
        failIfCancelled(1.0);
    }
    progress_.reset();

    // An item the daemon held at open that is not this clip's (another client uploaded a wrong one, with no
    // digest) makes job.start answer hash_mismatch: every held item is sent once more, the daemon replaces those
    // that differ and acknowledges the rest (SPEC.md, job.upload), and the job is started again, once.
    auto resendHeld = [&]() {
        int held = 0;
        for (int i = 0; i < g_.frames; ++i) held += haveFrame[i] + haveMask[i];
        for (const auto &r : refDigests_) held += haveRef[r.first];
        if (held == 0) return false;
        progress_ = progressBar("vinpaint: uploading " + std::to_string(held) + " items the daemon held again");
        status("the daemon's copy of the clip differs from it: uploading what it held again...");
        int done = 0;
        for (int i = 0; i < g_.frames; ++i) {
            if (!haveFrame[i] && !haveMask[i]) continue;
            failIfCancelled(static_cast<double>(done) / held);
            zmq::message_t frame, mask;
            takeOrRead(i, frame, mask);
            if (haveFrame[i]) {
                client.queueUpload(opened.job, false, i, Sha256::hex(items[i].frameDigest), g_.frameSpec(), std::move(frame));
                ++done;
            }
            if (haveMask[i]) {
                client.queueUpload(opened.job, true, i, Sha256::hex(items[i].maskDigest), g_.maskSpec(), std::move(mask));
                ++done;
            }
        }
        for (std::size_t k = 0; k < refDigests_.size(); ++k) {
            const int i = refDigests_[k].first;
            if (!haveRef[i]) continue;  // the others went above, and their buffers with them
            failIfCancelled(static_cast<double>(done) / held);
            client.queueUpload(opened.job, proto::kKindReference, i, Sha256::hex(refDigests_[k].second), g_.frameSpec(),
                               std::move(refPixels_[k]));
            ++done;
        }
        client.drainUploads();
        failIfCancelled(1.0);
        progress_.reset();
        return true;
    };
    proto::StartReply started;
    try {
        started = client.start(opened.job);
    } catch (const RemoteError &e) {
        if (e.code != "hash_mismatch" || opened.state != "uploading" || !resendHeld()) throw;
        started = client.start(opened.job);
    }
    std::string line;
    if (started.state == "done") line = "done: " + std::to_string(g_.frames) + " frames ready" + (opened.created ? "" : " (reused the finished job for this clip)");
    else if (started.state == "queued")
        line = queuedText(started.position) + ": press Refresh to follow progress";
    else line = started.state + ": press Refresh to follow progress";
    if (!maskMissingAt_.empty()) {  // a host's failure upstream looks the same: the user should know
        std::string frames;
        int listed = 0;
        for (int f : maskMissingAt_) {
            if (listed++ == 8) {
                frames += ", ...";
                break;
            }
            frames += (frames.empty() ? "" : ", ") + std::to_string(f);
        }
        line += " (no Mask image at frame" + std::string(maskMissingAt_.size() == 1 ? " " : "s ") + frames +
                ": nothing removed there)";
    }
    status(line);
    ofx::clearPersistentMessage(inst_.handle);
    return kOfxStatOK;
}

}  // namespace

OfxStatus train(Instance &inst) {
    if (inst.training.exchange(true)) return kOfxStatOK;  // pressed again inside this Train's own progress updates
    struct Done {
        std::atomic<bool> &flag;
        ~Done() { flag = false; }
    } done{inst.training};
    TrainJob job(inst);
    // The error of this press, kept for Refresh (which must not replace it with the previous job's state).
    auto failed = [&inst](const std::string &what) {
        setStatusLine(inst, errorLine(what));
        ofx::postMessage(inst.handle, kOfxMessageError, what);
        std::lock_guard<std::mutex> lock(inst.mutex);
        inst.trainError = errorLine(what);
    };
    try {
        const OfxStatus st = job.run();
        std::lock_guard<std::mutex> lock(inst.mutex);
        inst.trainError.clear();
        return st;
    } catch (const Cancelled &) {
        setStatusLine(inst, job.streamStarted()
                                ? "Train cancelled mid-upload: the job has started and trains the windows whose frames "
                                  "arrived, and fails if the rest never comes; press Train to upload the rest and resume"
                                : "Train cancelled; press Train to resume (uploaded frames are kept)");
        std::lock_guard<std::mutex> lock(inst.mutex);
        inst.trainError.clear();
        return kOfxStatOK;
    } catch (const DaemonError &e) {
        failed(e.what());
        return kOfxStatFailed;
    } catch (const OfxError &e) {
        failed(e.what());
        return e.status() == kOfxStatErrMemory ? kOfxStatErrMemory : kOfxStatFailed;
    }
}

std::pair<std::string, std::shared_ptr<const TrainedClip>> trainFromRender(Instance &inst,
                                                                          std::function<bool()> aborted) {
    TrainJob job(inst, std::move(aborted));
    job.run();
    return {job.opened().first, job.clip()};
}

std::optional<Sha256::Digest> referenceDigestAt(Instance &inst, double t, const px::Rect &srcRod,
                                                const px::Rect &packed, const proto::Geometry &g) {
    if (!referencePaintedAt(inst, t)) return std::nullopt;
    ofx::Image img = inst.reference.fetch(t);
    if (!img || referenceIsTheSource(inst, t, img)) return std::nullopt;
    const px::View image = viewOf(img);
    const px::Rect rod = imageRod(img);
    // Not one Train could have sent (it refuses those): another painting.
    if (rod.width() != srcRod.width() || rod.height() != srcRod.height() || image.depth != g.dtype ||
        packed.width() != g.width || packed.height() != g.height)
        return Sha256::Digest{};
    const px::View v = paintingView(image, rod, srcRod);
    std::vector<unsigned char> buf(g.frameBytes());
    px::Plane plane{buf.data(), g.width, g.height, 3, g.dtype};
    forRowBands(g.height, [&](int a, int b) { px::packRgb(v, packed, plane, a, b); });
    return Sha256::of(buf.data(), buf.size());
}

bool trainedFrameUnchanged(Instance &inst, const TrainedClip &clip, int index) noexcept {
    try {
        if (index < 0 || index >= clip.geometry.frames || !inst.source.connected()) return false;
        const OfxRangeD range = inst.source.frameRange();
        if (std::ceil(range.min) != clip.first || std::floor(range.max) != clip.first + clip.geometry.frames - 1)
            return false;
        if ((inst.filterContext || !inst.mask.connected()) != clip.maskFromSource) return false;
        TrainJob job(inst, clip);
        zmq::message_t frame, mask;
        std::size_t holes = 0;
        job.readFrame(index, frame, mask, &holes);
        if (Sha256::of(frame.data(), frame.size()) != clip.frameDigests[index] ||
            Sha256::of(mask.data(), mask.size()) != clip.maskDigests[index])
            return false;
        // Its painting: the one Train sent there, or none where it sent none.
        const double t = clip.first + index;
        const px::Rect &srcRod = job.frameRod(index);
        const std::optional<Sha256::Digest> painting =
            referenceDigestAt(inst, t, srcRod, clip.moving ? clip.canvas : srcRod, clip.geometry);
        const Sha256::Digest *sent = nullptr;
        for (const auto &r : clip.references)
            if (r.first == index) sent = &r.second;
        return painting ? sent && *painting == *sent : !sent;
    } catch (...) {
        return false;
    }
}

}  // namespace vinpaint
