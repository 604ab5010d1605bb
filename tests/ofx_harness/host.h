// A small OpenFX host of our own, enough to load a real bundle with dlopen and drive an image effect the way
// Natron and Nuke do: property sets, the image effect, parameter, memory, multithread, message (v1 and v2) and
// progress (v1 and v2) suites, clips served from .npy frames or procedural ones, and output images captured for
// the test to compare. Everything the plugin is told comes through these suites; nothing is mocked on its side.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "props.h"
#include "ofx_official_names.h"  // the ABI types from vinpaint/ofx_abi.h, the official constants

namespace harness {

// ---- property sets ------------------------------------------------------------------------------------------
struct Prop {
    enum Type { Int, Double, String, Pointer } type = Int;
    int dimension = 0;  // 0: any number of values (props.h)
    std::vector<int> i;
    std::vector<double> d;
    std::vector<std::string> s;
    std::vector<void *> p;
    int size() const;
};

struct PropertySet {
    std::map<std::string, Prop> props;
    mutable std::recursive_mutex mutex;
    PropertySet() = default;
    PropertySet(const PropertySet &o) : props(o.props) {}
    PropertySet &operator=(const PropertySet &o) {
        if (this != &o) props = o.props;
        return *this;
    }
    OfxPropertySetHandle handle() { return reinterpret_cast<OfxPropertySetHandle>(this); }
    static PropertySet *from(OfxPropertySetHandle h) { return reinterpret_cast<PropertySet *>(h); }
    // Host-side helpers. Every name must be in the harness's own property table (props.h): a name it does not
    // know is a bug in the harness (std::logic_error), never something to hand a plugin.
    // declare: the property with its empty/zero default, as a host makes it before the plugin sees the set.
    void declare(const std::string &n);
    void setInt(const std::string &n, std::vector<int> v);
    void setDouble(const std::string &n, std::vector<double> v);
    void setString(const std::string &n, std::vector<std::string> v);
    void setPointer(const std::string &n, std::vector<void *> v);
    int getInt(const std::string &n, int idx = 0, int fallback = 0) const;
    double getDouble(const std::string &n, int idx = 0, double fallback = 0) const;
    std::string getString(const std::string &n, int idx = 0, const std::string &fallback = "") const;
    std::vector<std::string> strings(const std::string &n) const;
    bool has(const std::string &n) const;
};

// ---- clips' pixels ----------------------------------------------------------------------------------------------
enum class Depth { Byte, Short, Half, Float };
const char *depthName(Depth d);
std::size_t depthBytes(Depth d);

// One frame as the harness holds it: top-down, tightly packed, normalised floats (0..1) per channel.
struct FloatFrame {
    int width = 0, height = 0, comps = 0;
    std::vector<float> v;
};

// Where a clip's frames come from.
class FrameProvider {
public:
    virtual ~FrameProvider() = default;
    virtual int width() const = 0;
    virtual int height() const = 0;
    virtual int frames() const = 0;
    // Frame i (0-based) as normalised floats with `comps` channels (1 = the mask).
    virtual FloatFrame frame(int i, int comps) const = 0;
    // Frame i's own size (a plate whose region changes size: .npy frames of different shapes).
    virtual int frameWidth(int) const { return width(); }
    virtual int frameHeight(int) const { return height(); }
};

std::unique_ptr<FrameProvider> npyDirectory(const std::string &dir);                 // 00000.npy ...
std::unique_ptr<FrameProvider> syntheticClip(int w, int h, int t, bool mask);       // procedural

// ---- the effect model -------------------------------------------------------------------------------------------
struct Effect;

struct Param {
    std::string name, type;
    PropertySet props;
    int i = 0;
    double d = 0;
    std::string s;
    Effect *owner = nullptr;
};

struct ParamSet {
    PropertySet props;
    std::vector<std::unique_ptr<Param>> params;  // definition order
    Param *find(const std::string &name);
};

struct Clip {
    std::string name;
    PropertySet props;
    Effect *owner = nullptr;
    const FrameProvider *provider = nullptr;  // null: unconnected
    Depth depth = Depth::Byte;
    int comps = 4;
    bool maskInAlpha = false;                 // Source RGBA whose alpha is the mask (Filter context)
    const FrameProvider *alphaFrom = nullptr;
};

struct Image {
    PropertySet props;
    std::shared_ptr<std::vector<unsigned char>> store;
};

// Where an image's pixels lie, for the driver that reads an output image back.
struct ImageLayout {
    std::shared_ptr<std::vector<unsigned char>> store;
    std::ptrdiff_t dataOffset = 0, rowBytes = 0;
    int x1 = 0, y1 = 0, width = 0, height = 0, comps = 4;
    Depth depth = Depth::Byte;
    // Top-down, tightly packed bytes of the image (what .npy wants).
    std::vector<unsigned char> packed() const;
};

struct Effect {
    bool isInstance = false;
    std::string context;
    PropertySet props;
    ParamSet params;
    std::map<std::string, std::unique_ptr<Clip>> clips;
    std::atomic<bool> abortFlag{false};
    std::mutex msgMutex;
    std::string persistent, persistentType;
    std::string lastPlainError;  // the last error posted with the v1-style message() on this node
    Clip *clip(const std::string &name);
};

struct Options {
    std::string field = "none";     // fielded material: "lower" or "upper" (dominance); "none" = progressive
    bool messageV2 = true;
    bool progressSuite = true;
    bool multiThread = true;
    bool paramSuite = true;        // false: a host without the parameter suite (the plugin must refuse to load)
    int cancelProgressAfter = -1;  // progressUpdate answers "cancel" after this many updates
    int rowPadding = 24;           // bytes added to each row of every image handed out
    bool negativeRowBytes = false; // rows stored top row first, rowBytes < 0
    int originX = 0, originY = 0;  // the clips' region of definition starts here
    // Frames whose region starts elsewhere (--frame-origin F=X,Y: a moving plate, stabilised with a Transform):
    // frame number -> origin; every clip's image at that frame, and its region of definition, start there.
    std::map<int, std::pair<int, int>> frameOrigins;
    // --frac-edge F: frame F's canonical region ends 1e-7 past the pixel edge before its image's right edge, as
    // a host rounding an image's region plainly outwards (Natron: floor/ceil) may give it (-1: none).
    int fracEdgeFrame = -1;
    bool noRodAtScale = false;  // --no-rod-at-scale: clipGetRegionOfDefinition fails in a proxy render (cannot say)
    bool background = false;       // kOfxImageEffectHostPropIsBackground
    bool temporalAccess = true;    // kOfxImageEffectPropTemporalClipAccess (--no-temporal-access: 0)
    std::string name = "org.vinpaint.harness";  // kOfxPropName (--host-name: as another host names itself)
    std::set<int> maskMissing;        // --mask-missing F,G: no Mask image at those frames (Natron: a Roto with no
                                      // shape active there gives none)
    bool natronHabits = false;        // --natron-habits: outside a render, an input other than Source gives no
                                      // image where isIdentity says Source; a progress update runs a queued press
    bool noImageRod = false;          // images without kOfxImagePropRegionOfDefinition (OFX 1.4's): bounds only
    bool exampleBooleans = false;     // every Boolean read answers true, every Boolean write kOfxStatErrMissingHostFeature
    std::string unreadableParamType;  // comma-separated types whose paramGetValue and paramSetValue answer
                                      // kOfxStatErrMissingHostFeature (as HostSupport's example host does for
                                      // Choice and Integer)
};

// The host: owns the suites and every object handed to the plugin.
class Host {
public:
    bool exampleBooleans() const { return opt_.exampleBooleans; }
    bool unreadable(const std::string &type) const {
        const std::string list = "," + opt_.unreadableParamType + ",";
        return !type.empty() && list.find("," + type + ",") != std::string::npos;
    }
    explicit Host(const Options &opt);
    OfxHost *ofxHost() { return &host_; }
    const Options &options() const { return opt_; }

