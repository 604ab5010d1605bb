// A small OpenFX host built on the official OpenFX HostSupport library (OFX::Host::*, compiled from the user's
// OpenFX checkout by CMakeLists.txt here), written by us to check the vinpaint node in a host whose property sets,
// suites, actions and clip logic are HostSupport's own. scripts/hostsupport_check.py builds and drives it.
//
// Clips are served from .npy frames (top-down u1 [H,W,3] sources, [H,W] masks) as bottom-up OFX images; the
// output is saved top-down as .npy. Steps run in order and each prints one JSON line.
//
//   hostsupport_host --plugin-id org.vinpaint.Inpaint --source DIR [--mask DIR] [--context general|filter]
//          [--depth byte|short|float] [--first-frame N] [--lack-param-type TYPE] [--out DIR]
//          --steps 'create;set:NAME=VALUE;press:NAME;wait:SECONDS;render:F;render-batch:F;render-seq:A-B;
//                   sleep:S;destroy'
//
// create makes an interactive instance (create-batch a background one); render:F is an interactive render,
// render-batch:F a batch one; render-seq:A-B renders A..B in one sequential batch (one Begin/EndSequenceRender).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// HostSupport's headers depend on one another in this order.
#include "ofxCore.h"
#include "ofxImageEffect.h"
#include "ofxhBinary.h"
#include "ofxhPropertySuite.h"
#include "ofxhClip.h"
#include "ofxhParam.h"
#include "ofxhMemory.h"
#include "ofxhImageEffect.h"
#include "ofxhPluginAPICache.h"
#include "ofxhPluginCache.h"
#include "ofxhHost.h"
#include "ofxhImageEffectAPI.h"

#include "npy.h"

namespace fs = std::filesystem;
namespace HI = OFX::Host::ImageEffect;
namespace HP = OFX::Host::Param;

namespace {

struct Options {
    std::string pluginId = "org.vinpaint.Inpaint";
    std::string sourceDir, maskDir, outDir = ".";
    std::string context = kOfxImageEffectContextGeneral;
    std::string depth = kOfxBitDepthByte;
    std::string lackParamType;
    bool stubParams = false;
    int firstFrame = 1;
    std::vector<std::string> steps;
};
Options gOpt;

std::string jsonEscape(const std::string &s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') { o += '\\'; o += c; }
        else if (c == '\n') o += "\\n";
        else if (static_cast<unsigned char>(c) < 0x20) o += ' ';
        else o += c;
    }
    return o;
}

std::string vformat(const char *format, va_list args) {
    if (!format) return "";
    va_list copy;
    va_copy(copy, args);
    char buf[4096];
    std::vsnprintf(buf, sizeof buf, format, copy);
    va_end(copy);
    return buf;
}

std::string statusName(OfxStatus s) {
    switch (s) {
    case kOfxStatOK: return "OK";
    case kOfxStatFailed: return "Failed";
    case kOfxStatErrFatal: return "ErrFatal";
    case kOfxStatErrUnknown: return "ErrUnknown";
    case kOfxStatErrMissingHostFeature: return "ErrMissingHostFeature";
    case kOfxStatErrUnsupported: return "ErrUnsupported";
    case kOfxStatErrExists: return "ErrExists";
    case kOfxStatErrFormat: return "ErrFormat";
    case kOfxStatErrMemory: return "ErrMemory";
    case kOfxStatErrBadHandle: return "ErrBadHandle";
    case kOfxStatErrBadIndex: return "ErrBadIndex";
    case kOfxStatErrValue: return "ErrValue";
    case kOfxStatReplyYes: return "ReplyYes";
    case kOfxStatReplyNo: return "ReplyNo";
    case kOfxStatReplyDefault: return "ReplyDefault";
    default: return std::to_string(s);
    }
}

// --- the clip material ------------------------------------------------------------------------------------------

// One frame of RGBA floats in [0, 1], top-down.
struct Frame {
    int w = 0, h = 0;
    std::vector<float> rgba;
};

std::vector<fs::path> npyFiles(const std::string &dir) {
    std::vector<fs::path> files;
    if (dir.empty()) return files;
    for (auto &e : fs::directory_iterator(dir))
        if (e.path().extension() == ".npy") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return files;
}

