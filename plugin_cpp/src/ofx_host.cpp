#include "ofx_host.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <type_traits>

namespace vinpaint::ofx {

namespace {
Suites g_suites;

template <typename T>
const T *fetch(const char *name, int version) {
    if (!g_suites.host || !g_suites.host->fetchSuite) return nullptr;
    return static_cast<const T *>(g_suites.host->fetchSuite(g_suites.host->host, name, version));
}
}  // namespace

const Suites &suites() { return g_suites; }

void setHost(OfxHost *host) noexcept { g_suites.host = host; }

void fetchSuites() {
    if (!g_suites.host) throw MissingHostFeature("an OfxHost (setHost was not called before Load)");
    // Filled in aside and kept only when every required suite is there: a host that goes on after a failed Load
    // then finds no property suite and gets kOfxStatErrMissingHostFeature, never a call through a null suite.
    // Built aside and put in place at once: a render on another thread never sees them half-made (a re-scan's
    // Load while nodes render, 2026-12-03); cleared only when the host lacks one.
    Suites found;
    found.host = g_suites.host;
    found.prop = fetch<OfxPropertySuiteV1>(kOfxPropertySuite, 1);
    found.effect = fetch<OfxImageEffectSuiteV1>(kOfxImageEffectSuite, 1);
    found.param = fetch<OfxParameterSuiteV1>(kOfxParameterSuite, 1);
    found.message2 = fetch<OfxMessageSuiteV2>(kOfxMessageSuite, 2);
    found.message1 = fetch<OfxMessageSuiteV1>(kOfxMessageSuite, 1);
    found.progress2 = fetch<OfxProgressSuiteV2>(kOfxProgressSuite, 2);
    found.progress1 = found.progress2 ? nullptr : fetch<OfxProgressSuiteV1>(kOfxProgressSuite, 1);
    found.threads = fetch<OfxMultiThreadSuiteV1>(kOfxMultiThreadSuite, 1);
    found.memory = fetch<OfxMemorySuiteV1>(kOfxMemorySuite, 1);
    const char *lacking = !found.prop     ? "the property suite (OfxPropertySuite v1)"
                          : !found.effect ? "the image effect suite (OfxImageEffectSuite v1)"
                          : !found.param  ? "the parameter suite (OfxParameterSuite v1)"
                          : !found.message1 && !found.message2 ? "the message suite (OfxMessageSuite v1 or v2)"
                                                               : nullptr;
    if (lacking) {
        forgetSuites();
        throw MissingHostFeature(lacking);
    }
    g_suites = found;
}

void forgetSuites() noexcept {
    OfxHost *host = g_suites.host;
    g_suites = Suites{};
    g_suites.host = host;
}

std::string describeSuites() {
    std::ostringstream out;
    out << "property v1 " << (g_suites.prop ? "yes" : "MISSING") << ", image effect v1 "
        << (g_suites.effect ? "yes" : "MISSING") << ", parameter v1 " << (g_suites.param ? "yes" : "MISSING")
        << ", message " << (g_suites.message2 ? "v2" : g_suites.message1 ? "v1 (no persistent messages)" : "MISSING")
        << ", progress " << (g_suites.progress2 ? "v2" : g_suites.progress1 ? "v1" : "none")
        << ", multithread " << (g_suites.threads ? "v1" : "none") << ", memory "
        << (g_suites.memory ? "v1" : "none");
    return out.str();
}

void check(OfxStatus status, const char *what) {
    if (status == kOfxStatOK) return;
    if (status == kOfxStatErrMemory) throw std::bad_alloc();
    throw OfxError(status, std::string("vinpaint: host call failed (status ") + std::to_string(status) + "): " + what);
}

// ---- PropSet ---------------------------------------------------------------------------------------------
int PropSet::getInt(const char *name, int index) const {
    int v = 0;
    check(g_suites.prop->propGetInt(h_, name, index, &v), name);
    return v;
}
double PropSet::getDouble(const char *name, int index) const {
    double v = 0;
    check(g_suites.prop->propGetDouble(h_, name, index, &v), name);
    return v;
}
std::string PropSet::getString(const char *name, int index) const {
    char *v = nullptr;
    check(g_suites.prop->propGetString(h_, name, index, &v), name);
    return v ? std::string(v) : std::string();
}
void *PropSet::getPointer(const char *name, int index) const {
    void *v = nullptr;
    check(g_suites.prop->propGetPointer(h_, name, index, &v), name);
    return v;
}
int PropSet::dimension(const char *name) const {
    int n = 0;
    if (g_suites.prop->propGetDimension(h_, name, &n) != kOfxStatOK) return 0;
    return n;
}
std::optional<int> PropSet::tryInt(const char *name, int index) const noexcept {
    int v = 0;
    if (!h_ || g_suites.prop->propGetInt(h_, name, index, &v) != kOfxStatOK) return std::nullopt;
    return v;
}
std::optional<double> PropSet::tryDouble(const char *name, int index) const noexcept {
    double v = 0;
    if (!h_ || g_suites.prop->propGetDouble(h_, name, index, &v) != kOfxStatOK) return std::nullopt;
    return v;
}
std::optional<std::string> PropSet::tryString(const char *name, int index) const noexcept {
    char *v = nullptr;
    if (!h_ || g_suites.prop->propGetString(h_, name, index, &v) != kOfxStatOK || !v) return std::nullopt;
    try {
        return std::string(v);
    } catch (...) {
        return std::nullopt;
    }
}
void PropSet::setInt(const char *name, int value, int index) const {
    check(g_suites.prop->propSetInt(h_, name, index, value), name);
}
void PropSet::setDouble(const char *name, double value, int index) const {
    check(g_suites.prop->propSetDouble(h_, name, index, value), name);
}
void PropSet::setString(const char *name, const std::string &value, int index) const {
    check(g_suites.prop->propSetString(h_, name, index, value.c_str()), name);
}
void PropSet::setPointer(const char *name, void *value, int index) const {
    check(g_suites.prop->propSetPointer(h_, name, index, value), name);
}
void PropSet::setStrings(const char *name, const std::vector<std::string> &values) const {
    for (size_t i = 0; i < values.size(); ++i) setString(name, values[i], static_cast<int>(i));
}
void PropSet::trySetInt(const char *name, int value, int index) const noexcept {
    if (h_) g_suites.prop->propSetInt(h_, name, index, value);
}
void PropSet::trySetString(const char *name, const std::string &value, int index) const noexcept {
    if (h_) g_suites.prop->propSetString(h_, name, index, value.c_str());
}

// ---- Image / Clip / Param ---------------------------------------------------------------------------------
Image &Image::operator=(Image &&other) noexcept {
    if (this != &other) {
        release();
        h_ = other.h_;
        other.h_ = nullptr;
    }
    return *this;
}
void Image::release() noexcept {
    if (h_ && g_suites.effect) g_suites.effect->clipReleaseImage(h_);
    h_ = nullptr;
}

bool Clip::connected() const { return h_ && props_.tryInt(kOfxImageClipPropConnected).value_or(0) != 0; }

Image Clip::fetch(OfxTime t, const OfxRectD *region) const {
    OfxPropertySetHandle img = nullptr;
    OfxStatus st = g_suites.effect->clipGetImage(h_, t, region, &img);
    if (st == kOfxStatFailed || !img) return Image();  // no image at that time: the caller decides
    check(st, "clipGetImage");
    return Image(img);
}
OfxRectD Clip::regionOfDefinition(OfxTime t) const {
    OfxRectD r{0, 0, 0, 0};
    check(g_suites.effect->clipGetRegionOfDefinition(h_, t, &r), "clipGetRegionOfDefinition");
    return r;
}
OfxRangeD Clip::frameRange() const {
    OfxRangeD r{0, 0};
    r.min = props_.getDouble(kOfxImageEffectPropFrameRange, 0);
    r.max = props_.getDouble(kOfxImageEffectPropFrameRange, 1);
    return r;
}

Param::Param(OfxParamHandle handle, OfxPropertySetHandle props, std::string name)
    : h_(handle), props_(props), name_(std::move(name)), kept_(std::make_shared<Kept>()) {}

Param Param::unhosted(std::string name, std::string initial) {
    Param p;
    p.name_ = std::move(name);
    p.kept_ = std::make_shared<Kept>();
    p.kept_->active = true;
    p.kept_->s = std::move(initial);
    return p;
}

void Param::checkCall(OfxStatus status, const char *call) const {
    if (status != kOfxStatOK) check(status, (std::string(call) + " of the parameter '" + name_ + "'").c_str());
}

namespace {
// A host that has the parameter but cannot give or take its value (HostSupport's example host answers every
// Integer and Choice read with kOfxStatErrMissingHostFeature).
bool hostCannot(OfxStatus st) { return st == kOfxStatErrMissingHostFeature || st == kOfxStatErrUnsupported; }
}  // namespace

// Keeps the value from now on, starting at the parameter's default; says so once, on the host's stderr.
template <class T>
void Param::keep(const char *call) const {
    std::lock_guard<std::mutex> lock(kept_->mutex);
    if (kept_->active) return;
    kept_->active = true;
    if constexpr (std::is_same_v<T, int>) kept_->i = props_.tryInt(kOfxParamPropDefault).value_or(0);
    else if constexpr (std::is_same_v<T, double>) kept_->d = props_.tryDouble(kOfxParamPropDefault).value_or(0.0);
    else kept_->s = props_.tryString(kOfxParamPropDefault).value_or("");
    std::fprintf(stderr, "vinpaint: the host cannot %s the parameter '%s': the node keeps its value itself, "
                         "starting at its default\n", call, name_.c_str());
}

// Whether the host's answer `st` hands the value to the node from now on: a refusal of a parameter it never gave
// or took a value of. An OK is remembered, so a later refusal stays an error.
template <class T>
bool Param::startKeeping(OfxStatus st, const char *call) const {
    {
        std::lock_guard<std::mutex> lock(kept_->mutex);
        if (st == kOfxStatOK) kept_->answered = true;
        if (st == kOfxStatOK || !hostCannot(st) || kept_->answered) return false;
    }
    keep<T>(call);
    return true;
}

template <class T, class Get>
T Param::read(Get get, T Kept::*slot) const {
    if (kept_) {
        std::lock_guard<std::mutex> lock(kept_->mutex);
        if (kept_->active) return (*kept_).*slot;
    }
    T v{};
    const OfxStatus st = get(v);
    if (kept_ && startKeeping<T>(st, "give the value of")) {
        std::lock_guard<std::mutex> lock(kept_->mutex);
        return (*kept_).*slot;
    }
    checkCall(st, "paramGetValue");
    return v;
}

template <class T, class Set>
void Param::write(Set set, T Kept::*slot, const T &v) const {
    if (kept_) {
        std::lock_guard<std::mutex> lock(kept_->mutex);
        if (kept_->active) {
            (*kept_).*slot = v;
            return;
        }
    }
    const OfxStatus st = set();
    if (kept_ && startKeeping<T>(st, "set")) {
        std::lock_guard<std::mutex> lock(kept_->mutex);
        (*kept_).*slot = v;
        return;
    }
    checkCall(st, "paramSetValue");
}

bool Param::keptByNode() const {
    if (!kept_) return false;
    std::lock_guard<std::mutex> lock(kept_->mutex);
    return kept_->active;
}

void Param::keepAtDefault() const {
    if (kept_) keep<int>("give a stored value of");
}

void Param::keepUnlessWritable() const {
    if (!h_ || !kept_ || keptByNode()) return;
    int v = 0;
    if (g_suites.param->paramGetValue(h_, &v) != kOfxStatOK) return;
    if (v == props_.tryInt(kOfxParamPropDefault).value_or(0)) return;
    // Only the example host's own answer: another refusal (kOfxStatErrUnsupported, say) may be a real host's reason
    // of the moment, and keeping the default there would turn the user's Invert mask off for good.
    if (g_suites.param->paramSetValue(h_, v) == kOfxStatErrMissingHostFeature) keep<int>("store a value of");
}

int Param::getInt() const {
    return read<int>([&](int &v) { return g_suites.param->paramGetValue(h_, &v); }, &Kept::i);
}
int Param::getIntAt(OfxTime t) const {
    return read<int>([&](int &v) { return g_suites.param->paramGetValueAtTime(h_, t, &v); }, &Kept::i);
}
double Param::getDouble() const {
    return read<double>([&](double &v) { return g_suites.param->paramGetValue(h_, &v); }, &Kept::d);
}
double Param::getDoubleAt(OfxTime t) const {
    return read<double>([&](double &v) { return g_suites.param->paramGetValueAtTime(h_, t, &v); }, &Kept::d);
}
std::string Param::getString() const {
    return read<std::string>(
        [&](std::string &v) {
            char *c = nullptr;
            const OfxStatus st = g_suites.param->paramGetValue(h_, &c);
            if (c) v = c;
            return st;
        },
        &Kept::s);
}
void Param::setInt(int v) const {
    write<int>([&] { return g_suites.param->paramSetValue(h_, v); }, &Kept::i, v);
}
void Param::setDouble(double v) const {
    write<double>([&] { return g_suites.param->paramSetValue(h_, v); }, &Kept::d, v);
}
void Param::setString(const std::string &v) const {
    write<std::string>([&] { return g_suites.param->paramSetValue(h_, v.c_str()); }, &Kept::s, v);
}

// ---- messages and progress ---------------------------------------------------------------------------------
void postMessage(OfxImageEffectHandle effect, const char *type, const std::string &text) noexcept {
    if (g_suites.message2) {
        g_suites.message2->message(effect, type, "", "%s", text.c_str());
    } else if (g_suites.message1) {
        g_suites.message1->message(effect, type, "", "%s", text.c_str());
    } else {
        std::fprintf(stderr, "%s\n", text.c_str());
    }
}

namespace {
bool hasPersistentMessages() {
    return g_suites.message2 && g_suites.message2->setPersistentMessage;
}
// Without persistent messages a host shows each message as it comes, often in a dialog (Resolve, Vegas): a render
// message there would pop up on every viewer update. So the fallback posts errors and warnings once per node
// until the condition clears, and leaves progress notes ("training 45% ...") to the Status line.
std::mutex g_postedMutex;
std::map<OfxImageEffectHandle, std::string> g_posted;  // the last fallback message posted on each node
}  // namespace

void setPersistentMessage(OfxImageEffectHandle effect, const char *type, const std::string &text) noexcept {
    if (hasPersistentMessages()) {
        g_suites.message2->setPersistentMessage(effect, type, "", "%s", text.c_str());
        return;
    }
    if (std::strcmp(type, kOfxMessageError) != 0 && std::strcmp(type, kOfxMessageWarning) != 0) {
        forgetMessages(effect);  // a progress note: whatever failed before has cleared
        return;
    }
    try {
        std::lock_guard<std::mutex> lock(g_postedMutex);
        auto [it, fresh] = g_posted.try_emplace(effect, text);
        if (!fresh && it->second == text) return;
        it->second = text;
    } catch (...) {
    }
    postMessage(effect, type, text);
}

void clearPersistentMessage(OfxImageEffectHandle effect) noexcept {
    // Only where setPersistentMessage is there too: some hosts (Resolve 14, per openfx-misc's host notes) report
    // the v2 suite with setPersistentMessage null and clearPersistentMessage not a function at all.
    if (hasPersistentMessages()) {
        if (g_suites.message2->clearPersistentMessage) g_suites.message2->clearPersistentMessage(effect);
        return;
    }
    forgetMessages(effect);
}

void forgetMessages(OfxImageEffectHandle effect) noexcept {
    std::lock_guard<std::mutex> lock(g_postedMutex);
    if (effect) g_posted.erase(effect);
    else g_posted.clear();
}

Progress::Progress(OfxImageEffectHandle effect, const std::string &label) : effect_(effect) {
    if (g_suites.progress2) {
        started_ = g_suites.progress2->progressStart(effect, label.c_str(), "") == kOfxStatOK;
    } else if (g_suites.progress1) {
        started_ = g_suites.progress1->progressStart(effect, label.c_str()) == kOfxStatOK;
    }
}

Progress::~Progress() {
    if (!started_) return;
    if (g_suites.progress2) g_suites.progress2->progressEnd(effect_);
    else if (g_suites.progress1) g_suites.progress1->progressEnd(effect_);
}

bool Progress::update(double fraction) {
    if (!started_) return true;
    OfxStatus st = g_suites.progress2 ? g_suites.progress2->progressUpdate(effect_, fraction)
                                      : g_suites.progress1->progressUpdate(effect_, fraction);
    return st != kOfxStatReplyNo;
}

}  // namespace vinpaint::ofx
