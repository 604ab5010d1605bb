// vinpaint's OFX host harness: loads a bundle with dlopen like a host, provides the suites it fetches, serves
// Source and Mask clips from .npy frames (or procedural ones), a Reference clip (--reference DIR: painted frames
// from --reference-first-frame on, no image outside them; --reference-components RGB|RGBA as connected to it,
// the Source's by default; --gui-final-render: a final render from a GUI host before OFX 1.4, which gives no
// render status; --playback: renders with a final render status inside an interactive sequence, as Natron's viewer
// plays back; --example-host-booleans / --example-host-clips: Boolean parameters and clips as HostSupport's example
// host has them (every Boolean read answers true and no write is taken; every clip connected, the Reference
// serving the Source's frames); --mask-missing F,G: no Mask image at those frames; --natron-habits: outside a
// render an input other than Source gives no image where isIdentity says Source, and Train is pressed once more
// from inside its own first progress update (Natron runs events there); --no-image-rod: images carry their bounds but no region of definition (a host
// before OFX 1.4); --host-name: the name the host gives itself; --no-temporal-access: a host that says plug-ins may
// read only the frame at hand; --frame-origin F=X,Y, repeated: frame F's region of definition starts at (X, Y),
// every clip's, as a plate stabilised with an animated Transform has it, and .npy frames of different shapes are
// frames of their own sizes, as a rotation grows a plate's region; --frac-edge F: frame F's canonical region ends
// 1e-7 past the pixel edge before its image's, as Natron's plain outward rounding makes it; --no-rod-at-scale: a
// host that cannot give a clip's region of definition in a proxy render), and runs a list of steps:
//
//   describe            Load, Describe, DescribeInContext (prints what the plugin declared)
//   create              CreateInstance (parameters from --param first, as a reopened project would)
//   train | cancel | refresh    press that button (Begin/InstanceChanged/End, reason user edited)
//   wait[:SECONDS]      press Refresh once a second until the status line says done (or failed)
//   render:F | render-all       IsIdentity + BeginSequenceRender + Render + EndSequenceRender, output saved
//   render-parallel:F+G+...     one sequence, each frame's Render on its own thread at the same time (as Natron
//                       renders a node that declares kOfxImageEffectRenderFullySafe): every output image is held
//                       until all renders have asked for theirs, so they really overlap; outputs saved
//   render-sequence:A-B one final-or-interactive sequence (one Begin/EndSequenceRender) around frames A..B rendered
//                       in turn, as a host renders a range (render-all wraps each frame in a sequence of its own)
//   set:NAME=VALUE      change a parameter as a user would
//   reference:none | reference:DIR[@F]   disconnect the Reference input, or connect painted frames from DIR (from
//                       frame F on; --reference-first-frame by default), as a user rewires the graph
//   reopen              the project saved and opened again: DestroyInstance, then CreateInstance with every
//                       persistent parameter's value as it was (the node's in-memory state is gone)
//   out:DIR             save the outputs and served frames of the steps after it in DIR
//   sleep:SECONDS | destroy | unload
//
// Every step prints one JSON line (status, elapsed time, messages, the status parameter); the test reads them.
// The harness itself never crashes on a misbehaving plugin action; a watchdog reports an action that hangs.
//
// It is a strict host, like hosts built on the OpenFX HostSupport library: property sets hold a fixed list of
// properties (props.h, names independent of the plugin's header) and refuse unknown names, wrong types and
// indices; only the statuses the spec gives count (isIdentity: kOfxStatOK is "identity", kOfxStatReplyDefault
// "render"; kOfxStatReplyYes/No from an action is a failure); clip components and depths are chosen as
// HostSupport chooses them and then changed only through kOfxImageEffectActionGetClipPreferences; a depth the
// plugin does not declare (--depth half) is never sent; fielded material (--field) is rendered once with both
// fields or twice, one field each, as the plugin's kOfxImageEffectPluginPropFieldRenderTwiceAlways says.
#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "host.h"
#include "npy.h"

using namespace harness;
namespace fs = std::filesystem;

namespace {

struct Args {
    std::string bundle, sourceDir, maskDir, outDir, daemon, context = "general", referenceDir;
    int referenceFirst = 1;
    // --example-host-clips: as HostSupport's example host, every clip says it is connected and the Reference serves
    // the Source's frames (from --source).
    bool exampleClips = false;
    int synthW = 0, synthH = 0, synthT = 0;
    bool noMask = false, batch = false;
    Depth depth = Depth::Byte;
    int comps = 4, maskComps = 1, referenceComps = 0, firstFrame = 1;  // referenceComps 0: the Source's
    bool preRenderStatus = false;  // an OFX 1.3 host: no render status props; its sequence says IsInteractive
    std::vector<double> sourceRange;  // --source-range MIN,MAX: the range the Source claims (a generator's: unbounded)
    bool playback = false;  // Natron's viewer playback: render status 0 (final), its sequence interactive, GUI host
    std::vector<std::pair<std::string, std::string>> params;
    std::vector<std::string> steps;
    std::set<std::string> expectFailure;
    bool describeAfterFailedLoad = false;  // a careless host: Describe anyway after Load failed (must not crash)
    int killPid = 0, killBeforeFrame = -1000000;
    double abortAfter = -1, watchdog = 180, waitTimeout = 600, scale = 1.0;
    std::string lackParamType;  // instances end before the first parameter of this type (as HostSupport's does)
    bool splitFields = false;  // render fielded material one field at a time whatever the plugin says (a host
                               // does when a parameter animates)
    Options host;
};

[[noreturn]] void usage(const std::string &why) {
    std::fprintf(stderr, "ofx_harness: %s\nsee the comment at the top of tests/ofx_harness/harness.cpp\n", why.c_str());
    std::exit(2);
}

std::vector<std::string> split(const std::string &s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string t; std::getline(ss, t, sep);)
        if (!t.empty()) out.push_back(t);
    return out;
}