float sampleValue(const harness::NpyArray &a, std::size_t i) {
    if (a.dtype == "u1") return a.data[i] / 255.0f;
    if (a.dtype == "u2") { uint16_t v; std::memcpy(&v, &a.data[i * 2], 2); return v / 65535.0f; }
    float v; std::memcpy(&v, &a.data[i * 4], 4); return v;
}

// The Source (RGB from the source frame, alpha from the mask in the Filter context) and Mask (the mask) frames.
struct Material {
    std::vector<Frame> source, mask;
    void load() {
        auto src = npyFiles(gOpt.sourceDir), msk = npyFiles(gOpt.maskDir);
        for (std::size_t t = 0; t < src.size(); ++t) {
            harness::NpyArray a = harness::readNpy(src[t].string());
            Frame f;
            f.h = static_cast<int>(a.shape[0]);
            f.w = static_cast<int>(a.shape[1]);
            const int c = a.shape.size() > 2 ? static_cast<int>(a.shape[2]) : 1;
            f.rgba.assign(std::size_t(f.w) * f.h * 4, 1.0f);
            for (int p = 0; p < f.w * f.h; ++p)
                for (int k = 0; k < 3; ++k) f.rgba[p * 4 + k] = sampleValue(a, std::size_t(p) * c + std::min(k, c - 1));
            Frame m;
            if (t < msk.size()) {
                harness::NpyArray b = harness::readNpy(msk[t].string());
                m.w = f.w; m.h = f.h;
                m.rgba.assign(f.rgba.size(), 0.0f);
                for (int p = 0; p < f.w * f.h; ++p) {
                    const float v = sampleValue(b, p);
                    for (int k = 0; k < 4; ++k) m.rgba[p * 4 + k] = v;
                    if (gOpt.context == kOfxImageEffectContextFilter) f.rgba[p * 4 + 3] = v;
                }
            }
            source.push_back(std::move(f));
            mask.push_back(std::move(m));
        }
        if (source.empty()) throw std::runtime_error("no .npy frames in --source " + gOpt.sourceDir);
    }
};
Material gMaterial;

int componentCount(const std::string &c) {
    return c == kOfxImageComponentRGBA ? 4 : c == kOfxImageComponentRGB ? 3 : c == kOfxImageComponentAlpha ? 1 : 0;
}
int depthBytes(const std::string &d) {
    return d == kOfxBitDepthByte ? 1 : d == kOfxBitDepthShort ? 2 : d == kOfxBitDepthFloat ? 4 : 0;
}

// An image whose pixels it owns; HostSupport deletes it when its reference count drops to zero.
class OwnedImage : public HI::Image {
public:
    OwnedImage(HI::ClipInstance &clip, std::vector<unsigned char> &&pixels, const OfxRectI &bounds, int rowBytes,
               const std::string &uid)
        : HI::Image(clip, 1.0, 1.0, nullptr, bounds, bounds, rowBytes, kOfxImageFieldNone, uid),
          pixels_(std::move(pixels)) {
        setPointerProperty(kOfxImagePropData, pixels_.data());
    }
private:
    std::vector<unsigned char> pixels_;
};

// An output image writing into its clip's buffer (the host reads the buffer after render).
class BorrowedImage : public HI::Image {
public:
    BorrowedImage(HI::ClipInstance &clip, void *data, const OfxRectI &bounds, int rowBytes)
        : HI::Image(clip, 1.0, 1.0, data, bounds, bounds, rowBytes, kOfxImageFieldNone, "output") {}
};

class Clip : public HI::ClipInstance {
public:
    Clip(HI::Instance *effect, HI::ClipDescriptor *desc) : HI::ClipInstance(effect, *desc), name_(desc->getName()) {}

