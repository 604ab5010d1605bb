#include "effect.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <sstream>

#include "frame_cache.h"

namespace vinpaint {

const char *const kPresetNames[3] = {"fast", "paper", "tiny"};

using ofx::PropSet;
using ofx::suites;

// ---- helpers --------------------------------------------------------------------------------------------------
Instance &instanceOf(OfxImageEffectHandle handle) {
    OfxPropertySetHandle props = nullptr;
    ofx::check(suites().effect->getPropertySet(handle, &props), "getPropertySet");
    auto *inst = static_cast<Instance *>(PropSet(props).getPointer(kOfxPropInstanceData));
    if (!inst) throw OfxError(kOfxStatErrBadHandle, "vinpaint: the host called an action on an instance it never created");
    return *inst;
}

std::string daemonAddress(const Instance &inst) {
    std::string a = inst.daemon.getString();
    a.erase(0, a.find_first_not_of(" \t"));
    a.erase(a.find_last_not_of(" \t") + 1);
    return a;
}

bool referencePaintedAt(Instance &inst, double t) {
    if (inst.filterContext || !inst.reference || !inst.reference.connected()) return false;
    const OfxRangeD range = inst.reference.frameRange();
    return t >= range.min && t <= range.max;
}

bool referenceIsTheSource(Instance &inst, double t, const ofx::Image &ref) {
    const ofx::Image src = inst.source.fetch(t);
    if (!src || !ref) return false;
    const px::View a = viewOf(src), b = viewOf(ref);
    const px::Rect rod = imageRod(src);
    if (a.depth != b.depth || a.comps != b.comps || !(imageRod(ref) == rod))
        return false;
    auto covers = [&](const px::Rect &r) { return r.x1 <= rod.x1 && r.y1 <= rod.y1 && r.x2 >= rod.x2 && r.y2 >= rod.y2; };
    if (!covers(a.bounds) || !covers(b.bounds) || rod.width() < 1 || rod.height() < 1) return false;
    const std::size_t bytes = static_cast<std::size_t>(rod.width()) * a.pixelBytes();
    for (int y = rod.y1; y < rod.y2; ++y)
        if (std::memcmp(a.pixel(rod.x1, y), b.pixel(rod.x1, y), bytes) != 0) return false;
    return true;
}

// The daemon address a new node starts with, and keeps where the host makes no String parameters.
static std::string defaultDaemonAddress() {
    const char *env = std::getenv("VINPAINT_DAEMON");
    return env && *env ? env : proto::kDefaultEndpoint;
}

std::pair<std::string, int> nodeJob(Instance &inst, double t) {
    if (std::string job = inst.jobId.getString(); !job.empty()) return {job, inst.jobFirstFrame.getIntAt(t)};
    std::lock_guard<std::mutex> lock(inst.mutex);
    return {inst.renderJob, inst.renderJobFirst};
}

void forgetRenderJob(Instance &inst) {
    std::lock_guard<std::mutex> lock(inst.mutex);
    forgetRenderJobLocked(inst);
}

void forgetRenderJobLocked(Instance &inst) {
    inst.renderJob.clear();
    inst.renderClip.reset();
    inst.renderSeen.clear();
    inst.renderVerify.clear();
}

std::string referencesRecord(const std::string &job, const proto::ReferenceDigests &references) {
    std::string record = job;
    for (const auto &r : references) record += " " + std::to_string(r.first) + ":" + Sha256::hex(r.second);
    return record;
}

namespace {
// "INDEX:64 hex digits" into (index, digest); false when it is not that.
bool parseReference(const std::string &token, std::pair<int, Sha256::Digest> *out) {
    const auto colon = token.find(':');
    if (colon == std::string::npos || colon == 0 || token.size() - colon - 1 != 64) return false;
    int index = 0;
    for (std::size_t i = 0; i < colon; ++i) {
        if (token[i] < '0' || token[i] > '9' || index > 10000000) return false;
        index = index * 10 + (token[i] - '0');
    }
    auto nibble = [](char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    };
    for (std::size_t k = 0; k < 32; ++k) {
        const int hi = nibble(token[colon + 1 + 2 * k]), lo = nibble(token[colon + 2 + 2 * k]);
        if (hi < 0 || lo < 0) return false;
        out->second[k] = static_cast<std::uint8_t>(hi * 16 + lo);
    }
    out->first = index;
    return true;
}

// The rest of Train's record `text` (a hidden parameter saved with the project) after its job id, when it is the
// record of `job`; nothing for another job's (a job id set by hand, a project saved before the record existed).
std::optional<std::istringstream> recordOf(const std::string &text, const std::string &job) {
    std::istringstream record(text);
    std::string token;
    if (!(record >> token) || token != job) return std::nullopt;
    return record;
}
}  // namespace

std::string canvasRecord(const std::string &job, bool moving, const px::Rect &c) {
    if (!moving) return job;
    return job + " " + std::to_string(c.x1) + " " + std::to_string(c.y1) + " " + std::to_string(c.x2) + " " +
           std::to_string(c.y2);
}

JobCanvas jobCanvas(Instance &inst, const std::string &job) {
    JobCanvas out;
    if (job.empty()) return out;
    if (inst.jobId.getString() == job) {
        std::optional<std::istringstream> found = recordOf(inst.jobCanvas.getString(), job);
        if (!found) return out;
        std::istringstream &record = *found;
        long long v[4];
        int n = 0;
        while (n < 4 && record >> v[n]) ++n;
        if (n == 0 && record.eof()) {
            out.known = true;
            return out;
        }
        std::string rest;
        if (n != 4 || (record >> rest)) return out;
        for (long long x : v)
            if (x < -100000000LL || x > 100000000LL) return out;
        out.canvas = px::Rect{static_cast<int>(v[0]), static_cast<int>(v[1]), static_cast<int>(v[2]),
                              static_cast<int>(v[3])};
        if (out.canvas.width() < 1 || out.canvas.height() < 1) return JobCanvas{};
        out.known = out.moving = true;
        return out;
    }
    std::lock_guard<std::mutex> lock(inst.mutex);
    if (inst.renderJob == job && inst.renderClip) {
        out.known = true;
        out.moving = inst.renderClip->moving;
        out.canvas = inst.renderClip->canvas;
    }
    return out;
}

JobReferences jobReferences(Instance &inst, const std::string &job) {
    JobReferences out;
    if (job.empty()) return out;
    if (inst.jobId.getString() == job) {
        std::optional<std::istringstream> record = recordOf(inst.jobReferences.getString(), job);
        if (!record) return out;
        std::string token;
        while (*record >> token) {
            std::pair<int, Sha256::Digest> r;
            if (!parseReference(token, &r)) return JobReferences{};
            out.references.push_back(r);
        }
        out.known = true;
        return out;
    }
    std::lock_guard<std::mutex> lock(inst.mutex);
    if (inst.renderJob == job && inst.renderClip) {
        out.known = true;
        out.references = inst.renderClip->references;
    }
    return out;
}

static bool hostNameStartsWith(const char *prefix) {
    if (!suites().host) return false;
    return PropSet(suites().host->host).tryString(kOfxPropName).value_or("").rfind(prefix, 0) == 0;
}
// Natron's kOfxPropName is a preference (to pose as another host); its kOfxPropLabel is always "Natron".
static bool hostLabelIsNatron() {
    return suites().host && PropSet(suites().host->host).tryString(kOfxPropLabel).value_or("") == "Natron";
}
static bool hostIsNuke() { return hostNameStartsWith("uk.co.thefoundry.nuke") && !hostLabelIsNatron(); }
// Natron gives every mask input its own channel selector (and an enable checkbox) and converts the chosen
// channel when the plug-in asks for Alpha; our Mask channel would sit beside it, the two disagreeing.
bool hostIsNatron() { return hostNameStartsWith("fr.inria.Natron") || hostLabelIsNatron(); }

bool hostAllowsTemporalAccess() {
    return !suites().host ||
           PropSet(suites().host->host).tryInt(kOfxImageEffectPropTemporalClipAccess).value_or(1) != 0;
}

bool hostIsBackground() {
    return suites().host && PropSet(suites().host->host).tryInt(kOfxImageEffectHostPropIsBackground).value_or(0) != 0;
}

std::string clientName() {
    std::string host = "unknown host";
    if (suites().host) {
        PropSet hp(suites().host->host);
        if (auto label = hp.tryString(kOfxPropLabel)) host = *label;
        else if (auto name = hp.tryString(kOfxPropName)) host = *name;
    }
    return "vinpaint-ofx " + std::to_string(kVersionMajor) + "." + std::to_string(kVersionMinor) + ".0 " + host;
}

void setStatusLine(Instance &inst, const std::string &text) noexcept {
    try {
        inst.status.setString(text);
    } catch (...) {
        // A host that refuses the write still gets the message through the message suite from the caller.
    }
}

std::string errorLine(const std::string &what) {
    const std::string prefix = "vinpaint: ";
    return "error: " + (what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what);
}

namespace {
struct BandJob {
    const std::function<void(int, int)> *fn;
    int rows;
    std::mutex m;
    std::exception_ptr error;
};

void bandThread(unsigned int index, unsigned int count, void *arg) {
    auto *job = static_cast<BandJob *>(arg);
    const int begin = static_cast<int>(static_cast<long long>(job->rows) * index / count);
    const int end = static_cast<int>(static_cast<long long>(job->rows) * (index + 1) / count);
    try {
        if (begin < end) (*job->fn)(begin, end);
    } catch (...) {
        std::lock_guard<std::mutex> lock(job->m);
        if (!job->error) job->error = std::current_exception();
    }
}
}  // namespace

void forRowBands(int rows, const std::function<void(int, int)> &fn) {
    if (rows <= 0) return;
    const auto *mt = suites().threads;
    unsigned int cpus = 1;
    if (mt && rows >= 64 && mt->multiThreadNumCPUs(&cpus) == kOfxStatOK && cpus > 1 &&
        !(mt->multiThreadIsSpawnedThread && mt->multiThreadIsSpawnedThread())) {
        BandJob job{&fn, rows, {}, nullptr};
        const unsigned int n = std::min<unsigned int>(cpus, static_cast<unsigned int>(rows / 32));
        if (mt->multiThread(bandThread, n, &job) == kOfxStatOK) {
            if (job.error) std::rethrow_exception(job.error);
            return;
        }
        if (job.error) std::rethrow_exception(job.error);
    }
    fn(0, rows);
}

px::Rect rectProp(const PropSet &p, const char *name) {
    return px::Rect{p.getInt(name, 0), p.getInt(name, 1), p.getInt(name, 2), p.getInt(name, 3)};
}

px::Rect imageRod(const ofx::Image &img) {
    const PropSet p = img.props();
    return p.tryInt(kOfxImagePropRegionOfDefinition, 3) ? rectProp(p, kOfxImagePropRegionOfDefinition)
                                                        : rectProp(p, kOfxImagePropBounds);
}

std::optional<px::Rect> pixelRect(const OfxRectD &r, double par, bool enclosing) {
    constexpr double kLimit = 1e8;  // far beyond any frame, and well inside int
    const double v[4] = {r.x1 / par, r.y1, r.x2 / par, r.y2};
    for (double x : v)
        if (!std::isfinite(x) || std::abs(x) > kLimit) return std::nullopt;
    // Rounded outwards, past a rounding error's worth (a canonical 1919.9999999 is the pixel edge 1920).
    const double e = enclosing ? 0.0 : 1e-6;
    return px::Rect{static_cast<int>(std::floor(v[0] + e)), static_cast<int>(std::floor(v[1] + e)),
                    static_cast<int>(std::ceil(v[2] - e)), static_cast<int>(std::ceil(v[3] - e))};
}

double sourcePixelAspect(Instance &inst) {
    const double par = inst.source.props().tryDouble(kOfxImagePropPixelAspectRatio).value_or(1.0);
    return std::isfinite(par) && par > 0 ? par : 1.0;
}

px::Rect sourcePixelRod(Instance &inst, double t) {
    const OfxRectD canonical = inst.source.regionOfDefinition(t);
    if (auto r = pixelRect(canonical, sourcePixelAspect(inst))) return *r;
    throw OfxError(kOfxStatFailed, "vinpaint: the Source's region of definition at frame " +
                                       std::to_string(std::lround(t)) + " is not finite (an unbounded generator?); "
                                       "crop it to a frame (a Crop node)");
}

px::View viewOf(const ofx::Image &img) {
    PropSet p = img.props();
    px::View v;
    v.data = static_cast<unsigned char *>(p.getPointer(kOfxImagePropData));
    v.bounds = rectProp(p, kOfxImagePropBounds);
    v.rowBytes = p.getInt(kOfxImagePropRowBytes);
    const std::string depth = p.getString(kOfxImageEffectPropPixelDepth);
    const std::string comps = p.getString(kOfxImageEffectPropComponents);
    auto d = px::depthFromOfx(depth);
    auto c = px::componentsFromOfx(comps);
    if (!d) throw OfxError(kOfxStatErrImageFormat, "vinpaint: unsupported pixel depth " + depth);
    if (!c) throw OfxError(kOfxStatErrImageFormat, "vinpaint: unsupported components " + comps);
    v.depth = *d;
    v.comps = *c;
    if (!v.data && v.bounds.width() > 0 && v.bounds.height() > 0)
        throw OfxError(kOfxStatFailed, "vinpaint: the host gave an image without pixel data");
    return v;
}

// ---- describe -------------------------------------------------------------------------------------------------
void describe(OfxImageEffectHandle effect) {
    OfxPropertySetHandle h = nullptr;
    ofx::check(suites().effect->getPropertySet(effect, &h), "getPropertySet");
    PropSet p(h);
    p.setString(kOfxPropLabel, "Inpaint");
    p.trySetString(kOfxPropShortLabel, "Inpaint");
    p.trySetString(kOfxPropLongLabel, "vinpaint video inpainting");
    p.setString(kOfxImageEffectPluginPropGrouping, "vinpaint");
    p.trySetString(kOfxPropPluginDescription,
                   "Removes an object from a shot by internal learning (Zhang et al., ICCV 2019). Press Train: the "
                   "frames and masks go to the vinpaint daemon, which trains a model for this clip; finished frames "
                   "render here. Start the daemon with `vinpaint serve`.");
    p.trySetString(kOfxPropVersionLabel, "0.1.0");
    p.setStrings(kOfxImageEffectPropSupportedContexts, {kOfxImageEffectContextGeneral, kOfxImageEffectContextFilter});
    p.setStrings(kOfxImageEffectPropSupportedPixelDepths, {kOfxBitDepthFloat, kOfxBitDepthShort, kOfxBitDepthByte});
    p.setInt(kOfxImageEffectPropSupportsTiles, 0);
    p.setInt(kOfxImageEffectPropTemporalClipAccess, 1);
    // Inputs of any size and origin (pixels.cpp handles bounds anywhere): Natron refuses to connect an input whose
    // region differs from the others' (a Roto without a Bg, a cropped plate) to a node that says 0 here. The
    // output's region is the Source's (regionOfDefinition below).
    p.setInt(kOfxImageEffectPropSupportsMultiResolution, 1);
    p.setInt(kOfxImageEffectPropSupportsMultipleClipDepths, 0);
    p.setInt(kOfxImageEffectPluginPropSingleInstance, 0);
    p.setInt(kOfxImageEffectPluginPropHostFrameThreading, 0);
    p.setString(kOfxImageEffectPluginRenderThreadSafety, kOfxImageEffectRenderFullySafe);
    // Fielded material is inpainted as whole frames (the daemon trains on frames): render once per frame, with
    // both fields, unless a parameter animates (none does).
    p.setInt(kOfxImageEffectPluginPropFieldRenderTwiceAlways, 0);
}

namespace {
PropSet defineParam(OfxParamSetHandle set, const char *type, const char *name, const char *label, const char *hint) {
    OfxPropertySetHandle h = nullptr;
    ofx::check(suites().param->paramDefine(set, type, name, &h), name);
    PropSet p(h);
    p.setString(kOfxPropLabel, label);
    p.trySetString(kOfxParamPropHint, hint);
    p.trySetString(kOfxParamPropScriptName, name);
    return p;
}

void defineClip(OfxImageEffectHandle effect, const char *name, bool mask, bool optional) {
    OfxPropertySetHandle h = nullptr;
    ofx::check(suites().effect->clipDefine(effect, name, &h), name);
    PropSet c(h);
    if (mask) {
        c.setStrings(kOfxImageEffectPropSupportedComponents,
                     {kOfxImageComponentAlpha, kOfxImageComponentRGBA, kOfxImageComponentRGB});
        c.setInt(kOfxImageClipPropIsMask, 1);
    } else {
        c.setStrings(kOfxImageEffectPropSupportedComponents, {kOfxImageComponentRGBA, kOfxImageComponentRGB});
    }
    c.setInt(kOfxImageClipPropOptional, optional ? 1 : 0);
    c.setInt(kOfxImageEffectPropSupportsTiles, 0);
    c.trySetInt(kOfxImageEffectPropTemporalClipAccess, 1);
    c.trySetString(kOfxImageClipPropFieldExtraction, kOfxImageFieldBoth);  // whole interlaced frames
}
}  // namespace

void describeInContext(OfxImageEffectHandle effect, PropSet inArgs) {
    const std::string context = inArgs.getString(kOfxImageEffectPropContext);
    const bool general = context == kOfxImageEffectContextGeneral;
    if (!general && context != kOfxImageEffectContextFilter)
        throw OfxError(kOfxStatErrUnsupported, "vinpaint: unsupported context " + context);

    defineClip(effect, kOfxImageEffectSimpleSourceClipName, false, false);
    if (general) defineClip(effect, kMaskClipName, true, true);
    if (general) defineClip(effect, kReferenceClipName, false, true);
    {
        OfxPropertySetHandle h = nullptr;
        ofx::check(suites().effect->clipDefine(effect, kOfxImageEffectOutputClipName, &h), "Output");
        PropSet c(h);
        c.setStrings(kOfxImageEffectPropSupportedComponents, {kOfxImageComponentRGBA, kOfxImageComponentRGB});
        c.setInt(kOfxImageEffectPropSupportsTiles, 0);
    }

    OfxParamSetHandle ps = nullptr;
    ofx::check(suites().effect->getParamSet(effect, &ps), "getParamSet");
    PropSet p = defineParam(ps, kOfxParamTypePushButton, pname::kTrain, "Train",
                    "Read every frame of the Source range with its mask, send them to the daemon and start "
                    "training. Returns when the upload is done; training runs in the daemon.");
    p = defineParam(ps, kOfxParamTypePushButton, pname::kCancel, "Cancel",
                    "Stop this node's training in the daemon (a checkpoint is kept; Train resumes).");
    p = defineParam(ps, kOfxParamTypePushButton, pname::kRefresh, "Refresh",
                    "Ask the daemon for progress and re-render, pulling in frames that finished since.");

    p = defineParam(ps, kOfxParamTypeChoice, pname::kPreset, "Preset",
                    "Training length: fast (minutes on a CPU), paper (the paper's settings, GPU advised), "
                    "tiny (smoke test, seconds).");
    p.setStrings(kOfxParamPropChoiceOption, {kPresetNames[0], kPresetNames[1], kPresetNames[2]});
    p.setInt(kOfxParamPropDefault, 0);
    p.trySetInt(kOfxParamPropAnimates, 0);
    p.trySetInt(kOfxParamPropEvaluateOnChange, 0);

    p = defineParam(ps, kOfxParamTypeChoice, pname::kMaskChannel, "Mask channel",
                    "Which channel of the Mask input marks the hole (more than half = remove).");
    p.setStrings(kOfxParamPropChoiceOption, {"Alpha", "Luminance"});
    p.setInt(kOfxParamPropDefault, kMaskAlpha);
    p.trySetInt(kOfxParamPropAnimates, 0);
    if (hostIsNatron()) p.trySetInt(kOfxParamPropSecret, 1);  // Natron's own selector decides there (above)

    p = defineParam(ps, kOfxParamTypeBoolean, pname::kInvertMask, "Invert mask", "Remove where the mask is dark.");
    p.setInt(kOfxParamPropDefault, 0);
    p.trySetInt(kOfxParamPropAnimates, 0);

    // Pixel counts for the hole (0-512, slider 0-32, not animated).
    auto definePixels = [&](const char *name, const char *label, const char *hint) {
        PropSet q = defineParam(ps, kOfxParamTypeInteger, name, label, hint);
        q.setInt(kOfxParamPropDefault, 0);
        q.trySetInt(kOfxParamPropMin, 0);
        q.trySetInt(kOfxParamPropMax, 512);
        q.trySetInt(kOfxParamPropDisplayMin, 0);
        q.trySetInt(kOfxParamPropDisplayMax, 32);
        q.trySetInt(kOfxParamPropAnimates, 0);
    };
    definePixels(pname::kDilation, "Dilation",
                 "Grow the hole by this many pixels before filling (covers soft edges and shadows).");
    definePixels(pname::kFeather, "Feather", "Blend the fill into the source over this many pixels inside the hole.");

    p = defineParam(ps, kOfxParamTypeChoice, pname::kOutput, "Output",
                    "Inpainted: the daemon's result. Source: the input untouched. Mask overlay: the source with the "
                    "hole tinted red, to check the mask. Matte: how each hole pixel was filled: white = real pixels "
                    "propagated from another frame, grey = generated by the model, black = outside the hole.");
    p.setStrings(kOfxParamPropChoiceOption, {"Inpainted", "Source", "Mask overlay", "Matte"});
    p.setInt(kOfxParamPropDefault, kOutputInpainted);
    p.trySetInt(kOfxParamPropAnimates, 0);

    p = defineParam(ps, kOfxParamTypeBoolean, pname::kWaitInBatch, "Wait for training in batch renders",
                    "In a batch (render farm, command line) render, wait for training to finish instead of failing "
                    "the frame; in a final render of a node never trained, train it first.");
    p.setInt(kOfxParamPropDefault, 1);
    p.trySetInt(kOfxParamPropAnimates, 0);
    p.trySetInt(kOfxParamPropEvaluateOnChange, 0);

    p = defineParam(ps, kOfxParamTypeInteger, pname::kJobFirstFrame, "Job first frame",
                    "The Source frame that is the job's frame 0.");
    p.setInt(kOfxParamPropDefault, 0);
    p.setInt(kOfxParamPropSecret, 1);
    p.trySetInt(kOfxParamPropPersistant, 1);
    p.trySetInt(kOfxParamPropAnimates, 0);
    p.trySetInt(kOfxParamPropMin, -1000000000);
    p.trySetInt(kOfxParamPropMax, 1000000000);
    // Resolve clamps an integer to (0, 0) without a display range too (openfx-misc's host notes)
    p.trySetInt(kOfxParamPropDisplayMin, -1000000000);
    p.trySetInt(kOfxParamPropDisplayMax, 1000000000);
    // Bumped by Refresh so the host drops its cached renders of this node.
    p = defineParam(ps, kOfxParamTypeInteger, pname::kRefreshSerial, "Refresh serial", "");
    p.setInt(kOfxParamPropDefault, 0);
    p.setInt(kOfxParamPropSecret, 1);
    p.trySetInt(kOfxParamPropPersistant, 0);
    p.trySetInt(kOfxParamPropAnimates, 0);
    p.trySetString(kOfxParamPropCacheInvalidation, kOfxParamInvalidateAll);
    p.trySetInt(kOfxParamPropMin, 0);
    p.trySetInt(kOfxParamPropMax, 2000000000);
    p.trySetInt(kOfxParamPropDisplayMin, 0);
    p.trySetInt(kOfxParamPropDisplayMax, 2000000000);

    // The String parameters come last. A host built on HostSupport makes only the parameter types it implements
    // (its example host has no String) and stops at the first it cannot make: defined last, they leave every
    // other parameter in place, and the node keeps them in memory there (paramHandle).
    p = defineParam(ps, kOfxParamTypeString, pname::kDaemon, "Daemon address",
                    "ZeroMQ address of the vinpaint daemon (`vinpaint serve`). Addresses other than "
                    "loopback need CurveZMQ keys (docs/plugin.md).");
    p.setString(kOfxParamPropDefault, defaultDaemonAddress());
    p.trySetString(kOfxParamPropStringMode, kOfxParamStringIsSingleLine);
    p.trySetInt(kOfxParamPropAnimates, 0);

    p = defineParam(ps, kOfxParamTypeString, pname::kEngineSettings, "Engine settings",
                    "Engine settings for Train beyond the preset, as `vinpaint inpaint --set` takes them: KEY=VALUE "
                    "pairs separated by spaces (e.g. shot.window=60 train.max_steps=800); `vinpaint inpaint "
                    "--settings` lists them. Empty: the preset's.");
    p.setString(kOfxParamPropDefault, "");
    p.trySetString(kOfxParamPropStringMode, kOfxParamStringIsSingleLine);
    p.trySetInt(kOfxParamPropAnimates, 0);
    p.trySetInt(kOfxParamPropEvaluateOnChange, 0);

    p = defineParam(ps, kOfxParamTypeString, pname::kStatus, "Status", "What the daemon last said about this node's job.");
    p.setString(kOfxParamPropDefault, "not trained: press Train");
    // Nuke (10 at least, per openfx-misc's host notes) shows a label string's default for ever: changes after the
    // node is made never appear. There a read-only single line carries the status instead.
    p.trySetString(kOfxParamPropStringMode, hostIsNuke() ? kOfxParamStringIsSingleLine : kOfxParamStringIsLabel);
    p.trySetInt(kOfxParamPropEnabled, 0);
    p.trySetInt(kOfxParamPropPersistant, 0);
    p.trySetInt(kOfxParamPropEvaluateOnChange, 0);
    p.trySetInt(kOfxParamPropAnimates, 0);
    p.trySetInt(kOfxParamPropCanUndo, 0);

    // Hidden and saved with the project, each set by Train: the job, so a reopened project finds its finished job;
    // the reference frames Train sent for it (the job, then each frame index and its painting's digest), so a
    // render knows which frames were painted whatever the Reference input is now (disconnected after Train, or
    // another painting connected); the canvas it trained on (a moving plate's: the union of its frames' regions),
    // so a render places each frame without asking the host for every frame's region or the daemon.
    const struct { const char *name, *label, *hint; } records[] = {
        {pname::kJobId, "Job", "The daemon's job for this node (set by Train)."},
        {pname::kJobReferences, "Job references",
         "The reference frames Train sent for this node's job (set by Train)."},
        {pname::kJobCanvas, "Job canvas", "The canvas Train trained this node's job on (set by Train)."},
    };
    for (const auto &record : records) {
        p = defineParam(ps, kOfxParamTypeString, record.name, record.label, record.hint);
        p.setString(kOfxParamPropDefault, "");
        p.setInt(kOfxParamPropSecret, 1);
        p.trySetInt(kOfxParamPropPersistant, 1);
        p.trySetInt(kOfxParamPropAnimates, 0);
    }
    OfxPropertySetHandle pageProps = nullptr;
    if (suites().param->paramDefine(ps, kOfxParamTypePage, pname::kPage, &pageProps) == kOfxStatOK && pageProps) {
        PropSet pg(pageProps);
        pg.trySetString(kOfxPropLabel, "Controls");
        // Shown in this order, whatever the order of definition above; the hidden ones are not on the page.
        const char *shown[] = {pname::kDaemon,  pname::kTrain,       pname::kCancel,     pname::kRefresh,
                               pname::kPreset,  pname::kMaskChannel, pname::kInvertMask, pname::kDilation,
                               pname::kFeather, pname::kEngineSettings, pname::kOutput, pname::kWaitInBatch,
                               pname::kStatus};
        int i = 0;
        for (const char *n : shown)
            if (std::strcmp(n, pname::kMaskChannel) != 0 || !hostIsNatron()) pg.trySetString(kOfxParamPropPageChild, n, i++);
    }
}

// ---- instances ------------------------------------------------------------------------------------------------
namespace {
// `type` names the parameter's kind for the message: a host built on the OpenFX HostSupport library accepts every
// standard type when the node is described, but an instance only gets the types the host application implements
// (the library's example host has no String), and no host property says which.
// A String the host did not make (HostSupport's example host has none) is kept by the node instead, starting at
// `unhostedValue`: the daemon address then comes from VINPAINT_DAEMON, and the job lasts as long as the node.
ofx::Param paramHandle(OfxParamSetHandle set, const char *name, const char *type,
                       const std::string &unhostedValue = {}) {
    OfxParamHandle h = nullptr;
    OfxPropertySetHandle props = nullptr;
    const OfxStatus st = suites().param->paramGetHandle(set, name, &h, &props);
    if (st == kOfxStatErrUnknown && std::string(type) == "String") return ofx::Param::unhosted(name, unhostedValue);
    if (st == kOfxStatErrUnknown)
        throw MissingHostFeature(std::string(type) + " parameters: it accepted the node's '" + name + "' (" + type +
                                 ") when the node was described but did not create it in the instance, so the node "
                                 "cannot be created in this host");
    ofx::check(st, name);
    return ofx::Param(h, props, name);
}
ofx::Clip clipHandle(OfxImageEffectHandle effect, const char *name, bool required) {
    OfxImageClipHandle h = nullptr;
    OfxPropertySetHandle props = nullptr;
    OfxStatus st = suites().effect->clipGetHandle(effect, name, &h, &props);
    if (st != kOfxStatOK) {
        if (!required) return ofx::Clip();
        ofx::check(st, name);
    }
    return ofx::Clip(h, props);
}
}  // namespace

// HostSupport's example host stores no parameter values: it refuses every Integer read and answers every Boolean
// read with true, so Invert mask read as on and every hole was inverted, silently (a hunt, 2026-12-03). A host
// that cannot give an Integer value has no stored values, so its Booleans are taken at their defaults too. Only
// reads here: the spec lets a plug-in set values in InstanceChanged alone, where Train writes back what it read
// (Param::keepUnlessWritable) for a host that gives Integers but not stored Booleans.
static void distrustStubBooleans(Instance &inst) {
    try {
        inst.dilation.getInt();
    } catch (const std::exception &) {
        return;  // a host that fails the read otherwise: the render says so, naming it
    }
    if (!inst.dilation.keptByNode()) return;
    inst.invertMask.keepAtDefault();
    inst.waitInBatch.keepAtDefault();
}

void createInstance(OfxImageEffectHandle effect) {
    OfxPropertySetHandle h = nullptr;
    ofx::check(suites().effect->getPropertySet(effect, &h), "getPropertySet");
    PropSet props(h);
    auto inst = std::make_unique<Instance>();
    inst->handle = effect;
    inst->filterContext = props.getString(kOfxImageEffectPropContext) == kOfxImageEffectContextFilter;
    inst->source = clipHandle(effect, kOfxImageEffectSimpleSourceClipName, true);
    inst->output = clipHandle(effect, kOfxImageEffectOutputClipName, true);
    if (!inst->filterContext) inst->mask = clipHandle(effect, kMaskClipName, false);
    if (!inst->filterContext) inst->reference = clipHandle(effect, kReferenceClipName, false);
    OfxParamSetHandle ps = nullptr;
    ofx::check(suites().effect->getParamSet(effect, &ps), "getParamSet");
    inst->daemon = paramHandle(ps, pname::kDaemon, "String", defaultDaemonAddress());
    inst->preset = paramHandle(ps, pname::kPreset, "Choice");
    inst->maskChannel = paramHandle(ps, pname::kMaskChannel, "Choice");
    inst->invertMask = paramHandle(ps, pname::kInvertMask, "Boolean");
    inst->dilation = paramHandle(ps, pname::kDilation, "Integer");
    inst->feather = paramHandle(ps, pname::kFeather, "Integer");
    inst->engineSettings = paramHandle(ps, pname::kEngineSettings, "String");
    inst->outputChoice = paramHandle(ps, pname::kOutput, "Choice");
    inst->waitInBatch = paramHandle(ps, pname::kWaitInBatch, "Boolean");
    inst->status = paramHandle(ps, pname::kStatus, "String", "not trained: press Train");
    inst->jobId = paramHandle(ps, pname::kJobId, "String");
    inst->jobFirstFrame = paramHandle(ps, pname::kJobFirstFrame, "Integer");
    inst->jobReferences = paramHandle(ps, pname::kJobReferences, "String");
    inst->jobCanvas = paramHandle(ps, pname::kJobCanvas, "String");
    inst->refreshSerial = paramHandle(ps, pname::kRefreshSerial, "Integer");
    distrustStubBooleans(*inst);
    props.setPointer(kOfxPropInstanceData, inst.get());
    inst.release();  // owned by the host's instance from now on; freed in destroyInstance
}

void destroyInstance(OfxImageEffectHandle effect) noexcept {
    ofx::forgetMessages(effect);
    try {
        OfxPropertySetHandle h = nullptr;
        if (suites().effect->getPropertySet(effect, &h) != kOfxStatOK) return;
        PropSet props(h);
        std::unique_ptr<Instance> inst(static_cast<Instance *>(props.getPointer(kOfxPropInstanceData)));
        props.setPointer(kOfxPropInstanceData, nullptr);
    } catch (...) {
    }
}

// ---- instance changed: the buttons ------------------------------------------------------------------------------
namespace {
OfxStatus cancelTraining(Instance &inst) {
    const std::string job = nodeJob(inst, 0).first;
    if (job.empty()) {
        setStatusLine(inst, "not trained: nothing to cancel");
        return kOfxStatOK;
    }
    try {
        DaemonClient client(daemonAddress(inst), Timeouts::interactive());
        auto r = client.cancel(job);
        setStatusLine(inst, r.state == "cancelled" ? "cancelled; press Train to resume" : r.state);
        return kOfxStatOK;
    } catch (const DaemonError &e) {
        setStatusLine(inst, errorLine(e.what()));
        ofx::postMessage(inst.handle, kOfxMessageError, e.what());
        return kOfxStatFailed;
    }
}

OfxStatus refresh(Instance &inst) {
    const std::string job = nodeJob(inst, 0).first;
    std::string trainError;  // a failed last Train stays in the status line: it is what the artist must fix
    FrameCache::global().dropJob(job);
    {
        std::lock_guard<std::mutex> lock(inst.mutex);
        inst.geometryJob.clear();
        inst.canvasJob.clear();  // a canvas worked out from the clip (a job saved before jobCanvas) is again
        trainError = inst.trainError;
    }
    // Changing a hidden parameter is what makes every host drop its cached renders of this node.
    try {
        inst.refreshSerial.setInt(inst.refreshSerial.getInt() + 1);
    } catch (const OfxError &) {
    }
    if (job.empty()) {
        setStatusLine(inst, trainError.empty() ? "not trained: press Train" : trainError);
        return kOfxStatOK;
    }
    try {
        DaemonClient client(daemonAddress(inst), Timeouts::interactive());
        const std::string state = describeJob(client.status(job));
        setStatusLine(inst, trainError.empty() ? state : trainError + " (the node still shows its last job: " + state + ")");
        ofx::clearPersistentMessage(inst.handle);
        return kOfxStatOK;
    } catch (const RemoteError &e) {
        const std::string text = e.code == "not_found"
                                     ? "error: the daemon does not know this node's job (its store was cleared?); press Train"
                                     : errorLine(e.what());
        setStatusLine(inst, text);
        return kOfxStatFailed;
    } catch (const DaemonError &e) {
        setStatusLine(inst, errorLine(e.what()));
        ofx::setPersistentMessage(inst.handle, kOfxMessageError, e.what());
        return kOfxStatFailed;
    }
}
}  // namespace

OfxStatus instanceChanged(OfxImageEffectHandle effect, PropSet inArgs) {
    if (inArgs.tryString(kOfxPropType).value_or("") != kOfxTypeParameter) return kOfxStatReplyDefault;
    const std::string name = inArgs.getString(kOfxPropName);
    const std::string reason = inArgs.tryString(kOfxPropChangeReason).value_or(kOfxChangeUserEdited);
    if (reason == kOfxChangePluginEdited) return kOfxStatOK;  // our own status/job writes
    Instance &inst = instanceOf(effect);
    if (name == pname::kTrain) {
        // A host whose Boolean reads are no stored values (see distrustStubBooleans); never in the hosts known to
        // store them, where writing a value back could add an undo step or replace an expression with a constant.
        if (!hostIsNatron() && !hostIsNuke()) {
            inst.invertMask.keepUnlessWritable();
            inst.waitInBatch.keepUnlessWritable();
        }
        return train(inst);
    }
    if (name == pname::kCancel) return cancelTraining(inst);
    if (name == pname::kRefresh) return refresh(inst);
    // Output switched to Source or Mask overlay: neither needs the daemon, so a daemon error shown on the node
    // (a persistent message from an earlier render) no longer applies. A host that takes Source as an identity
    // never calls Render again to clear it.
    if (name == pname::kOutput && (inst.outputChoice.getInt() == kOutputSource || inst.outputChoice.getInt() == kOutputOverlay))
        ofx::clearPersistentMessage(inst.handle);
    const bool setting = name == pname::kPreset || name == pname::kMaskChannel || name == pname::kInvertMask ||
                         name == pname::kDilation || name == pname::kFeather || name == pname::kEngineSettings;
    if (setting) forgetRenderJob(inst);  // a final render trains again with them
    if (reason == kOfxChangeUserEdited && setting && !inst.jobId.getString().empty()) {
        setStatusLine(inst, "settings changed since the last Train: press Train to apply them");
    }
    return kOfxStatOK;
}

// The spec's answers: kOfxStatOK = "identity, use the clip named in outArgs", kOfxStatReplyDefault = "render".
// (kOfxStatReplyYes is not an identity answer: hosts then call Render anyway.)
OfxStatus isIdentity(OfxImageEffectHandle effect, PropSet inArgs, PropSet outArgs) {
    Instance &inst = instanceOf(effect);
    if (inst.training) return kOfxStatReplyDefault;  // Train reads every input (see Instance::training)
    if (inst.outputChoice.getIntAt(inArgs.tryDouble(kOfxPropTime).value_or(0.0)) != kOutputSource)
        return kOfxStatReplyDefault;
    outArgs.setString(kOfxPropName, kOfxImageEffectSimpleSourceClipName);
    if (auto t = inArgs.tryDouble(kOfxPropTime)) outArgs.setDouble(kOfxPropTime, *t);
    ofx::clearPersistentMessage(effect);  // nothing of the daemon is shown any more
    return kOfxStatOK;
}

// The Source's region: the Mask (a roto shape's bounding box) and the Reference are optional and do not widen it.
OfxStatus regionOfDefinition(OfxImageEffectHandle effect, PropSet inArgs, PropSet outArgs) {
    Instance &inst = instanceOf(effect);
    if (!inst.source || !inst.source.connected()) return kOfxStatReplyDefault;
    OfxRectD rod{};
    try {
        rod = inst.source.regionOfDefinition(inArgs.tryDouble(kOfxPropTime).value_or(0.0));
    } catch (const OfxError &) {
        return kOfxStatReplyDefault;  // the host's own default (the Source's, in HostSupport) rather than an error
    }
    outArgs.setDouble(kOfxImageEffectPropRegionOfDefinition, rod.x1, 0);
    outArgs.setDouble(kOfxImageEffectPropRegionOfDefinition, rod.y1, 1);
    outArgs.setDouble(kOfxImageEffectPropRegionOfDefinition, rod.x2, 2);
    outArgs.setDouble(kOfxImageEffectPropRegionOfDefinition, rod.y2, 3);
    return kOfxStatOK;
}

namespace {
bool isImageComponents(const std::string &c) {
    return c == kOfxImageComponentAlpha || c == kOfxImageComponentRGB || c == kOfxImageComponentRGBA;
}
}  // namespace

// Without this action a host maps every optional input to the components of the "most chromatic" input
// (HostSupport does), so an Alpha-only mask with an RGB source would arrive as RGB and its alpha be lost.
// The Mask asks for exactly what is connected to it (Alpha in Natron, whose own channel selector picks it); the
// Output takes the Source's components; the Reference keeps its alpha (a painting on a transparent layer over an
// RGB plate must not arrive as opaque black).
OfxStatus clipPreferences(OfxImageEffectHandle effect, PropSet outArgs) {
    Instance &inst = instanceOf(effect);
    const std::string prefix = "OfxImageClipPropComponents_";  // + clip name (the spec's per-clip property)
    if (inst.mask && inst.mask.connected()) {
        const std::string comps = inst.mask.props().tryString(kOfxImageClipPropUnmappedComponents).value_or("");
        if (hostIsNatron()) outArgs.setString((prefix + kMaskClipName).c_str(), kOfxImageComponentAlpha);
        else if (isImageComponents(comps)) outArgs.setString((prefix + kMaskClipName).c_str(), comps);
    }
    if (inst.reference && inst.reference.connected()) {
        const std::string comps = inst.reference.props().tryString(kOfxImageClipPropUnmappedComponents).value_or("");
        if (comps == kOfxImageComponentRGB || comps == kOfxImageComponentRGBA)
            outArgs.setString((prefix + kReferenceClipName).c_str(), comps);
    }
    if (inst.source.connected()) {
        std::string comps = inst.source.props().tryString(kOfxImageClipPropUnmappedComponents).value_or("");
        if (comps == kOfxImageComponentRGB || comps == kOfxImageComponentRGBA) {
            outArgs.setString((prefix + kOfxImageEffectSimpleSourceClipName).c_str(), comps);
            outArgs.setString((prefix + kOfxImageEffectOutputClipName).c_str(), comps);
        }
    }
    return kOfxStatOK;
}

}  // namespace vinpaint