Args parse(int argc, char **argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) usage(k + " needs a value");
            return argv[++i];
        };
        if (k == "--bundle") a.bundle = next();
        else if (k == "--source") a.sourceDir = next();
        else if (k == "--mask") a.maskDir = next();
        else if (k == "--no-mask") a.noMask = true;
        else if (k == "--reference") a.referenceDir = next();
        else if (k == "--reference-first-frame") a.referenceFirst = std::stoi(next());
        else if (k == "--synthetic") {
            auto d = split(next(), 'x');
            if (d.size() != 3) usage("--synthetic WxHxT");
            a.synthW = std::stoi(d[0]);
            a.synthH = std::stoi(d[1]);
            a.synthT = std::stoi(d[2]);
        } else if (k == "--out") a.outDir = next();
        else if (k == "--daemon") a.daemon = next();
        else if (k == "--context") a.context = next();
        else if (k == "--depth") {
            std::string d = next();
            a.depth = d == "byte" ? Depth::Byte : d == "short" ? Depth::Short : d == "half" ? Depth::Half : d == "float" ? Depth::Float : (usage("--depth byte|short|half|float"), Depth::Byte);
        } else if (k == "--components") {
            std::string c = next();
            a.comps = c == "RGBA" ? 4 : c == "RGB" ? 3 : (usage("--components RGBA|RGB"), 4);
        } else if (k == "--mask-components") {
            std::string c = next();
            a.maskComps = c == "Alpha" ? 1 : c == "RGB" ? 3 : c == "RGBA" ? 4 : (usage("--mask-components Alpha|RGB|RGBA"), 1);
        } else if (k == "--reference-components") {
            std::string c = next();
            a.referenceComps = c == "RGBA" ? 4 : c == "RGB" ? 3 : (usage("--reference-components RGBA|RGB"), 4);
        } else if (k == "--first-frame") a.firstFrame = std::stoi(next());
        else if (k == "--param") {
            std::string p = next();
            auto eq = p.find('=');
            if (eq == std::string::npos) usage("--param NAME=VALUE");
            a.params.emplace_back(p.substr(0, eq), p.substr(eq + 1));
        } else if (k == "--steps") a.steps = split(next(), ',');
        else if (k == "--expect-failure") {
            for (auto &s : split(next(), ',')) a.expectFailure.insert(s);
        } else if (k == "--batch") {
            a.batch = true;
            a.host.background = true;
        } else if (k == "--host-name") {
            a.host.name = next();
        } else if (k == "--gui-final-render") {  // a final render from a GUI host older than OFX 1.4
            a.preRenderStatus = true;
        } else if (k == "--source-range") {
            auto d = split(next(), ',');
            if (d.size() != 2) usage("--source-range MIN,MAX");
            a.sourceRange = {std::stod(d[0]), std::stod(d[1])};
        } else if (k == "--playback") {  // the viewer plays the clip back, as Natron does (not background)
            a.playback = true;
        } else if (k == "--no-temporal-access") a.host.temporalAccess = false;
        else if (k == "--no-message-v2") a.host.messageV2 = false;
        else if (k == "--no-progress") a.host.progressSuite = false;
        else if (k == "--no-multithread") a.host.multiThread = false;
        else if (k == "--no-param-suite") a.host.paramSuite = false;
        else if (k == "--describe-after-failed-load") a.describeAfterFailedLoad = true;
        else if (k == "--cancel-progress-after") a.host.cancelProgressAfter = std::stoi(next());
        else if (k == "--negative-rowbytes") a.host.negativeRowBytes = true;
        else if (k == "--row-padding") a.host.rowPadding = std::stoi(next());
        else if (k == "--origin") {
            auto d = split(next(), ',');
            if (d.size() != 2) usage("--origin X,Y");
            a.host.originX = std::stoi(d[0]);
            a.host.originY = std::stoi(d[1]);
        } else if (k == "--frame-origin") {  // F=X,Y: frame F's region starts at (X, Y) (a moving plate)
            const std::string v = next();
            const auto eq = v.find('=');
            const auto d = split(eq == std::string::npos ? "" : v.substr(eq + 1), ',');
            if (eq == std::string::npos || d.size() != 2) usage("--frame-origin F=X,Y");
            a.host.frameOrigins[std::stoi(v.substr(0, eq))] = {std::stoi(d[0]), std::stoi(d[1])};
        } else if (k == "--frac-edge") {  // F: frame F's canonical region's right edge 1e-7 past a pixel's
            a.host.fracEdgeFrame = std::stoi(next());
        } else if (k == "--no-rod-at-scale") {  // a host that cannot give a clip's region in a proxy render
            a.host.noRodAtScale = true;
        } else if (k == "--kill-pid") a.killPid = std::stoi(next());
        else if (k == "--kill-before-frame") a.killBeforeFrame = std::stoi(next());
        else if (k == "--abort-after") a.abortAfter = std::stod(next());
        else if (k == "--watchdog") a.watchdog = std::stod(next());
        else if (k == "--scale") a.scale = std::stod(next());
        else if (k == "--split-fields") a.splitFields = true;
        else if (k == "--field") {
            a.host.field = next();
            if (a.host.field != "none" && a.host.field != "lower" && a.host.field != "upper") usage("--field none|lower|upper");
        }
        else if (k == "--wait-timeout") a.waitTimeout = std::stod(next());
        else if (k == "--lack-param-type") a.lackParamType = next();
        else if (k == "--unreadable-param-type") a.host.unreadableParamType = next();
        else if (k == "--example-host-booleans") a.host.exampleBooleans = true;
        else if (k == "--no-image-rod") a.host.noImageRod = true;
        else if (k == "--natron-habits") a.host.natronHabits = true;
        else if (k == "--mask-missing") {
            for (auto &s : split(next(), ',')) a.host.maskMissing.insert(std::stoi(s));
        }
        else if (k == "--example-host-clips") a.exampleClips = true;
        else usage("unknown option " + k);
    }
    if (a.bundle.empty()) usage("--bundle is required");
    if (a.sourceDir.empty() && a.synthW == 0) usage("--source DIR or --synthetic WxHxT is required");
    if (a.context != "general" && a.context != "filter") usage("--context general|filter");
    return a;
}

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---- watchdog: a plugin action that never returns is reported and the harness exits ----------------------------
std::atomic<double> g_actionStart{0};  // when the actions now running began (0: none runs)
std::atomic<const char *> g_actionName{nullptr};
std::atomic<int> g_actionsRunning{0};  // outermost actions running on all threads (render-parallel: several)
thread_local int t_actionDepth = 0;

void startWatchdog(double limit) {
    std::thread([limit] {
        for (;;) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            const double s = g_actionStart.load();
            if (s > 0 && now() - s > limit) {
                std::printf("{\"event\": \"frozen\", \"action\": \"%s\", \"seconds\": %.1f}\n",
                            g_actionName.load() ? g_actionName.load() : "?", now() - s);
                std::fflush(stdout);
                std::_Exit(3);
            }
        }
    }).detach();
}

std::string statusName(OfxStatus s) {
    switch (s) {
        case kOfxStatOK: return "OK";
        case kOfxStatFailed: return "Failed";
        case kOfxStatErrFatal: return "ErrFatal";
        case kOfxStatErrUnknown: return "ErrUnknown";
        case kOfxStatErrMissingHostFeature: return "ErrMissingHostFeature";
        case kOfxStatErrUnsupported: return "ErrUnsupported";
        case kOfxStatErrFormat: return "ErrFormat";
        case kOfxStatErrMemory: return "ErrMemory";
        case kOfxStatErrBadHandle: return "ErrBadHandle";
        case kOfxStatErrBadIndex: return "ErrBadIndex";
        case kOfxStatErrExists: return "ErrExists";
        case kOfxStatErrValue: return "ErrValue";
        case kOfxStatReplyYes: return "ReplyYes";
        case kOfxStatReplyNo: return "ReplyNo";
        case kOfxStatReplyDefault: return "ReplyDefault";
        case kOfxStatErrImageFormat: return "ErrImageFormat";
    }
    return std::to_string(s);
}

std::string jsonList(const std::vector<std::string> &v) {
    std::string o = "[";
    for (std::size_t i = 0; i < v.size(); ++i) o += (i ? ", \"" : "\"") + jsonEscape(v[i]) + "\"";
    return o + "]";
}

// The shared libraries this process has mapped (each once): which libzmq the plugin opened at run time, and which
// libraries came from the bundle's own lib/ folder.
std::vector<std::string> mappedLibraries() {
    std::vector<std::string> found;
    std::FILE *maps = std::fopen("/proc/self/maps", "r");
    if (!maps) return found;
    char line[4096];
    while (std::fgets(line, sizeof line, maps)) {
        const char *path = std::strchr(line, '/');
        if (!path) continue;
        std::string file(path);
        while (!file.empty() && (file.back() == '\n' || file.back() == ' ')) file.pop_back();
        if (file.find(".so") != std::string::npos && std::find(found.begin(), found.end(), file) == found.end())
            found.push_back(file);
    }
    std::fclose(maps);
    return found;
}

std::vector<std::string> containing(const std::vector<std::string> &files, const std::string &part) {
    std::vector<std::string> out;
    for (const auto &f : files)
        if (f.find(part) != std::string::npos) out.push_back(f);
    return out;
}

class Driver {
public:
    explicit Driver(Args a) : a_(std::move(a)), host_(a_.host) {}
    int run();

private:
    OfxStatus call(const char *action, const void *handle, PropertySet *in, PropertySet *out);
    void loadBundle();
    void describe();
    void create();
    OfxStatus pressButton(const std::string &name, const char *reason = kOfxChangeUserEdited);
    bool pressedDuringProgress_ = false;
    // kOfxActionInstanceChanged for a parameter or a clip, inside its Begin/End pair, at the first frame.
    OfxStatus instanceChanged(const char *type, const std::string &name, const char *reason);
    OfxStatus setParam(const std::string &name, const std::string &value);
    OfxStatus renderFrame(int frame, bool sequenceOpen);
    OfxStatus renderCall(Effect &e, int frame, const std::string &field, int x1, int y1, int w, int h, double sc);
    std::vector<OfxStatus> renderParallel(const std::vector<int> &frames, std::vector<double> &seconds);
    void clipPreferences();
    Depth mappedDepth(Depth asked);
    bool stepWait(double timeout);
    std::string statusParam();
    void saveOutput(int frame, const ImageLayout &layout);
    void saveServed(const char *clip, int frame);
    // The Reference clip as connected now (reference_, a_.referenceFirst): its provider and properties.
    void connectReference(Clip &c);
    OfxStatus rewireReference(const std::string &spec);
    std::vector<std::pair<std::string, std::string>> persistentValues();
    void record(const std::string &step, OfxStatus st, double elapsed, int messagesBefore, const std::string &extra = "");

    Args a_;
    Host host_;
    void *dl_ = nullptr;
    OfxPlugin *plugin_ = nullptr;
    std::unique_ptr<FrameProvider> source_, mask_, reference_;
    std::unique_ptr<Effect> descriptor_, contextDescriptor_, instance_;
    bool loaded_ = false;
    std::vector<std::string> failures_;
    std::mutex failuresMutex_;  // renders on several threads (render-parallel) may add to failures_
    int nested_ = 0;
    double imageSecondsBefore_ = 0;
    long long imagesBefore_ = 0, sourceImagesBefore_ = 0, rodQueriesBefore_ = 0;
    std::vector<std::pair<std::string, std::string>> reopenParams_;  // applied by create() after --param (reopen)
};

OfxStatus Driver::call(const char *action, const void *handle, PropertySet *in, PropertySet *out) {
    const bool outer = t_actionDepth++ == 0;
    if (outer && g_actionsRunning++ == 0) {  // the watchdog times from the first of overlapping actions
        g_actionName = action;
        g_actionStart = now();
    }
    OfxStatus st = plugin_->mainEntry(action, handle, in ? in->handle() : nullptr, out ? out->handle() : nullptr);
    --t_actionDepth;
    if (outer && --g_actionsRunning == 0) g_actionStart = 0;
    // kOfxStatReplyYes/No answer questions (a progress bar's cancel, a dialog); no action this host sends takes them.
    if (st == kOfxStatReplyYes || st == kOfxStatReplyNo) {
        std::lock_guard<std::mutex> l(failuresMutex_);
        failures_.push_back(std::string(action) + " answered " + statusName(st) + ", not a status the spec gives for it");
        host_.event("{\"event\": \"bad_status\", \"action\": \"" + jsonEscape(action) + "\", \"status\": \"" +
                    statusName(st) + "\"}");
    }
    return st;
}