    const std::string &getUnmappedBitDepth() const override { return gOpt.depth; }
    const std::string &getUnmappedComponents() const override {
        static const std::string rgba = kOfxImageComponentRGBA, alpha = kOfxImageComponentAlpha;
        return name_ == "Mask" ? alpha : rgba;
    }
    const std::string &getPremult() const override {
        static const std::string p = kOfxImageUnPreMultiplied;
        return p;
    }
    double getAspectRatio() const override { return 1.0; }
    double getFrameRate() const override { return 25.0; }
    void getFrameRange(double &a, double &b) const override {
        a = gOpt.firstFrame;
        b = gOpt.firstFrame + double(gMaterial.source.size()) - 1;
    }
    const std::string &getFieldOrder() const override {
        static const std::string n = kOfxImageFieldNone;
        return n;
    }
    bool getConnected() const override {
        if (name_ == "Mask") return !gOpt.maskDir.empty() && gOpt.context == kOfxImageEffectContextGeneral;
        return name_ == "Source" || name_ == kOfxImageEffectOutputClipName;
    }
    double getUnmappedFrameRate() const override { return 25.0; }
    void getUnmappedFrameRange(double &a, double &b) const override { getFrameRange(a, b); }
    bool getContinuousSamples() const override { return false; }
    OfxRectD getRegionOfDefinition(OfxTime) const override {
        const Frame &f = gMaterial.source.front();
        return OfxRectD{0, 0, double(f.w), double(f.h)};
    }
#ifdef OFX_SUPPORTS_OPENGLRENDER
    HI::Texture *loadTexture(OfxTime, const char *, const OfxRectD *) override { return nullptr; }
#endif

    HI::Image *getImage(OfxTime time, const OfxRectD *) override {
        const Frame &ref = gMaterial.source.front();
        const OfxRectI bounds{0, 0, ref.w, ref.h};
        const int comps = componentCount(getComponents()), bytes = depthBytes(getPixelDepth());
        if (comps == 0 || bytes == 0) {
            std::cerr << "hostsupport_host: clip " << name_ << " mapped to " << getComponents() << "/"
                      << getPixelDepth() << "\n";
            return nullptr;
        }
        const int rowBytes = ref.w * comps * bytes;
        if (name_ == kOfxImageEffectOutputClipName) {
            output.assign(std::size_t(rowBytes) * ref.h, 0);
            outputComps = comps;
            outputBytes = bytes;
            return new BorrowedImage(*this, output.data(), bounds, rowBytes);
        }
        const long t = std::lround(time) - gOpt.firstFrame;
        if (t < 0 || t >= long(gMaterial.source.size())) return nullptr;
        const Frame &f = name_ == "Mask" ? gMaterial.mask[t] : gMaterial.source[t];
        if (f.rgba.empty()) return nullptr;
        std::vector<unsigned char> px(std::size_t(rowBytes) * f.h);
        for (int r = 0; r < f.h; ++r) {        // OFX row r is y = r from the bottom: the frame's row h-1-r
            unsigned char *row = px.data() + std::size_t(r) * rowBytes;
            for (int x = 0; x < f.w; ++x) {
                const float *s = &f.rgba[(std::size_t(f.h - 1 - r) * f.w + x) * 4];
                for (int k = 0; k < comps; ++k) {
                    const float v = comps == 1 ? s[3] : s[k];
                    unsigned char *d = row + (std::size_t(x) * comps + k) * bytes;
                    if (bytes == 1) *d = static_cast<unsigned char>(std::lround(v * 255.0f));
                    else if (bytes == 2) { uint16_t u = uint16_t(std::lround(v * 65535.0f)); std::memcpy(d, &u, 2); }
                    else std::memcpy(d, &v, 4);
                }
            }
        }
        return new OwnedImage(*this, std::move(px), bounds, rowBytes, name_ + "@" + std::to_string(time));
    }

    // The last output, top-down u1 [H,W,C].
    harness::NpyArray outputNpy() const {
        const Frame &ref = gMaterial.source.front();
        harness::NpyArray a;
        a.dtype = "u1";
        a.shape = {std::size_t(ref.h), std::size_t(ref.w), std::size_t(outputComps)};
        a.data.resize(a.count());
        const std::size_t rowBytes = std::size_t(ref.w) * outputComps * outputBytes;
        for (int r = 0; r < ref.h; ++r)
            for (int i = 0; i < ref.w * outputComps; ++i) {
                const unsigned char *s = output.data() + std::size_t(r) * rowBytes + std::size_t(i) * outputBytes;
                float v;
                if (outputBytes == 1) v = *s / 255.0f;
                else if (outputBytes == 2) { uint16_t u; std::memcpy(&u, s, 2); v = u / 65535.0f; }
                else std::memcpy(&v, s, 4);
                a.data[std::size_t(ref.h - 1 - r) * ref.w * outputComps + i] =
                    static_cast<unsigned char>(std::lround(std::min(1.0f, std::max(0.0f, v)) * 255.0f));
            }
        return a;
    }