    // Log events (messages, progress) as JSON lines on stdout.
    void event(const std::string &json);
    // A property call the host refused (unknown name, wrong type or index): logged, counted.
    void refused(const char *call, const char *name, OfxStatus status, const std::string &why);
    int refusals() const { return refusals_; }
    // The field of the render in progress (images are extracted for it): "OfxFieldNone", "OfxFieldBoth",
    // "OfxFieldLower" or "OfxFieldUpper".
    void setRenderField(const std::string &f) {
        std::lock_guard<std::mutex> l(fieldMutex_);
        field_ = f;
    }
    std::string renderField() const {
        std::lock_guard<std::mutex> l(fieldMutex_);
        return field_;
    }
    int messagesPosted() const { return messages_; }
    int outstandingImages() const;
    int progressUpdates() const { return progressUpdates_; }
    // Seconds spent making images for clipGetImage (the host's share of a plugin action's time).
    double imageSeconds() const { return imageMicros_.load() / 1e6; }
    void addImageMicros(long long us) { imageMicros_ += us; }
    long long imagesServed() const { return imagesServed_.load(); }
    // clipGetRegionOfDefinition calls the plugin made (a render asking for every frame's region shows here).
    long long rodQueries() const { return rodQueries_.load(); }
    void addRodQuery() { ++rodQueries_; }
    // Source images alone (a render's own frame, or Train's and a render-trained node's reads of the clip).
    long long sourceImagesServed() const { return sourceImagesServed_.load(); }
    void addImageServed(bool source) {
        ++imagesServed_;
        if (source) ++sourceImagesServed_;
    }
    // The harness's own fetch (saving what it served for the test) is not the plugin's.
    void uncountImageServed(bool source) {
        --imagesServed_;
        if (source) --sourceImagesServed_;
    }