void Driver::loadBundle() {
    fs::path dir = fs::path(a_.bundle) / "Contents" / "Linux-x86-64";
    std::string binary;
    if (fs::is_directory(dir))
        for (auto &e : fs::directory_iterator(dir))
            if (e.path().extension() == ".ofx") binary = e.path().string();
    if (binary.empty()) usage("no .ofx binary in " + dir.string());
    dl_ = dlopen(binary.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!dl_) {
        std::printf("{\"event\": \"dlopen_failed\", \"error\": \"%s\"}\n", jsonEscape(dlerror()).c_str());
        std::exit(4);
    }
    auto count = reinterpret_cast<int (*)()>(dlsym(dl_, "OfxGetNumberOfPlugins"));
    auto get = reinterpret_cast<OfxPlugin *(*)(int)>(dlsym(dl_, "OfxGetPlugin"));
    if (!count || !get) usage("the bundle lacks OfxGetNumberOfPlugins/OfxGetPlugin");
    const int n = count();
    for (int i = 0; i < n; ++i) {
        OfxPlugin *p = get(i);
        if (p && std::strcmp(p->pluginApi, kOfxImageEffectPluginApi) == 0) plugin_ = p;
    }
    if (!plugin_) usage("the bundle has no image effect plugin");
    host_.event("{\"event\": \"loaded\", \"binary\": \"" + jsonEscape(binary) + "\", \"plugins\": " + std::to_string(n) +
                ", \"identifier\": \"" + jsonEscape(plugin_->pluginIdentifier) + "\", \"api_version\": " +
                std::to_string(plugin_->apiVersion) + ", \"version\": \"" + std::to_string(plugin_->pluginVersionMajor) +
                "." + std::to_string(plugin_->pluginVersionMinor) + "\"}");
    plugin_->setHost(host_.ofxHost());
}

void Driver::describe() {
    const double t0 = now();
    const int m0 = host_.messagesPosted();
    OfxStatus st = call(kOfxActionLoad, nullptr, nullptr, nullptr);
    if (st != kOfxStatOK && st != kOfxStatReplyDefault) {
        record("load", st, now() - t0, m0);
        if (a_.describeAfterFailedLoad) {
            Effect careless;
            for (const std::string &n : propsOf(SetKind::EffectDescriptor)) careless.props.declare(n);
            const double t1 = now();
            const int m1 = host_.messagesPosted();
            const OfxStatus described = call(kOfxActionDescribe, &careless, nullptr, nullptr);
            record("describe", described, now() - t1, m1);
        }
        return;
    }
    loaded_ = true;
    descriptor_ = std::make_unique<Effect>();
    for (const std::string &n : propsOf(SetKind::EffectDescriptor)) descriptor_->props.declare(n);
    descriptor_->props.setString(kOfxPropType, {kOfxTypeImageEffect});
    // The spec's defaults for what a plugin does not say.
    descriptor_->props.setInt(kOfxImageEffectPropSupportsMultiResolution, {1});
    descriptor_->props.setInt(kOfxImageEffectPropSupportsTiles, {1});
    descriptor_->props.setInt(kOfxImageEffectPluginPropFieldRenderTwiceAlways, {1});
    descriptor_->props.setString(kOfxImageEffectPluginRenderThreadSafety, {kOfxImageEffectRenderInstanceSafe});
    descriptor_->props.setString(kOfxImageEffectPluginPropGrouping, {""});
    st = call(kOfxActionDescribe, descriptor_.get(), nullptr, nullptr);
    if (st != kOfxStatOK && st != kOfxStatReplyDefault) {
        record("describe", st, now() - t0, m0);
        return;
    }
    contextDescriptor_ = std::make_unique<Effect>();
    contextDescriptor_->props = descriptor_->props;
    contextDescriptor_->context = a_.context == "filter" ? kOfxImageEffectContextFilter : kOfxImageEffectContextGeneral;
    contextDescriptor_->props.setString(kOfxImageEffectPropContext, {contextDescriptor_->context});
    PropertySet in;
    in.setString(kOfxImageEffectPropContext, {contextDescriptor_->context});
    st = call(kOfxImageEffectActionDescribeInContext, contextDescriptor_.get(), &in, nullptr);

    // What the plugin declared, for the test to check.
    const PropertySet &p = descriptor_->props;
    std::string params = "{";
    bool firstParam = true;
    for (auto &prm : contextDescriptor_->params.params) {
        params += std::string(firstParam ? "" : ", ") + "\"" + jsonEscape(prm->name) + "\": {\"type\": \"" +
                  jsonEscape(prm->type) + "\", \"label\": \"" + jsonEscape(prm->props.getString(kOfxPropLabel)) +
                  "\", \"secret\": " + std::to_string(prm->props.getInt(kOfxParamPropSecret)) +
                  ", \"persistent\": " + std::to_string(prm->props.getInt(kOfxParamPropPersistant)) +
                  ", \"enabled\": " + std::to_string(prm->props.getInt(kOfxParamPropEnabled)) +
                  ", \"options\": " + jsonList(prm->props.strings(kOfxParamPropChoiceOption)) +
                  ", \"string_mode\": \"" + jsonEscape(prm->props.getString(kOfxParamPropStringMode)) +
                  "\", \"hint\": \"" + jsonEscape(prm->props.getString(kOfxParamPropHint)) + "\", \"children\": " +
                  jsonList(prm->props.strings(kOfxParamPropPageChild)) + "}";
        firstParam = false;
    }
    params += "}";
    std::string clips = "{";
    bool firstClip = true;
    for (auto &[name, c] : contextDescriptor_->clips) {
        clips += std::string(firstClip ? "" : ", ") + "\"" + jsonEscape(name) + "\": {\"optional\": " +
                 std::to_string(c->props.getInt(kOfxImageClipPropOptional)) + ", \"is_mask\": " +
                 std::to_string(c->props.getInt(kOfxImageClipPropIsMask)) + ", \"components\": " +
                 jsonList(c->props.strings(kOfxImageEffectPropSupportedComponents)) + ", \"temporal\": " +
                 std::to_string(c->props.getInt(kOfxImageEffectPropTemporalClipAccess)) + ", \"tiles\": " +
                 std::to_string(c->props.getInt(kOfxImageEffectPropSupportsTiles, 0, 1)) + ", \"field_extraction\": \"" +
                 jsonEscape(c->props.getString(kOfxImageClipPropFieldExtraction)) + "\"}";
        firstClip = false;
    }
    clips += "}";
    host_.event("{\"event\": \"describe\", \"status\": \"" + statusName(st) + "\", \"label\": \"" +
                jsonEscape(p.getString(kOfxPropLabel)) + "\", \"grouping\": \"" +
                jsonEscape(p.getString(kOfxImageEffectPluginPropGrouping)) + "\", \"contexts\": " +
                jsonList(p.strings(kOfxImageEffectPropSupportedContexts)) + ", \"depths\": " +
                jsonList(p.strings(kOfxImageEffectPropSupportedPixelDepths)) + ", \"tiles\": " +
                std::to_string(p.getInt(kOfxImageEffectPropSupportsTiles, 0, -1)) + ", \"temporal\": " +
                std::to_string(p.getInt(kOfxImageEffectPropTemporalClipAccess, 0, -1)) + ", \"thread_safety\": \"" +
                jsonEscape(p.getString(kOfxImageEffectPluginRenderThreadSafety)) + "\", \"field_render_twice\": " +
                std::to_string(p.getInt(kOfxImageEffectPluginPropFieldRenderTwiceAlways, 0, 1)) +
                ", \"multiple_clip_depths\": " + std::to_string(p.getInt(kOfxImageEffectPropSupportsMultipleClipDepths)) +
                ", \"refusals\": " + std::to_string(host_.refusals()) + ", \"params\": " + params +
                ", \"clips\": " + clips + "}");
    record("describe", st, now() - t0, m0);
}