    std::vector<unsigned char> output;
    int outputComps = 4, outputBytes = 1;

private:
    std::string name_;
};

// --- parameters: plain stored values, no animation ---------------------------------------------------------------

template <class Base, class T>
class Stored : public Base {
public:
    Stored(HP::Descriptor &d, HP::SetInstance *set, T initial) : Base(d, set), value(initial) {}
    OfxStatus get(T &v) override { v = value; return kOfxStatOK; }
    OfxStatus get(OfxTime, T &v) override { v = value; return kOfxStatOK; }
    OfxStatus set(T v) override { value = v; return kOfxStatOK; }
    OfxStatus set(OfxTime, T v) override { value = v; return kOfxStatOK; }
    T value;
};
// --stub-params: Integer and Choice as HostSupport's example host has them, answering every get and set with
// kOfxStatErrMissingHostFeature.
template <class Base>
class MaybeStub : public Stored<Base, int> {
public:
    using Stored<Base, int>::Stored;
    OfxStatus get(int &v) override { return stub() ? kOfxStatErrMissingHostFeature : Stored<Base, int>::get(v); }
    OfxStatus get(OfxTime t, int &v) override {
        return stub() ? kOfxStatErrMissingHostFeature : Stored<Base, int>::get(t, v);
    }
    OfxStatus set(int v) override { return stub() ? kOfxStatErrMissingHostFeature : Stored<Base, int>::set(v); }
    OfxStatus set(OfxTime t, int v) override {
        return stub() ? kOfxStatErrMissingHostFeature : Stored<Base, int>::set(t, v);
    }

private:
    static bool stub() { return gOpt.stubParams; }
};
using IntParam = MaybeStub<HP::IntegerInstance>;
using ChoiceParam = MaybeStub<HP::ChoiceInstance>;
using BoolParam = Stored<HP::BooleanInstance, bool>;

class DoubleParam : public Stored<HP::DoubleInstance, double> {
public:
    using Stored::Stored;
    OfxStatus derive(OfxTime, double &v) override { v = 0; return kOfxStatOK; }
    OfxStatus integrate(OfxTime a, OfxTime b, double &v) override { v = value * (b - a); return kOfxStatOK; }
};

class StringParam : public HP::StringInstance {
public:
    StringParam(HP::Descriptor &d, HP::SetInstance *set, std::string initial)
        : HP::StringInstance(d, set), value(std::move(initial)) {}
    OfxStatus get(std::string &v) override { v = value; return kOfxStatOK; }
    OfxStatus get(OfxTime, std::string &v) override { v = value; return kOfxStatOK; }
    OfxStatus set(const char *v) override { value = v ? v : ""; return kOfxStatOK; }
    OfxStatus set(OfxTime, const char *v) override { return set(v); }
    std::string value;
};

// --- the effect instance and the host ----------------------------------------------------------------------------

class Effect : public HI::Instance {
public:
    Effect(HI::ImageEffectPlugin *plugin, HI::Descriptor &desc, const std::string &context, bool interactive)
        : HI::Instance(plugin, desc, context, interactive) {}

    HI::ClipInstance *newClipInstance(HI::Instance *, HI::ClipDescriptor *d, int) override { return new Clip(this, d); }
    const std::string &getDefaultOutputFielding() const override {
        static const std::string n = kOfxImageFieldNone;
        return n;
    }
    OfxStatus vmessage(const char *type, const char *id, const char *format, va_list args) override {
        messages.push_back(std::string(type ? type : "") + ": " + vformat(format, args));
        return kOfxStatOK;
    }
    OfxStatus setPersistentMessage(const char *type, const char *, const char *format, va_list args) override {
        persistent = std::string(type ? type : "") + ": " + vformat(format, args);
        return kOfxStatOK;
    }
    OfxStatus clearPersistentMessage() override { persistent.clear(); return kOfxStatOK; }
    void getProjectSize(double &x, double &y) const override {
        x = gMaterial.source.front().w;
        y = gMaterial.source.front().h;
    }
    void getProjectOffset(double &x, double &y) const override { x = y = 0; }
    void getProjectExtent(double &x, double &y) const override { getProjectSize(x, y); }
    double getProjectPixelAspectRatio() const override { return 1.0; }
    double getEffectDuration() const override { return double(gMaterial.source.size()); }
    double getFrameRate() const override { return 25.0; }
    double getFrameRecursive() const override { return 0.0; }
    void getRenderScaleRecursive(double &x, double &y) const override { x = y = 1.0; }

