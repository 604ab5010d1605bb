// The vinpaint OFX image effect: what the host sees (contexts, clips, parameters) and the per-instance state.
// Actions throw; ofx_main.cpp is the one place that turns exceptions into OfxStatus values.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "client.h"
#include "messages.h"
#include "ofx_host.h"
#include "pixels.h"

namespace vinpaint {

namespace pname {
constexpr const char *kDaemon = "daemonAddress";
constexpr const char *kTrain = "train";
constexpr const char *kCancel = "cancelTraining";
constexpr const char *kRefresh = "refresh";
constexpr const char *kPreset = "preset";
constexpr const char *kMaskChannel = "maskChannel";
constexpr const char *kInvertMask = "invertMask";
constexpr const char *kDilation = "maskDilation";
constexpr const char *kFeather = "maskFeather";
constexpr const char *kEngineSettings = "engineSettings";
constexpr const char *kOutput = "output";
constexpr const char *kWaitInBatch = "waitInBatch";
constexpr const char *kStatus = "status";
constexpr const char *kJobId = "jobId";
constexpr const char *kJobFirstFrame = "jobFirstFrame";
constexpr const char *kJobReferences = "jobReferences";
constexpr const char *kJobCanvas = "jobCanvas";
constexpr const char *kRefreshSerial = "refreshSerial";
constexpr const char *kPage = "Controls";
}  // namespace pname

constexpr const char *kPluginIdentifier = "org.vinpaint.Inpaint";
constexpr const char *kMaskClipName = "Mask";
// Optional (General context): clean frames painted by the artist. Every frame of the Source range at which this
// clip has an image (inside its frame range) is sent to the daemon as a reference frame for that frame.
constexpr const char *kReferenceClipName = "Reference";
constexpr unsigned kVersionMajor = 0, kVersionMinor = 1;

// Choice indices; the option order is part of saved projects, so new options only ever go at the end.
enum OutputChoice { kOutputInpainted = 0, kOutputSource = 1, kOutputOverlay = 2, kOutputMatte = 3 };
enum MaskChannelChoice { kMaskAlpha = 0, kMaskLuminance = 1 };
extern const char *const kPresetNames[3];  // "fast", "paper", "tiny" (index = choice value)

// What a Train read of the clip, enough to tell later, one frame at a time, whether that frame and its mask are
// still what it read: its geometry, how it packed each frame, and every frame's and mask's digest.
struct TrainedClip {
    int first = 0;
    proto::Geometry geometry;
    px::Rect frameRect, canvas;
    bool moving = false, maskFromSource = false, invert = false, marginIsHole = false;
    px::MaskChannel channel = px::MaskChannel::Alpha;
    std::vector<Sha256::Digest> frameDigests, maskDigests;
    proto::ReferenceDigests references;  // (frame index, digest of the painting as sent), ascending
};

// The reference frames a job was trained with, as Train sent them: known for the job Train saved (the hidden
// parameter jobReferences, saved with the project) and for one a final render trained; not known for a job saved
// before that parameter existed (the live Reference input then decides, as it did).
struct JobReferences {
    bool known = false;
    proto::ReferenceDigests references;
    const Sha256::Digest *at(int index) const {
        for (const auto &r : references)
            if (r.first == index) return &r.second;
        return nullptr;
    }
};

struct Instance {
    OfxImageEffectHandle handle = nullptr;
    bool filterContext = false;
    ofx::Clip source, mask, output, reference;
    ofx::Param daemon, preset, maskChannel, invertMask, dilation, feather, engineSettings, outputChoice, waitInBatch,
        status, jobId, jobFirstFrame, refreshSerial, jobReferences, jobCanvas;