void Driver::create() {
    const double t0 = now();
    const int m0 = host_.messagesPosted();
    if (!contextDescriptor_) usage("create needs describe first");
    instance_ = std::make_unique<Effect>();
    Effect &e = *instance_;
    e.isInstance = true;
    e.context = contextDescriptor_->context;
    e.props = contextDescriptor_->props;
    e.props.setString(kOfxPropType, {kOfxTypeImageEffectInstance});
    e.props.setString(kOfxImageEffectPropContext, {e.context});
    e.props.setInt(kOfxPropIsInteractive, {a_.batch ? 0 : 1});
    e.props.setPointer(kOfxPropInstanceData, {nullptr});
    e.props.setDouble(kOfxImageEffectPropFrameRate, {25.0});
    e.props.setDouble("OfxImageEffectPropProjectSize", {double(source_->width()), double(source_->height())});
    e.props.setDouble("OfxImageEffectPropProjectOffset", {0.0, 0.0});
    e.props.setDouble("OfxImageEffectPropProjectExtent", {double(source_->width()), double(source_->height())});
    e.props.setDouble("OfxImageEffectPropPixelAspectRatio", {1.0});
    e.props.setDouble("OfxImageEffectInstancePropEffectDuration", {double(source_->frames())});
    e.props.setInt("OfxImageEffectInstancePropSequentialRender", {0});

    // Parameters: the descriptor's, at their defaults or the saved values given with --param.
    for (auto &dp : contextDescriptor_->params.params) {
        // A host built on HostSupport accepts every standard type in paramDefine, but its instance has only the
        // types the host application implements (the library's example host has no String): populate() stops at
        // the first parameter it cannot make, createInstance ignores that, and paramGetHandle refuses the names.
        if (dp->type == a_.lackParamType) break;
        auto p = std::make_unique<Param>();
        p->name = dp->name;
        p->type = dp->type;
        p->props = dp->props;
        p->owner = &e;
        if (p->type == kOfxParamTypeString) p->s = p->props.getString(kOfxParamPropDefault);
        else if (p->type == kOfxParamTypeDouble) p->d = p->props.getDouble(kOfxParamPropDefault);
        else p->i = p->props.getInt(kOfxParamPropDefault);
        e.params.params.push_back(std::move(p));
    }
    auto apply = [&](const std::string &name, const std::string &value) {
        Param *p = e.params.find(name);
        if (!p) usage("no parameter " + name);
        if (p->type == kOfxParamTypeString) p->s = value;
        else if (p->type == kOfxParamTypeDouble) p->d = std::stod(value);
        else p->i = std::stoi(value);
    };
    if (!a_.daemon.empty() && e.params.find("daemonAddress")) apply("daemonAddress", a_.daemon);
    for (auto &[k, v] : a_.params) apply(k, v);
    for (auto &[k, v] : reopenParams_) apply(k, v);

    // Clips: the descriptor's, connected to the harness's frames.
    const FrameProvider *src = source_.get();
    const double last = a_.firstFrame + src->frames() - 1;
    const Depth depth = mappedDepth(a_.depth);  // what the plugin declares; HostSupport's choice otherwise
    for (auto &[name, dc] : contextDescriptor_->clips) {
        auto c = std::make_unique<Clip>();
        c->name = name;
        c->owner = &e;
        c->props = dc->props;
        c->depth = depth;
        if (name == kOfxImageEffectSimpleSourceClipName) {
            c->provider = src;
            c->comps = a_.comps;
            if (a_.context == "filter" && a_.comps == 4 && mask_) {
                c->maskInAlpha = true;
                c->alphaFrom = mask_.get();
            }
        } else if (name == "Mask") {
            c->provider = (a_.context == "general" && !a_.noMask) ? mask_.get() : nullptr;
            c->comps = a_.maskComps;
        } else if (name == "Reference") {
            c->provider = reference_.get();
            c->comps = a_.referenceComps ? a_.referenceComps : a_.comps;
            connectReference(*c);
            e.clips[name] = std::move(c);
            continue;
        } else {
            c->comps = a_.comps;
        }
        const char *comps = c->comps == 4 ? kOfxImageComponentRGBA : c->comps == 3 ? kOfxImageComponentRGB : kOfxImageComponentAlpha;
        const bool connected = c->provider != nullptr || name == kOfxImageEffectOutputClipName;
        c->props.setInt(kOfxImageClipPropConnected, {connected ? 1 : 0});
        c->props.setString(kOfxImageEffectPropPixelDepth, {connected ? depthName(c->depth) : kOfxBitDepthNone});
        c->props.setString(kOfxImageEffectPropComponents, {connected ? comps : kOfxImageComponentNone});
        c->props.setString(kOfxImageClipPropUnmappedPixelDepth, {depthName(c->depth)});
        c->props.setString(kOfxImageClipPropUnmappedComponents, {comps});
        c->props.setString(kOfxImageEffectPropPreMultiplication, {c->comps == 4 ? kOfxImageUnPreMultiplied : kOfxImageOpaque});
        c->props.setDouble(kOfxImagePropPixelAspectRatio, {1.0});
        c->props.setDouble(kOfxImageEffectPropFrameRate, {25.0});
        const double from = double(a_.firstFrame), to = last;
        const bool given = name == kOfxImageEffectSimpleSourceClipName && !a_.sourceRange.empty();
        c->props.setDouble(kOfxImageEffectPropFrameRange, given ? a_.sourceRange : std::vector<double>{from, to});
        c->props.setDouble(kOfxImageEffectPropUnmappedFrameRange, given ? a_.sourceRange : std::vector<double>{from, to});
        c->props.setString(kOfxImageClipPropFieldOrder, {a_.host.field == "lower" ? kOfxImageFieldLower
                                                        : a_.host.field == "upper" ? kOfxImageFieldUpper : kOfxImageFieldNone});
        c->props.setInt(kOfxImageClipPropContinuousSamples, {0});
        c->props.setDouble("OfxImageEffectPropUnmappedFrameRate", {25.0});
        e.clips[name] = std::move(c);
    }
    OfxStatus st = call(kOfxActionCreateInstance, &e, nullptr, nullptr);
    if (st == kOfxStatOK) clipPreferences();
    record("create", st, now() - t0, m0);
}

// The Reference clip holds only its painted frames (from --reference-first-frame on); unconnected without them.
void Driver::connectReference(Clip &c) {
    c.provider = reference_.get();
    const bool connected = c.provider != nullptr;
    const char *comps = c.comps == 4   ? kOfxImageComponentRGBA
                        : c.comps == 3 ? kOfxImageComponentRGB
                                       : kOfxImageComponentAlpha;
    c.props.setInt(kOfxImageClipPropConnected, {connected ? 1 : 0});
    c.props.setString(kOfxImageEffectPropPixelDepth, {connected ? depthName(c.depth) : kOfxBitDepthNone});
    c.props.setString(kOfxImageEffectPropComponents, {connected ? comps : kOfxImageComponentNone});
    c.props.setString(kOfxImageClipPropUnmappedPixelDepth, {depthName(c.depth)});
    c.props.setString(kOfxImageClipPropUnmappedComponents, {comps});
    c.props.setString(kOfxImageEffectPropPreMultiplication,
                      {c.comps == 4 ? kOfxImageUnPreMultiplied : kOfxImageOpaque});
    c.props.setDouble(kOfxImagePropPixelAspectRatio, {1.0});
    c.props.setDouble(kOfxImageEffectPropFrameRate, {25.0});
    const double from = connected ? double(a_.referenceFirst) : double(a_.firstFrame);
    const double to = connected ? double(a_.referenceFirst + reference_->frames() - 1) : from;
    c.props.setDouble(kOfxImageEffectPropFrameRange, {from, to});
    c.props.setDouble(kOfxImageEffectPropUnmappedFrameRange, {from, to});
    const char *order = a_.host.field == "lower"   ? kOfxImageFieldLower
                        : a_.host.field == "upper" ? kOfxImageFieldUpper
                                                   : kOfxImageFieldNone;
    c.props.setString(kOfxImageClipPropFieldOrder, {order});
    c.props.setInt(kOfxImageClipPropContinuousSamples, {0});
    c.props.setDouble("OfxImageEffectPropUnmappedFrameRate", {25.0});
}

// reference:none or reference:DIR[@F]: the user rewires the Reference input of the live node. The host then tells
// the plugin (InstanceChanged, a clip, user edited) and asks its clip preferences again, as hosts do.
OfxStatus Driver::rewireReference(const std::string &spec) {
    if (spec == "none") {
        reference_.reset();
    } else {
        const auto at = spec.rfind('@');
        reference_ = npyDirectory(at == std::string::npos ? spec : spec.substr(0, at));
        if (at != std::string::npos) a_.referenceFirst = std::stoi(spec.substr(at + 1));
    }
    Clip *c = instance_->clip("Reference");
    if (!c) usage("reference: the node has no Reference clip (the Filter context?)");
    c->comps = a_.referenceComps ? a_.referenceComps : a_.comps;
    connectReference(*c);
    const OfxStatus st = instanceChanged(kOfxTypeClip, "Reference", kOfxChangeUserEdited);
    clipPreferences();
    return st;
}

// What a host saves with the project: every persistent parameter's value (buttons and pages have none).
std::vector<std::pair<std::string, std::string>> Driver::persistentValues() {
    std::vector<std::pair<std::string, std::string>> saved;
    for (auto &p : instance_->params.params) {
        if (p->props.getInt(kOfxParamPropPersistant, 0, 1) == 0) continue;
        if (p->type == kOfxParamTypeString) {
            saved.emplace_back(p->name, p->s);
        } else if (p->type == kOfxParamTypeDouble) {
            char v[64];
            std::snprintf(v, sizeof v, "%.17g", p->d);
            saved.emplace_back(p->name, v);
        } else if (p->type == kOfxParamTypeInteger || p->type == kOfxParamTypeBoolean ||
                   p->type == kOfxParamTypeChoice) {
            saved.emplace_back(p->name, std::to_string(p->i));
        }
    }
    return saved;
}