    HP::Instance *newParam(const std::string &name, HP::Descriptor &d) override {
        const std::string &type = d.getType();
        if (type == gOpt.lackParamType) return nullptr;
        auto &p = d.getProperties();
        if (type == kOfxParamTypeInteger) return new IntParam(d, this, p.getIntProperty(kOfxParamPropDefault));
        if (type == kOfxParamTypeChoice) return new ChoiceParam(d, this, p.getIntProperty(kOfxParamPropDefault));
        if (type == kOfxParamTypeBoolean) return new BoolParam(d, this, p.getIntProperty(kOfxParamPropDefault) != 0);
        if (type == kOfxParamTypeDouble) return new DoubleParam(d, this, p.getDoubleProperty(kOfxParamPropDefault));
        if (type == kOfxParamTypeString) return new StringParam(d, this, p.getStringProperty(kOfxParamPropDefault));
        if (type == kOfxParamTypePushButton) return new HP::PushbuttonInstance(d, this);
        if (type == kOfxParamTypeGroup) return new HP::GroupInstance(d, this);
        if (type == kOfxParamTypePage) return new HP::PageInstance(d, this);
        std::cerr << "hostsupport_host: no parameter of type " << type << " (" << name << ")\n";
        return nullptr;
    }
    OfxStatus editBegin(const std::string &) override { return kOfxStatOK; }
    OfxStatus editEnd() override { return kOfxStatOK; }
    void progressStart(const std::string &m, const std::string &) override { progress.push_back("start:" + m); }
    void progressEnd() override { progress.push_back("end"); }
    bool progressUpdate(double) override { ++progressUpdates; return true; }
    double timeLineGetTime() override { return gOpt.firstFrame; }
    void timeLineGotoTime(double) override {}
    void timeLineGetBounds(double &a, double &b) override {
        a = gOpt.firstFrame;
        b = gOpt.firstFrame + double(gMaterial.source.size()) - 1;
    }

    std::vector<std::string> messages, progress;
    std::string persistent;
    int progressUpdates = 0;
};

class Host : public HI::Host {
public:
    Host() {
        auto &p = getProperties();
        p.setStringProperty(kOfxPropName, "org.vinpaint.hostsupport-check");
        p.setStringProperty(kOfxPropLabel, "vinpaint HostSupport check");
        p.setIntProperty(kOfxImageEffectHostPropIsBackground, 0);
        p.setIntProperty(kOfxImageEffectPropSupportsMultipleClipDepths, 0);
        p.setStringProperty(kOfxImageEffectPropSupportedComponents, kOfxImageComponentRGBA, 0);
        p.setStringProperty(kOfxImageEffectPropSupportedComponents, kOfxImageComponentRGB, 1);
        p.setStringProperty(kOfxImageEffectPropSupportedComponents, kOfxImageComponentAlpha, 2);
        p.setStringProperty(kOfxImageEffectPropSupportedContexts, kOfxImageEffectContextGeneral, 0);
        p.setStringProperty(kOfxImageEffectPropSupportedContexts, kOfxImageEffectContextFilter, 1);
        p.setStringProperty(kOfxImageEffectPropSupportedPixelDepths, kOfxBitDepthByte, 0);
        p.setStringProperty(kOfxImageEffectPropSupportedPixelDepths, kOfxBitDepthShort, 1);
        p.setStringProperty(kOfxImageEffectPropSupportedPixelDepths, kOfxBitDepthFloat, 2);
    }
    HI::Instance *newInstance(void *clientData, HI::ImageEffectPlugin *plugin, HI::Descriptor &desc,
                              const std::string &context) override {
        return new Effect(plugin, desc, context, clientData != nullptr);
    }
    HI::Descriptor *makeDescriptor(HI::ImageEffectPlugin *plugin) override { return new HI::Descriptor(plugin); }
    HI::Descriptor *makeDescriptor(const HI::Descriptor &root, HI::ImageEffectPlugin *plugin) override {
        return new HI::Descriptor(root, plugin);
    }
    HI::Descriptor *makeDescriptor(const std::string &bundlePath, HI::ImageEffectPlugin *plugin) override {
        return new HI::Descriptor(bundlePath, plugin);
    }
    // HostSupport answers; logged so a run shows which suites the plugin got. Built without
    // OFX_SUPPORTS_MULTITHREAD (its default), the library's multithread suite says one CPU and runs on the caller.
    const void *fetchSuite(const char *name, int version) override {
        const void *suite = HI::Host::fetchSuite(name, version);
        suites += std::string(suites.empty() ? "" : ",") + name + "/" + std::to_string(version) +
                  (suite ? "" : "(none)");
        return suite;
    }
    std::string suites;
    OfxStatus vmessage(const char *type, const char *, const char *format, va_list args) override {
        std::cerr << "host message " << (type ? type : "") << ": " << vformat(format, args) << "\n";
        return kOfxStatOK;
    }
    OfxStatus setPersistentMessage(const char *type, const char *id, const char *format, va_list args) override {
        return vmessage(type, id, format, args);
    }
    OfxStatus clearPersistentMessage() override { return kOfxStatOK; }
#ifdef OFX_SUPPORTS_MULTITHREAD
#error "this host does not implement HostSupport's threading hooks: build without OFX_SUPPORTS_MULTITHREAD"
#endif
#ifdef OFX_SUPPORTS_OPENGLRENDER
    OfxStatus flushOpenGLResources() const override { return kOfxStatFailed; }
#endif
};