    // Geometry of the job last asked about (job.status), so renders need one round trip per new frame.
    std::mutex mutex;
    std::string geometryJob;
    proto::Geometry geometry;
    // The canvas (pixels at render scale 1) the job canvasJob was trained on, when the Source's region of
    // definition moved over its frames (a stabilised plate): every frame lies in it at its own region's place.
    // Kept by Train (and saved with the project: jobCanvas), or, for a job saved before that record existed,
    // worked out again once by a render from the clip's regions: canvasError when that failed (said again by
    // every render, the host not asked again), canvasUnmoving when those regions do not move.
    std::string canvasJob;
    px::Rect canvas;
    bool canvasUnmoving = false;
    std::string canvasError;
    // "error: ..." when the last Train press failed (empty after a good one): Refresh shows it, not the old job.
    std::string trainError;
    // kOfxPropIsInteractive of the last BeginSequenceRender (OFX 1.0; -1: none seen): whether a render is a final
    // one where the host gives no kOfxImageEffectPropInteractiveRenderStatus (OFX 1.4) with the render.
    std::atomic<int> sequenceInteractive{-1};
    // A Train press under way. Its progress bar lets a host run other actions meanwhile (Natron processes events
    // at every update): a second press is then not a second Train, and isIdentity does not answer "Source" (Natron
    // asks it outside a render and then gives no image of any other input: Train found no Mask).
    std::atomic<bool> training{false};
    // A final render of a node never trained trains it first, once, whichever render thread comes first: the
    // others wait on renderTrainMutex. The job is kept here (under `mutex`), not
    // in jobId: parameters may not be set during a render. Cleared by a settings edit and by each final sequence
    // of several frames. A final sequence of one frame (a host that wraps every frame of a range in its own) keeps
    // it while its frames are new to it: the first frame rendered again since it trained (the user rendering again,
    // after a roto fix, say) trains it again, and each frame is checked against what it read before it is used
    // (renderVerify): its Source and mask, and its Reference painting.
    std::timed_mutex renderTrainMutex;
    std::string renderJob;
    int renderJobFirst = 0;
    std::shared_ptr<const TrainedClip> renderClip;  // what trained renderJob read
    std::set<int> renderSeen;    // frames of one-frame final sequences since renderJob was kept
    std::set<int> renderVerify;  // of them, those to check against renderClip before their render uses renderJob
};

Instance &instanceOf(OfxImageEffectHandle handle);

// Actions.
void describe(OfxImageEffectHandle effect);
void describeInContext(OfxImageEffectHandle effect, ofx::PropSet inArgs);
void createInstance(OfxImageEffectHandle effect);
void destroyInstance(OfxImageEffectHandle effect) noexcept;
OfxStatus instanceChanged(OfxImageEffectHandle effect, ofx::PropSet inArgs);
OfxStatus isIdentity(OfxImageEffectHandle effect, ofx::PropSet inArgs, ofx::PropSet outArgs);
OfxStatus clipPreferences(OfxImageEffectHandle effect, ofx::PropSet outArgs);
OfxStatus regionOfDefinition(OfxImageEffectHandle effect, ofx::PropSet inArgs, ofx::PropSet outArgs);
OfxStatus render(OfxImageEffectHandle effect, ofx::PropSet inArgs);
OfxStatus beginSequenceRender(OfxImageEffectHandle effect, ofx::PropSet inArgs);
OfxStatus endSequenceRender(OfxImageEffectHandle effect);

// Train (train.cpp): gathers every frame and mask of the Source range with the host's progress bar, uploads
// them, starts the job and returns; training then runs in the daemon. Returns the status for the host.
OfxStatus train(Instance &inst);
// The same from a final render of a node never trained (no parameter set, no progress bar, `aborted`
// polled): returns the job and what it read. Throws DaemonError, OfxError, or Cancelled when the host aborts.
std::pair<std::string, std::shared_ptr<const TrainedClip>> trainFromRender(Instance &inst,
                                                                          std::function<bool()> aborted);
// Whether Source frame `index` of a clip a render trained, its mask and its Reference painting are still what
// that Train read (the Source's frame range too): one frame read and hashed, as Train packs it. Never throws.
bool trainedFrameUnchanged(Instance &inst, const TrainedClip &clip, int index) noexcept;
// The painting the Reference input has at Source frame t, packed as Train packs it into a plane of the job's
// geometry g covering `packed` (the frame's region, or a moving plate's canvas), the frame's own region being
// srcRod: its digest. Nothing when the input has no image there; an empty digest when it cannot be the painting
// Train sent (another size or depth). Throws OfxError when the host fails.
std::optional<Sha256::Digest> referenceDigestAt(Instance &inst, double t, const px::Rect &srcRod,
                                                const px::Rect &packed, const proto::Geometry &g);
// The node's job and the Source frame that is its frame 0: the one Train saved (jobId), else one a final render
// trained. An empty job: never trained.
std::pair<std::string, int> nodeJob(Instance &inst, double t);
void forgetRenderJob(Instance &inst);
void forgetRenderJobLocked(Instance &inst);  // the same, with inst.mutex held
// The reference frames `job` was trained with, where the node knows them (above).
JobReferences jobReferences(Instance &inst, const std::string &job);
// The jobReferences parameter's value for a job and the references Train sent: "JOB" then " INDEX:SHA256" each.
std::string referencesRecord(const std::string &job, const proto::ReferenceDigests &references);
// The canvas a job was trained on, where the node knows it: the jobCanvas parameter's record ("JOB" for a plate
// that does not move, "JOB X1 Y1 X2 Y2" for a moving one's canvas, pixels at scale 1) for the job Train saved,
// the clip a final render trained for that one. Never asks the host or the daemon.
struct JobCanvas {
    bool known = false, moving = false;
    px::Rect canvas;
};
JobCanvas jobCanvas(Instance &inst, const std::string &job);
std::string canvasRecord(const std::string &job, bool moving, const px::Rect &canvas);

// Helpers shared by the actions.
std::string daemonAddress(const Instance &inst);
// Whether the Reference clip (General context, connected) spans time t: its frame range says which frames were
// painted, so Train sends those and a proxy render of one shows the painting, not the matte's split.
bool referencePaintedAt(Instance &inst, double t);
// Whether the Reference image `ref` at t is the Source's own image there, pixel for pixel over the Source's region:
// no painting (a host that says every clip is connected and serves the Source to any of them, as HostSupport's
// example host does, made every frame "painted" with the plate, its object kept in the hole; 2026-12-03).
bool referenceIsTheSource(Instance &inst, double t, const ofx::Image &ref);
std::string clientName();
bool hostIsNatron();      // kOfxPropName fr.inria.Natron*
bool hostIsBackground();  // kOfxImageEffectHostPropIsBackground: a render process with no GUI (a farm, a script)
bool hostAllowsTemporalAccess();  // kOfxImageEffectPropTemporalClipAccess of the host (absent: yes)
void setStatusLine(Instance &inst, const std::string &text) noexcept;
// "error: <what>" for the status line (without the "vinpaint: " prefix messages carry).
std::string errorLine(const std::string &what);
// Runs fn(rowBegin, rowEnd) over [0, rows) on the host's threads when it offers them; rethrows the first error.
void forRowBands(int rows, const std::function<void(int, int)> &fn);

// The Source's region of definition at time t in pixels at render scale 1 (the clip's canonical region divided
// by its pixel aspect ratio, rounded outwards). Throws OfxError when the host cannot say, or when it is not finite.
px::Rect sourcePixelRod(Instance &inst, double t);
// A clip's canonical region in pixels at render scale 1; nullopt when it is not finite or beyond +-1e8 pixels.
// Rounded outwards past a rounding error's worth; `enclosing`: plainly outwards (floor/ceil, as Natron rounds an
// image's region), so that it holds the image a host makes for that region whichever way it rounds.
std::optional<px::Rect> pixelRect(const OfxRectD &canonical, double pixelAspect, bool enclosing = false);
double sourcePixelAspect(Instance &inst);  // the Source clip's pixel aspect ratio (1 when the host gives none)
// A moving plate (a stabilised one) trains on one canvas: the union of the Source's regions of definition over
// its frames, each frame packed at its own region's place. At most this many times the largest frame's area.
constexpr double kMaxCanvasGrowth = 4.0;

// An OFX image's pixels as a px::View; throws OfxError for depths/components the plugin does not handle.
px::View viewOf(const ofx::Image &img);
px::Rect rectProp(const ofx::PropSet &p, const char *name);
// An image's region of definition in pixels; its bounds where the host gives none (the property came with OFX
// 1.4: before, 2026-12-03, every Train and render failed in a host older than that).
px::Rect imageRod(const ofx::Image &img);

}  // namespace vinpaint