// HostSupport's choice of depth when the plugin does not declare the asked one: half -> float -> short -> byte,
// float -> short -> byte, short -> float -> byte, byte -> short -> float.
Depth Driver::mappedDepth(Depth asked) {
    const std::vector<std::string> declared = contextDescriptor_->props.strings(kOfxImageEffectPropSupportedPixelDepths);
    auto has = [&](Depth d) { return std::find(declared.begin(), declared.end(), depthName(d)) != declared.end(); };
    std::vector<Depth> order;
    switch (asked) {
        case Depth::Half: order = {Depth::Half, Depth::Float, Depth::Short, Depth::Byte}; break;
        case Depth::Float: order = {Depth::Float, Depth::Short, Depth::Byte}; break;
        case Depth::Short: order = {Depth::Short, Depth::Float, Depth::Byte}; break;
        case Depth::Byte: order = {Depth::Byte, Depth::Short, Depth::Float}; break;
    }
    for (Depth d : order)
        if (has(d)) {
            if (d != asked)
                host_.event(std::string("{\"event\": \"depth_mapped\", \"asked\": \"") + depthName(asked) +
                            "\", \"given\": \"" + depthName(d) + "\"}");
            return d;
        }
    usage(std::string("the plugin declares no pixel depth this host can give for ") + depthName(asked));
}

// Components as HostSupport chooses them (setDefaultClipPreferences), then the plugin's
// kOfxImageEffectActionGetClipPreferences, whose answers must be components that clip supports.
void Driver::clipPreferences() {
    Effect &e = *instance_;
    auto supported = [](Clip &c) { return c.props.strings(kOfxImageEffectPropSupportedComponents); };
    auto compsName = [](int n) { return std::string(n == 4 ? kOfxImageComponentRGBA : n == 3 ? kOfxImageComponentRGB : kOfxImageComponentAlpha); };
    auto compsCount = [](const std::string &s) { return s == kOfxImageComponentRGBA ? 4 : s == kOfxImageComponentRGB ? 3 : s == kOfxImageComponentAlpha ? 1 : 0; };
    // A component the clip supports for the one connected to it (HostSupport's findSupportedComp).
    auto supportedFor = [&](Clip &c, const std::string &s) -> std::string {
        const auto sup = supported(c);
        auto has = [&](const std::string &x) { return std::find(sup.begin(), sup.end(), x) != sup.end(); };
        if (has(s)) return s;
        if (s == kOfxImageComponentRGBA) {
            if (has(kOfxImageComponentRGB)) return kOfxImageComponentRGB;
            if (has(kOfxImageComponentAlpha)) return kOfxImageComponentAlpha;
        } else if (s == kOfxImageComponentAlpha) {
            if (has(kOfxImageComponentRGBA)) return kOfxImageComponentRGBA;
            if (has(kOfxImageComponentRGB)) return kOfxImageComponentRGB;
        }
        return sup.size() == 1 ? sup[0] : std::string(kOfxImageComponentNone);
    };
    std::string most = kOfxImageComponentNone;  // the most chromatic connected input
    auto rank = [](const std::string &s) { return s == kOfxImageComponentRGBA ? 3 : s == kOfxImageComponentRGB ? 2 : s == kOfxImageComponentAlpha ? 1 : 0; };
    for (auto &[name, c] : e.clips) {
        if (name == kOfxImageEffectOutputClipName || !c->provider) continue;
        const std::string raw = supportedFor(*c, compsName(c->comps));
        if (rank(raw) > rank(most)) most = raw;
    }
    if (most == kOfxImageComponentNone) most = kOfxImageComponentRGBA;
    PropertySet out;
    out.setDouble(kOfxImageEffectPropFrameRate, {25.0});
    out.setString(kOfxImageEffectPropPreMultiplication, {kOfxImageOpaque});
    out.setString(kOfxImageClipPropFieldOrder, {a_.host.field == "lower" ? kOfxImageFieldLower
                                                : a_.host.field == "upper" ? kOfxImageFieldUpper : kOfxImageFieldNone});
    out.setInt(kOfxImageClipPropContinuousSamples, {0});
    out.setInt(kOfxImageEffectFrameVarying, {0});
    for (auto &[name, c] : e.clips) {
        const bool optionalOrOutput = name == kOfxImageEffectOutputClipName || c->props.getInt(kOfxImageClipPropOptional) != 0;
        const std::string comp = optionalOrOutput ? supportedFor(*c, most) : supportedFor(*c, compsName(c->comps));
        out.setString("OfxImageClipPropComponents_" + name, {comp});
        out.setString("OfxImageClipPropDepth_" + name, {depthName(c->depth)});
        out.setDouble("OfxImageClipPropPAR_" + name, {1.0});
    }
    const OfxStatus st = call(kOfxImageEffectActionGetClipPreferences, &e, nullptr, &out);
    if (st != kOfxStatOK && st != kOfxStatReplyDefault) failures_.push_back("GetClipPreferences failed: " + statusName(st));
    std::string summary;
    for (auto &[name, c] : e.clips) {
        const std::string comp = out.getString("OfxImageClipPropComponents_" + name);
        const auto sup = supported(*c);
        if (std::find(sup.begin(), sup.end(), comp) == sup.end()) {
            failures_.push_back("GetClipPreferences gave clip " + name + " components " + comp + " it does not support");
            continue;
        }
        const std::string depth = out.getString("OfxImageClipPropDepth_" + name);
        if (depth != depthName(c->depth)) failures_.push_back("GetClipPreferences changed the depth of " + name +
                                                              " without declaring multiple clip depths");
        c->comps = compsCount(comp);
        const bool connected = c->props.getInt(kOfxImageClipPropConnected) != 0;
        c->props.setString(kOfxImageEffectPropComponents, {connected ? comp : std::string(kOfxImageComponentNone)});
        summary += std::string(summary.empty() ? "" : ", ") + "\"" + jsonEscape(name) + "\": {\"components\": \"" +
                   jsonEscape(comp) + "\", \"depth\": \"" + depthName(c->depth) + "\"}";
    }
    host_.event("{\"event\": \"clip_preferences\", \"status\": \"" + statusName(st) + "\", \"clips\": {" + summary + "}}");
}

std::string Driver::statusParam() {
    if (!instance_) return "";
    Param *p = instance_->params.find("status");
    return p ? p->s : "";
}

OfxStatus Driver::pressButton(const std::string &name, const char *reason) {
    return instanceChanged(kOfxTypeParameter, name, reason);
}

OfxStatus Driver::instanceChanged(const char *type, const std::string &name, const char *reason) {
    PropertySet in;
    in.setString(kOfxPropType, {type});
    in.setString(kOfxPropName, {name});
    in.setString(kOfxPropChangeReason, {reason});
    in.setDouble(kOfxPropTime, {double(a_.firstFrame)});
    in.setDouble(kOfxImageEffectPropRenderScale, {1.0, 1.0});
    PropertySet begin;
    begin.setString(kOfxPropChangeReason, {reason});
    call(kOfxActionBeginInstanceChanged, instance_.get(), &begin, nullptr);
    OfxStatus st = call(kOfxActionInstanceChanged, instance_.get(), &in, nullptr);
    call(kOfxActionEndInstanceChanged, instance_.get(), &begin, nullptr);
    return st;
}

OfxStatus Driver::setParam(const std::string &name, const std::string &value) {
    Param *p = instance_->params.find(name);
    if (!p) usage("no parameter " + name);
    if (p->type == kOfxParamTypeString) p->s = value;
    else if (p->type == kOfxParamTypeDouble) p->d = std::stod(value);
    else p->i = std::stoi(value);
    return pressButton(name);
}

bool Driver::stepWait(double timeout) {
    const double t0 = now();
    while (now() - t0 < timeout) {
        pressButton("refresh");
        const std::string s = statusParam();
        Param *job = instance_->params.find("jobId");
        if (!job || job->s.empty()) return false;  // nothing was started: nothing to wait for
        if (s.rfind("done", 0) == 0) return true;
        if (s.rfind("failed", 0) == 0 || s.rfind("error", 0) == 0 || s.rfind("cancelled", 0) == 0) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    }
    return false;
}

void Driver::saveOutput(int frame, const ImageLayout &l) {
    if (a_.outDir.empty()) return;
    NpyArray arr;
    arr.dtype = l.depth == Depth::Byte ? "u1" : l.depth == Depth::Short ? "u2" : l.depth == Depth::Half ? "f2" : "f4";
    arr.shape = {static_cast<std::size_t>(l.height), static_cast<std::size_t>(l.width), static_cast<std::size_t>(l.comps)};
    arr.data = l.packed();
    writeNpy((fs::path(a_.outDir) / ("output_" + std::to_string(frame) + ".npy")).string(), arr);
}