// --- steps -------------------------------------------------------------------------------------------------------

double now() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

void emit(const std::string &step, const std::string &fields) {
    std::cout << "{\"step\":\"" << jsonEscape(step) << "\"" << fields << "}" << std::endl;
}

std::string field(const char *k, const std::string &v) {
    return std::string(",\"") + k + "\":\"" + jsonEscape(v) + "\"";
}
std::string field(const char *k, double v) {
    std::ostringstream s;
    s << ",\"" << k << "\":" << v;
    return s.str();
}

std::string paramText(Effect &e, const std::string &name) {
    HP::Instance *p = e.getParam(name);
    if (auto *s = dynamic_cast<StringParam *>(p)) return s->value;
    return "";
}

OfxStatus changed(Effect &e, const std::string &name) {
    OfxPointD one{1, 1};
    e.beginInstanceChangedAction(kOfxChangeUserEdited);
    OfxStatus st = e.paramInstanceChangedAction(name, kOfxChangeUserEdited, gOpt.firstFrame, one);
    e.endInstanceChangedAction(kOfxChangeUserEdited);
    return st;
}

std::string afterAction(Effect &e) {
    std::string s = field("persistent", e.persistent) + field("status_param", paramText(e, "status"));
    std::string m;
    for (auto &x : e.messages) m += (m.empty() ? "" : " | ") + x;
    e.messages.clear();
    return s + field("messages", m);
}

OfxStatus renderFrame(Effect &e, double frame, bool interactive, bool sequential, std::string &extra) {
    OfxPointD one{1, 1};
    const Frame &ref = gMaterial.source.front();
    OfxRectI window{0, 0, ref.w, ref.h};
    // What a HostSupport-based host asks first: the region of definition, regions of interest, frames needed.
    OfxRectD rod;
    OfxStatus st = e.getRegionOfDefinitionAction(frame, one, rod);
    extra += field("rod_status", statusName(st));
    std::map<HI::ClipInstance *, OfxRectD> rois;
    OfxRectD roi{0, 0, double(ref.w), double(ref.h)};
    st = e.getRegionOfInterestAction(frame, one, roi, rois);
    extra += field("roi_status", statusName(st));
    HI::RangeMap ranges;
    st = e.getFrameNeededAction(frame, ranges);
    extra += field("frames_needed_status", statusName(st));
    OfxTime idTime = frame;
    std::string idClip;
    st = e.isIdentityAction(idTime, kOfxImageFieldNone, window, one, idClip);
    extra += field("identity_status", statusName(st)) + field("identity_clip", idClip);
    if (st == kOfxStatOK) return st;  // identity: a host copies idClip's image and never calls Render
    return e.renderAction(frame, kOfxImageFieldNone, window, one, sequential, interactive, false);
}