    // Images handed to the plugin (clipGetImage).
    // A new image at `depth`/`comps` covering the clip's region of definition at the current render scale,
    // filled from `content` (already at that scale) or with garbage (outputs).
    // field: the image's kOfxImagePropField (null: the field of the render in progress).
    OfxPropertySetHandle makeImage(double time, int width, int height, const FloatFrame *content, Depth depth,
                                   int comps, ImageLayout *layout, const char *field = nullptr);

    // The render scale of the action in progress (1 outside renders, as for InstanceChanged).
    void setRenderScale(double s) { scale_ = s; }
    double renderScale() const { return scale_; }
    // The clips' region of definition at `time` starts here (pixels at scale 1): --frame-origin, else --origin.
    void originAt(double time, int *x, int *y) const;
    int fracEdgeFrame() const { return opt_.fracEdgeFrame; }
    bool noRodAtScale() const { return opt_.noRodAtScale; }
    // The region of definition at `time` in pixels at the current scale: origin and size (fullW x fullH at 1).
    void scaledRod(double time, int fullW, int fullH, int *x1, int *y1, int *w, int *h) const;
    bool releaseImage(OfxPropertySetHandle h);

    // The output image of the render in progress (set by the driver around each render call).
    std::function<OfxPropertySetHandle(Clip &, double)> outputImage;
    // Called when the plugin sets a parameter value (the driver sends InstanceChanged, as hosts do).
    std::function<void(Effect &, Param &)> paramChangedByPlugin;
    std::function<bool(Effect &, OfxTime)> identityOutsideRender;  // --natron-habits: isIdentity says Source
    std::function<void()> duringProgress;                          // --natron-habits: events run in an update
    bool natronHabits() const { return opt_.natronHabits; }
    bool maskMissingAt(int frame) const { return opt_.maskMissing.count(frame) > 0; }
    std::atomic<int> rendering{0};  // Render actions under way: the spec lets no parameter be set in one

    static Host *current;

private:
    friend struct Suites;
    Options opt_;
    OfxHost host_;
    PropertySet hostProps_;
    mutable std::mutex imagesMutex_;
    std::map<PropertySet *, std::unique_ptr<Image>> images_;
    std::mutex logMutex_;
    std::atomic<int> messages_{0}, progressUpdates_{0}, refusals_{0};
    mutable std::mutex fieldMutex_;
    std::string field_ = "OfxFieldNone";
    std::atomic<unsigned long long> imageSerial_{0};
    std::atomic<long long> imageMicros_{0};
    std::atomic<long long> imagesServed_{0}, sourceImagesServed_{0}, rodQueries_{0};
    std::atomic<double> scale_{1.0};
};

std::string jsonEscape(const std::string &s);
// The harness's own image effect suite, for the driver (fetching it through the host would log the fetch).
const OfxImageEffectSuiteV1 *effectSuite();

}  // namespace harness