// The exact pixels the plugin was served for a clip at a frame (top-down), for the test's comparisons.
void Driver::saveServed(const char *clipName, int frame) {
    if (a_.outDir.empty() || !instance_) return;
    Clip *c = instance_->clip(clipName);
    if (!c || !c->provider) return;
    OfxPropertySetHandle h = nullptr;
    const OfxImageEffectSuiteV1 *fx = effectSuite();
    if (fx->clipGetImage(reinterpret_cast<OfxImageClipHandle>(c), frame, nullptr, &h) != kOfxStatOK) return;
    host_.uncountImageServed(std::string(clipName) == kOfxImageEffectSimpleSourceClipName);
    PropertySet *p = PropertySet::from(h);
    const int w = p->getInt(kOfxImagePropBounds, 2) - p->getInt(kOfxImagePropBounds, 0);
    const int hgt = p->getInt(kOfxImagePropBounds, 3) - p->getInt(kOfxImagePropBounds, 1);
    void *data = p->props[kOfxImagePropData].p[0];
    const std::ptrdiff_t rb = p->getInt(kOfxImagePropRowBytes);
    NpyArray arr;
    arr.dtype = c->depth == Depth::Byte ? "u1" : c->depth == Depth::Short ? "u2" : c->depth == Depth::Half ? "f2" : "f4";
    arr.shape = {static_cast<std::size_t>(hgt), static_cast<std::size_t>(w), static_cast<std::size_t>(c->comps)};
    const std::size_t row = depthBytes(c->depth) * c->comps * w;
    arr.data.resize(row * hgt);
    for (int r = 0; r < hgt; ++r)
        std::memcpy(&arr.data[r * row], static_cast<unsigned char *>(data) + static_cast<std::ptrdiff_t>(hgt - 1 - r) * rb, row);
    fx->clipReleaseImage(h);
    const std::string file = std::string(std::string(clipName) == "Mask" ? "mask_" : "source_") + std::to_string(frame) + ".npy";
    writeNpy((fs::path(a_.outDir) / file).string(), arr);
}

OfxStatus Driver::renderFrame(int frame, bool sequenceOpen) {
    Effect &e = *instance_;
    const FrameProvider *src = source_.get();
    // Renders happen at --scale (a proxy / zoomed-out viewer): images and the window shrink with it.
    host_.setRenderScale(a_.scale);
    struct Reset {
        Host &h;
        ~Reset() {
            h.setRenderScale(1.0);
            h.setRenderField(kOfxImageFieldNone);
        }
    } reset{host_};
    // The frame's own region (a moving plate: --frame-origin, frames of their own sizes); the first frame's
    // outside the clip's range.
    const int index = std::clamp(frame - a_.firstFrame, 0, src->frames() - 1);
    const int fullW = src->frameWidth(index), fullH = src->frameHeight(index);
    int x1, y1, w, h;
    host_.scaledRod(frame, fullW, fullH, &x1, &y1, &w, &h);
    const double sc = a_.scale;
    const bool fielded = a_.host.field != "none";
    const std::string fieldNone = fielded ? kOfxImageFieldBoth : kOfxImageFieldNone;

    // The output's region first, as hosts ask before anything else: the plugin's answer must be the Source's
    // (canonical coordinates, so unscaled) or the default.
    {
        PropertySet rodIn, rodOut;
        rodIn.setDouble(kOfxPropTime, {double(frame)});
        rodIn.setDouble(kOfxImageEffectPropRenderScale, {sc, sc});
        rodOut.setDouble(kOfxImageEffectPropRegionOfDefinition, {0.0, 0.0, 0.0, 0.0});
        const OfxStatus rodSt = call(kOfxImageEffectActionGetRegionOfDefinition, &e, &rodIn, &rodOut);
        int ox = 0, oy = 0;
        host_.originAt(frame, &ox, &oy);
        const double want[4] = {double(ox), double(oy), double(ox + fullW), double(oy + fullH)};
        std::string got;
        bool same = true;
        for (int i = 0; i < 4; ++i) {
            const double v = rodOut.getDouble(kOfxImageEffectPropRegionOfDefinition, i);
            got += (i ? ", " : "") + std::to_string(v);
            same = same && v == want[i];
        }
        if (rodSt == kOfxStatOK && !same)
            failures_.push_back("GetRegionOfDefinition at frame " + std::to_string(frame) + " gave " + got +
                                ", not the Source's region");
        else if (rodSt != kOfxStatOK && rodSt != kOfxStatReplyDefault)
            failures_.push_back("GetRegionOfDefinition failed: " + statusName(rodSt));
        host_.event("{\"event\": \"rod\", \"frame\": " + std::to_string(frame) + ", \"status\": \"" +
                    statusName(rodSt) + "\", \"rod\": [" + got + "]}");
    }

    // Identity first, as hosts ask before rendering. Only kOfxStatOK means "identity".
    PropertySet idIn, idOut;
    idIn.setDouble(kOfxPropTime, {double(frame)});
    idIn.setString(kOfxImageEffectPropFieldToRender, {fieldNone});
    idIn.setInt(kOfxImageEffectPropRenderWindow, {x1, y1, x1 + w, y1 + h});
    idIn.setDouble(kOfxImageEffectPropRenderScale, {sc, sc});
    idOut.setString(kOfxPropName, {""});
    idOut.setDouble(kOfxPropTime, {double(frame)});
    const OfxStatus idSt = call(kOfxImageEffectActionIsIdentity, &e, &idIn, &idOut);
    if (idSt == kOfxStatOK) {
        host_.event("{\"event\": \"identity\", \"frame\": " + std::to_string(frame) + ", \"clip\": \"" +
                    jsonEscape(idOut.getString(kOfxPropName)) + "\"}");
        saveServed(kOfxImageEffectSimpleSourceClipName, frame);
        return kOfxStatOK;
    }
    if (idSt != kOfxStatReplyDefault && idSt != kOfxStatReplyYes && idSt != kOfxStatReplyNo)
        return idSt;  // failed: the host shows the error, nothing is rendered (ReplyYes/No: call() flagged them)

    PropertySet seq;
    seq.setDouble(kOfxImageEffectPropFrameRange, {double(frame), double(frame)});
    seq.setDouble(kOfxImageEffectPropFrameStep, {1.0});
    seq.setInt(kOfxPropIsInteractive, {a_.batch || a_.preRenderStatus ? 0 : 1});
    seq.setDouble(kOfxImageEffectPropRenderScale, {sc, sc});
    if (!a_.preRenderStatus) {
        seq.setInt(kOfxImageEffectPropSequentialRenderStatus, {0});
        seq.setInt(kOfxImageEffectPropInteractiveRenderStatus, {a_.batch || a_.playback ? 0 : 1});
    }
    if (!sequenceOpen) call(kOfxImageEffectActionBeginSequenceRender, &e, &seq, nullptr);

    // Fielded material: both fields in one render, or one render per field (dominant first) when the plugin asks
    // to be called twice (the spec's default); each field render's rows of that field make the frame.
    std::vector<std::string> fields = {fieldNone};
    if (fielded && (a_.splitFields || descriptor_->props.getInt(kOfxImageEffectPluginPropFieldRenderTwiceAlways, 0, 1) != 0))
        fields = a_.host.field == "lower" ? std::vector<std::string>{kOfxImageFieldLower, kOfxImageFieldUpper}
                                          : std::vector<std::string>{kOfxImageFieldUpper, kOfxImageFieldLower};
    Clip *outClip = e.clip(kOfxImageEffectOutputClipName);
    ImageLayout frameLayout;
    bool haveFrame = false, aborted = false;
    OfxStatus st = kOfxStatOK;
    for (const std::string &field : fields) {
        ImageLayout layout;
        bool made = false;
        host_.outputImage = [&](Clip &, double t) -> OfxPropertySetHandle {
            if (static_cast<int>(std::lround(t)) != frame) return nullptr;
            ImageLayout l;
            OfxPropertySetHandle hnd = host_.makeImage(t, w, h, nullptr, outClip->depth, outClip->comps, &l);
            layout = l;
            made = true;
            return hnd;
        };
        host_.setRenderField(field);
        st = renderCall(e, frame, field, x1, y1, w, h, sc);
        host_.outputImage = nullptr;
        if (e.abortFlag.exchange(false)) aborted = true;
        if (st != kOfxStatOK || aborted || !made) break;
        if (!haveFrame) {
            frameLayout = layout;
            haveFrame = true;
        } else {  // the second field: its rows into the first render's image
            const int parity = field == kOfxImageFieldLower ? 0 : 1;
            const std::size_t row = depthBytes(layout.depth) * layout.comps * layout.width;
            for (int yb = 0; yb < layout.height; ++yb)
                if ((((layout.y1 + yb) % 2) + 2) % 2 == parity)
                    std::memcpy(frameLayout.store->data() + frameLayout.dataOffset + yb * frameLayout.rowBytes,
                                layout.store->data() + layout.dataOffset + yb * layout.rowBytes, row);
        }
    }
    if (aborted) host_.event("{\"event\": \"aborted\", \"frame\": " + std::to_string(frame) + "}");
    if (!sequenceOpen) call(kOfxImageEffectActionEndSequenceRender, &e, &seq, nullptr);
    if (haveFrame && st == kOfxStatOK && !aborted) saveOutput(frame, frameLayout);  // an aborted render is discarded
    host_.setRenderField(kOfxImageFieldNone);
    saveServed(kOfxImageEffectSimpleSourceClipName, frame);
    saveServed("Mask", frame);
    return st;
}