void saveOutput(Effect &e, const std::string &kind, double frame) {
    auto *out = dynamic_cast<Clip *>(e.getClip(kOfxImageEffectOutputClipName));
    fs::create_directories(gOpt.outDir);
    harness::writeNpy(gOpt.outDir + "/" + kind + "_" + std::to_string(long(frame)) + ".npy", out->outputNpy());
}

void runStep(std::unique_ptr<HI::Instance> &inst, HI::ImageEffectPlugin *plugin, const std::string &step) {
    const double t0 = now();
    auto done = [&](const std::string &fields) { emit(step, field("seconds", now() - t0) + fields); };
    auto *e = dynamic_cast<Effect *>(inst.get());
    if (step == "create" || step == "create-batch") {
        // clientData non-null marks an interactive session (our Host::newInstance reads it).
        static int marker;
        HI::Instance *made = plugin->createInstance(gOpt.context, step == "create" ? &marker : nullptr);
        inst.reset(made);
        if (!inst) return done(field("status", "no instance"));
        e = dynamic_cast<Effect *>(inst.get());
        std::string params;
        for (auto *p : e->getParamList()) params += (params.empty() ? "" : ",") + p->getName();
        OfxStatus st = inst->createInstanceAction();
        std::string extra = field("status", statusName(st)) + field("params", params);
        if (st == kOfxStatOK || st == kOfxStatReplyDefault) {
            bool ok = inst->getClipPreferences();
            extra += field("clip_preferences", ok ? "ok" : "failed");
            for (const char *c : {"Source", "Mask", "Output"})
                if (auto *clip = inst->getClip(c))
                    extra += field(c, clip->getComponents() + "/" + clip->getPixelDepth());
        }
        return done(extra + afterAction(*e));
    }
    if (!e) return done(field("status", "no instance"));
    if (step.rfind("set:", 0) == 0) {
        const std::string kv = step.substr(4);
        const auto eq = kv.find('=');
        const std::string name = kv.substr(0, eq), value = kv.substr(eq + 1);
        HP::Instance *p = e->getParam(name);
        if (auto *s = dynamic_cast<StringParam *>(p)) s->value = value;
        else if (auto *i = dynamic_cast<IntParam *>(p)) i->value = std::stoi(value);
        else if (auto *c = dynamic_cast<ChoiceParam *>(p)) c->value = std::stoi(value);
        else if (auto *b = dynamic_cast<BoolParam *>(p)) b->value = std::stoi(value) != 0;
        else return done(field("status", "no such parameter"));
        return done(field("status", statusName(changed(*e, name))) + afterAction(*e));
    }
    if (step.rfind("press:", 0) == 0) {
        OfxStatus st = changed(*e, step.substr(6));
        std::string prog;
        for (auto &x : e->progress) prog += (prog.empty() ? "" : ",") + x;
        e->progress.clear();
        const int updates = e->progressUpdates;
        e->progressUpdates = 0;
        return done(field("status", statusName(st)) + field("progress", prog) + field("progress_updates", updates) +
                    afterAction(*e));
    }
    if (step.rfind("wait:", 0) == 0) {    // press Refresh once a second until the job is done or failed
        const double limit = std::stod(step.substr(5));
        std::string status;
        while (now() - t0 < limit) {
            changed(*e, "refresh");
            status = paramText(*e, "status");
            if (status.rfind("done:", 0) == 0 || status.rfind("failed:", 0) == 0)
                return done(field("status", status.substr(0, status.find(':'))) + afterAction(*e));
            std::this_thread::sleep_for(std::chrono::seconds(1));
        }
        return done(field("status", "timeout") + afterAction(*e));
    }
    if (step.rfind("render:", 0) == 0 || step.rfind("render-batch:", 0) == 0) {
        const bool interactive = step.rfind("render:", 0) == 0;
        const double frame = std::stod(step.substr(step.find(':') + 1));
        OfxPointD one{1, 1};
        std::string extra;
        OfxStatus b = inst->beginRenderAction(frame, frame, 1, interactive, one, false, interactive);
        OfxStatus st = renderFrame(*e, frame, interactive, false, extra);
        OfxStatus en = inst->endRenderAction(frame, frame, 1, interactive, one, false, interactive);
        if (st == kOfxStatOK) saveOutput(*e, interactive ? "render" : "batch", frame);
        return done(field("status", statusName(st)) + field("begin", statusName(b)) + field("end", statusName(en)) +
                    extra + afterAction(*e));
    }
    if (step.rfind("render-seq:", 0) == 0) {     // a sequential batch render, as a render farm's
        const std::string r = step.substr(11);
        const double a = std::stod(r.substr(0, r.find('-'))), z = std::stod(r.substr(r.find('-') + 1));
        OfxPointD one{1, 1};
        OfxStatus b = inst->beginRenderAction(a, z, 1, false, one, true, false);
        std::string statuses;
        for (double f = a; f <= z; f += 1) {
            std::string extra;
            OfxStatus st = renderFrame(*e, f, false, true, extra);
            if (st == kOfxStatOK) saveOutput(*e, "seq", f);
            statuses += (statuses.empty() ? "" : ",") + statusName(st);
        }
        OfxStatus en = inst->endRenderAction(a, z, 1, false, one, true, false);
        return done(field("status", statuses) + field("begin", statusName(b)) + field("end", statusName(en)) +
                    afterAction(*e));
    }
    if (step.rfind("sleep:", 0) == 0) {
        std::this_thread::sleep_for(std::chrono::duration<double>(std::stod(step.substr(6))));
        return done(field("status", "OK"));
    }
    if (step == "destroy") {
        inst.reset();
        return done(field("status", "OK"));
    }
    done(field("status", "unknown step"));
}