OfxStatus Driver::renderCall(Effect &e, int frame, const std::string &field, int x1, int y1, int w, int h, double sc) {
    PropertySet in;
    in.setDouble(kOfxPropTime, {double(frame)});
    in.setString(kOfxImageEffectPropFieldToRender, {field});
    in.setInt(kOfxImageEffectPropRenderWindow, {x1, y1, x1 + w, y1 + h});
    in.setDouble(kOfxImageEffectPropRenderScale, {sc, sc});
    if (!a_.preRenderStatus) {
        in.setInt(kOfxImageEffectPropSequentialRenderStatus, {0});
        in.setInt(kOfxImageEffectPropInteractiveRenderStatus, {a_.batch || a_.playback ? 0 : 1});
    }
    in.setInt("OfxImageEffectPropRenderQualityDraft", {0});
    host_.event("{\"event\": \"render_action\", \"frame\": " + std::to_string(frame) + ", \"field\": \"" +
                jsonEscape(field) + "\"}");

    std::atomic<bool> done{false};
    std::thread aborter;
    if (a_.abortAfter >= 0) {
        e.abortFlag = false;
        aborter = std::thread([&] {
            const double t0 = now();
            while (!done && now() - t0 < a_.abortAfter) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            if (!done) e.abortFlag = true;
        });
    }
    ++host_.rendering;
    OfxStatus st = call(kOfxImageEffectActionRender, &e, &in, nullptr);
    --host_.rendering;
    done = true;
    if (aborter.joinable()) aborter.join();
    return st;
}

std::vector<OfxStatus> Driver::renderParallel(const std::vector<int> &frames, std::vector<double> &seconds) {
    Effect &e = *instance_;
    if (host_.options().field != "none" || a_.abortAfter >= 0) usage("render-parallel: progressive material only");
    host_.setRenderScale(a_.scale);
    // Each frame's own region (a moving plate's differ).
    struct Window {
        int x1, y1, w, h;
    };
    std::map<int, Window> windows;
    for (int f : frames) {
        const int index = std::clamp(f - a_.firstFrame, 0, source_->frames() - 1);
        Window &r = windows[f];
        host_.scaledRod(f, source_->frameWidth(index), source_->frameHeight(index), &r.x1, &r.y1, &r.w, &r.h);
    }
    const double sc = a_.scale;
    PropertySet seq;
    seq.setDouble(kOfxImageEffectPropFrameRange, {double(*std::min_element(frames.begin(), frames.end())),
                                                  double(*std::max_element(frames.begin(), frames.end()))});
    seq.setDouble(kOfxImageEffectPropFrameStep, {1.0});
    seq.setInt(kOfxPropIsInteractive, {a_.batch ? 0 : 1});
    seq.setDouble(kOfxImageEffectPropRenderScale, {sc, sc});
    seq.setInt(kOfxImageEffectPropSequentialRenderStatus, {0});
    seq.setInt(kOfxImageEffectPropInteractiveRenderStatus, {a_.batch || a_.playback ? 0 : 1});
    call(kOfxImageEffectActionBeginSequenceRender, &e, &seq, nullptr);

    // Each render's output image is handed out only once every render has asked for its own (or after 10 s):
    // all of them are then inside Render at once, holding their images.
    Clip *outClip = e.clip(kOfxImageEffectOutputClipName);
    std::mutex m;
    std::condition_variable cv;
    std::map<int, ImageLayout> layouts;
    std::size_t asked = 0;
    int inside = 0, peak = 0;
    host_.outputImage = [&](Clip &, double t) -> OfxPropertySetHandle {
        const int frame = static_cast<int>(std::lround(t));
        std::unique_lock<std::mutex> l(m);
        if (std::find(frames.begin(), frames.end(), frame) == frames.end() || layouts.count(frame)) return nullptr;
        ImageLayout layout;
        const Window &r = windows[frame];
        OfxPropertySetHandle hnd = host_.makeImage(t, r.w, r.h, nullptr, outClip->depth, outClip->comps, &layout);
        layouts[frame] = layout;
        ++asked;
        peak = std::max(peak, ++inside);
        cv.notify_all();
        cv.wait_for(l, std::chrono::seconds(10), [&] { return asked == frames.size(); });
        return hnd;
    };
    std::vector<OfxStatus> sts(frames.size(), kOfxStatFailed);
    seconds.assign(frames.size(), 0.0);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < frames.size(); ++i)
        threads.emplace_back([&, i] {
            const double t0 = now();
            const Window &r = windows.at(frames[i]);
            sts[i] = renderCall(e, frames[i], kOfxImageFieldNone, r.x1, r.y1, r.w, r.h, sc);
            seconds[i] = now() - t0;
            std::lock_guard<std::mutex> l(m);
            if (layouts.count(frames[i])) --inside;
        });
    for (auto &t : threads) t.join();
    host_.outputImage = nullptr;
    call(kOfxImageEffectActionEndSequenceRender, &e, &seq, nullptr);
    host_.setRenderScale(1.0);
    host_.event("{\"event\": \"parallel\", \"renders\": " + std::to_string(frames.size()) +
                ", \"peak_inside\": " + std::to_string(peak) + "}");
    for (std::size_t i = 0; i < frames.size(); ++i) {
        if (sts[i] == kOfxStatOK && layouts.count(frames[i])) saveOutput(frames[i], layouts[frames[i]]);
        saveServed(kOfxImageEffectSimpleSourceClipName, frames[i]);
        saveServed("Mask", frames[i]);
    }
    return sts;
}

void Driver::record(const std::string &step, OfxStatus st, double elapsed, int messagesBefore, const std::string &extra) {
    const bool failed = st != kOfxStatOK && st != kOfxStatReplyDefault;
    bool said = host_.messagesPosted() > messagesBefore;
    std::string base = step.substr(0, step.find(':'));
    if (base == "render-all") base = "render";
    // A host without persistent messages: a render failing again as it failed last time has said so already
    // (the plug-in posts it once until it clears); a render that succeeds ends that.
    if (!a_.host.messageV2 && instance_ && base == "render") {
        std::lock_guard<std::mutex> l(instance_->msgMutex);
        if (!said && failed) said = !instance_->lastPlainError.empty();
        if (!failed) instance_->lastPlainError.clear();
    }
    const bool expectFail = a_.expectFailure.count(base) > 0 || a_.expectFailure.count(step) > 0;  // "render:3"
    std::string verdict = "ok";
    if (expectFail && !failed) verdict = "expected a failure status";
    else if (expectFail && !said) verdict = "failed without a message";
    else if (!expectFail && failed) verdict = "unexpected failure";
    if (verdict != "ok") failures_.push_back(step + ": " + verdict);
    std::string persistent, ptype;
    if (instance_) {
        std::lock_guard<std::mutex> l(instance_->msgMutex);
        persistent = instance_->persistent;
        ptype = instance_->persistentType;
    }
    std::string job;
    if (instance_)
        if (Param *p = instance_->params.find("jobId")) job = p->s;
    char el[32], host[32];
    std::snprintf(el, sizeof el, "%.3f", elapsed);
    std::snprintf(host, sizeof host, "%.3f", host_.imageSeconds() - imageSecondsBefore_);
    imageSecondsBefore_ = host_.imageSeconds();
    const long long images = host_.imagesServed() - imagesBefore_;  // input images the plugin fetched in the step
    imagesBefore_ = host_.imagesServed();
    const long long sourceImages = host_.sourceImagesServed() - sourceImagesBefore_;  // of them, the Source's
    sourceImagesBefore_ = host_.sourceImagesServed();
    const long long rodQueries = host_.rodQueries() - rodQueriesBefore_;  // clipGetRegionOfDefinition calls
    rodQueriesBefore_ = host_.rodQueries();
    host_.event("{\"event\": \"step\", \"step\": \"" + jsonEscape(step) + "\", \"status\": \"" + statusName(st) +
                "\", \"elapsed_s\": " + el + ", \"messages\": " + std::to_string(host_.messagesPosted() - messagesBefore) +
                ", \"persistent\": \"" + jsonEscape(persistent) + "\", \"persistent_type\": \"" + jsonEscape(ptype) +
                "\", \"status_param\": \"" + jsonEscape(statusParam()) + "\", \"job\": \"" + jsonEscape(job) +
                "\", \"host_image_s\": " + host + ", \"images\": " + std::to_string(images) +
                ", \"source_images\": " + std::to_string(sourceImages) + ", \"rod_queries\": " +
                std::to_string(rodQueries) +
                ", \"verdict\": \"" + jsonEscape(verdict) + "\"" + extra + "}");
}

int Driver::run() {
    if (!a_.outDir.empty()) fs::create_directories(a_.outDir);
    if (!a_.sourceDir.empty()) {
        source_ = npyDirectory(a_.sourceDir);
        if (!a_.maskDir.empty()) mask_ = npyDirectory(a_.maskDir);
    } else {
        source_ = syntheticClip(a_.synthW, a_.synthH, a_.synthT, false);
        mask_ = syntheticClip(a_.synthW, a_.synthH, a_.synthT, true);
    }
    if (mask_ && mask_->frames() != source_->frames()) usage("the mask frames do not match the source frames");
    for (int i = 0; mask_ && i < source_->frames(); ++i)
        if (mask_->frameWidth(i) != source_->frameWidth(i) || mask_->frameHeight(i) != source_->frameHeight(i))
            usage("the mask frames do not match the source frames");
    if (!a_.referenceDir.empty()) reference_ = npyDirectory(a_.referenceDir);
    if (a_.exampleClips && !a_.sourceDir.empty()) {
        reference_ = npyDirectory(a_.sourceDir);
        a_.referenceFirst = a_.firstFrame;
    }
    host_.identityOutsideRender = [this](Effect &e, OfxTime t) {
        PropertySet in, out;
        in.setDouble(kOfxPropTime, {t});
        in.setString(kOfxImageEffectPropFieldToRender, {kOfxImageFieldNone});
        in.setInt(kOfxImageEffectPropRenderWindow, {0, 0, 1, 1});
        in.setDouble(kOfxImageEffectPropRenderScale, {1.0, 1.0});
        out.setString(kOfxPropName, {""});
        out.setDouble(kOfxPropTime, {t});
        return plugin_->mainEntry(kOfxImageEffectActionIsIdentity, &e, in.handle(), out.handle()) == kOfxStatOK;
    };
    host_.duringProgress = [this] {  // the user presses Train again while Natron runs events in a progress update
        if (!instance_ || pressedDuringProgress_ || nested_ > 0) return;
        pressedDuringProgress_ = true;
        ++nested_;
        const OfxStatus st = pressButton("train");
        --nested_;
        host_.event(std::string("{\"event\": \"pressed_during_progress\", \"status\": \"") + statusName(st) + "\"}");
    };
    host_.paramChangedByPlugin = [this](Effect &e, Param &p) {
        if (!e.isInstance || nested_ > 3) return;
        ++nested_;
        PropertySet in;
        in.setString(kOfxPropType, {kOfxTypeParameter});
        in.setString(kOfxPropName, {p.name});
        in.setString(kOfxPropChangeReason, {kOfxChangePluginEdited});
        in.setDouble(kOfxPropTime, {double(a_.firstFrame)});
        in.setDouble(kOfxImageEffectPropRenderScale, {1.0, 1.0});
        plugin_->mainEntry(kOfxActionInstanceChanged, &e, in.handle(), nullptr);
        --nested_;
    };
    startWatchdog(a_.watchdog);
    loadBundle();

    for (const std::string &step : a_.steps) {
        const double t0 = now();
        const int m0 = host_.messagesPosted();
        if (step == "describe") {
            describe();
        } else if (step == "create") {
            create();
        } else if (!instance_ && step != "unload" && step.rfind("sleep", 0) != 0) {
            usage("step " + step + " needs create first");
        } else if (step == "train" || step == "cancel" || step == "refresh") {
            const std::string button = step == "cancel" ? "cancelTraining" : step;
            const OfxStatus st = pressButton(button);
            record(step, st, now() - t0, m0);
        } else if (step.rfind("wait", 0) == 0) {
            const double limit = step.size() > 5 ? std::stod(step.substr(5)) : a_.waitTimeout;
            const bool ok = stepWait(limit);
            record(step, ok ? kOfxStatOK : kOfxStatFailed, now() - t0, m0);
        } else if (step.rfind("set:", 0) == 0) {
            const auto eq = step.find('=');
            const OfxStatus st = setParam(step.substr(4, eq - 4), step.substr(eq + 1));
            record(step, st, now() - t0, m0);
        } else if (step.rfind("sleep:", 0) == 0) {
            std::this_thread::sleep_for(std::chrono::duration<double>(std::stod(step.substr(6))));
        } else if (step == "render-all" || step.rfind("render:", 0) == 0) {
            std::vector<int> frames;
            if (step == "render-all")
                for (int f = a_.firstFrame; f < a_.firstFrame + source_->frames(); ++f) frames.push_back(f);
            else
                frames.push_back(std::stoi(step.substr(7)));
            for (int f : frames) {
                if (f == a_.killBeforeFrame && a_.killPid > 0) {
                    ::kill(a_.killPid, SIGKILL);
                    std::this_thread::sleep_for(std::chrono::milliseconds(300));
                    host_.event("{\"event\": \"killed\", \"pid\": " + std::to_string(a_.killPid) + ", \"before_frame\": " +
                                std::to_string(f) + "}");
                }
                const double f0 = now();
                const int fm0 = host_.messagesPosted();
                OfxStatus st = renderFrame(f, false);
                record("render:" + std::to_string(f), st, now() - f0, fm0, ", \"frame\": " + std::to_string(f));
            }
        } else if (step.rfind("render-sequence:", 0) == 0) {
            // One sequence around a range, each frame rendered in turn inside it (as a host renders a range).
            const auto d = split(step.substr(16), '-');
            if (d.size() != 2) usage("render-sequence:A-B");
            const int a = std::stoi(d[0]), b = std::stoi(d[1]);
            PropertySet seq;
            seq.setDouble(kOfxImageEffectPropFrameRange, {double(a), double(b)});
            seq.setDouble(kOfxImageEffectPropFrameStep, {1.0});
            seq.setInt(kOfxPropIsInteractive, {a_.batch || a_.preRenderStatus ? 0 : 1});
            seq.setDouble(kOfxImageEffectPropRenderScale, {a_.scale, a_.scale});
            if (!a_.preRenderStatus) {
                seq.setInt(kOfxImageEffectPropSequentialRenderStatus, {0});
                seq.setInt(kOfxImageEffectPropInteractiveRenderStatus, {a_.batch || a_.playback ? 0 : 1});
            }
            call(kOfxImageEffectActionBeginSequenceRender, instance_.get(), &seq, nullptr);
            for (int f = a; f <= b; ++f) {
                const double f0 = now();
                const int fm0 = host_.messagesPosted();
                const OfxStatus st = renderFrame(f, true);
                record("render:" + std::to_string(f), st, now() - f0, fm0, ", \"frame\": " + std::to_string(f));
            }
            call(kOfxImageEffectActionEndSequenceRender, instance_.get(), &seq, nullptr);
        } else if (step.rfind("reference:", 0) == 0) {
            const OfxStatus st = rewireReference(step.substr(10));
            record(step, st, now() - t0, m0);
        } else if (step == "reopen") {
            reopenParams_ = persistentValues();
            const OfxStatus st = call(kOfxActionDestroyInstance, instance_.get(), nullptr, nullptr);
            instance_.reset();
            create();  // records its own step
            reopenParams_.clear();
            record(step, st, now() - t0, m0);
        } else if (step.rfind("out:", 0) == 0) {
            a_.outDir = step.substr(4);
            fs::create_directories(a_.outDir);
        } else if (step.rfind("render-parallel:", 0) == 0) {
            std::vector<int> frames;
            for (const std::string &f : split(step.substr(16), '+')) frames.push_back(std::stoi(f));
            std::vector<double> seconds;
            const int m0p = host_.messagesPosted();
            const std::vector<OfxStatus> sts = renderParallel(frames, seconds);
            for (std::size_t i = 0; i < frames.size(); ++i)
                record("render:" + std::to_string(frames[i]), sts[i], seconds[i], m0p,
                       ", \"frame\": " + std::to_string(frames[i]) + ", \"parallel\": true");
        } else if (step == "destroy") {
            OfxStatus st = call(kOfxActionDestroyInstance, instance_.get(), nullptr, nullptr);
            record(step, st, now() - t0, m0);
            instance_.reset();
        } else if (step == "unload") {
            OfxStatus st = loaded_ ? call(kOfxActionUnload, nullptr, nullptr, nullptr) : kOfxStatOK;
            loaded_ = false;
            record(step, st, now() - t0, m0);
        } else {
            usage("unknown step " + step);
        }
    }
    const int leaked = host_.outstandingImages();
    if (leaked) failures_.push_back(std::to_string(leaked) + " images never released");
    const auto libraries = mappedLibraries();
    const std::string bundleLib = (fs::weakly_canonical(a_.bundle) / "Contents" / "Linux-x86-64" / "lib/").string();
    host_.event("{\"event\": \"summary\", \"ok\": " + std::string(failures_.empty() ? "true" : "false") +
                ", \"leaked_images\": " + std::to_string(leaked) + ", \"progress_updates\": " +
                std::to_string(host_.progressUpdates()) + ", \"libzmq\": " + jsonList(containing(libraries, "libzmq")) +
                ", \"bundle_libraries\": " + jsonList(containing(libraries, bundleLib)) +
                ", \"libraries\": " + jsonList(libraries) + ", \"failures\": " + jsonList(failures_) + "}");
    return failures_.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char **argv) {
    try {
        Driver d(parse(argc, argv));
        return d.run();
    } catch (const std::exception &e) {
        std::printf("{\"event\": \"harness_error\", \"error\": \"%s\"}\n", jsonEscape(e.what()).c_str());
        return 5;
    }
}