std::vector<std::string> splitSteps(const std::string &s) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == ';') { out.push_back(cur); cur.clear(); }
        else cur += c;
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

}  // namespace

int main(int argc, char **argv) {
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) { std::cerr << "hostsupport_host: " << k << " needs a value\n"; std::exit(2); }
            return argv[++i];
        };
        if (k == "--plugin-id") gOpt.pluginId = next();
        else if (k == "--source") gOpt.sourceDir = next();
        else if (k == "--mask") gOpt.maskDir = next();
        else if (k == "--out") gOpt.outDir = next();
        else if (k == "--context")
            gOpt.context = next() == "filter" ? kOfxImageEffectContextFilter : kOfxImageEffectContextGeneral;
        else if (k == "--depth") {
            const std::string d = next();
            gOpt.depth = d == "float" ? kOfxBitDepthFloat : d == "short" ? kOfxBitDepthShort : kOfxBitDepthByte;
        } else if (k == "--first-frame") gOpt.firstFrame = std::stoi(next());
        else if (k == "--lack-param-type") gOpt.lackParamType = next();
        else if (k == "--stub-params") gOpt.stubParams = true;
        else if (k == "--steps") gOpt.steps = splitSteps(next());
        else { std::cerr << "hostsupport_host: unknown option " << k << "\n"; return 2; }
    }
    try {
        gMaterial.load();
    } catch (const std::exception &ex) {
        std::cerr << "hostsupport_host: " << ex.what() << "\n";
        return 2;
    }
    Host host;
    HI::PluginCache effects(host);
    effects.registerInCache(*OFX::Host::PluginCache::getPluginCache());
    double t0 = now();
    OFX::Host::PluginCache::getPluginCache()->scanPluginFiles();
    HI::ImageEffectPlugin *plugin = effects.getPluginById(gOpt.pluginId);
    if (plugin) plugin->getContext(gOpt.context);  // Load, Describe, DescribeInContext: the suites are fetched
    emit("load", field("seconds", now() - t0) + field("status", plugin ? "found" : "not found") +
                     field("suites", host.suites));
    if (!plugin) return 1;
    t0 = now();
    HI::Descriptor *inContext = plugin->getContext(gOpt.context);
    std::string clips;
    if (inContext)
        for (auto &c : inContext->getClips()) clips += (clips.empty() ? "" : ",") + c.first;
    emit("describe", field("seconds", now() - t0) + field("status", inContext ? "OK" : "no such context") +
                         field("clips", clips));
    std::unique_ptr<HI::Instance> inst;
    for (const auto &s : gOpt.steps) runStep(inst, plugin, s);
    inst.reset();
    OFX::Host::PluginCache::clearPluginCache();
    emit("exit", "");
    return 0;
}
