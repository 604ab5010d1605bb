// The host's suites, fetched once when the host is set, and thin C++ wrappers over the property, parameter and
// image calls. Wrappers throw OfxError; nothing here lets an exception out to C (ofx_main.cpp catches).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "errors.h"
#include "vinpaint/ofx_abi.h"

namespace vinpaint::ofx {

struct Suites {
    OfxHost *host = nullptr;
    const OfxPropertySuiteV1 *prop = nullptr;        // mandatory
    const OfxImageEffectSuiteV1 *effect = nullptr;   // mandatory
    const OfxParameterSuiteV1 *param = nullptr;      // mandatory
    const OfxMessageSuiteV1 *message1 = nullptr;     // mandatory unless v2 is there
    const OfxMessageSuiteV2 *message2 = nullptr;     // optional: persistent messages
    const OfxProgressSuiteV1 *progress1 = nullptr;   // optional
    const OfxProgressSuiteV2 *progress2 = nullptr;   // optional
    const OfxMultiThreadSuiteV1 *threads = nullptr;  // optional: row-parallel pixel loops
    const OfxMemorySuiteV1 *memory = nullptr;        // optional: scratch buffers the host can account for
};

// The suites of the current host; valid between setHost/Load and Unload.
const Suites &suites();
void setHost(OfxHost *host) noexcept;
// Fetches and checks the suites (called from the Load action); throws MissingHostFeature.
void fetchSuites();
void forgetSuites() noexcept;
// Summary of what the host offers, for logs and the docs: "property v1, image effect v1, ...".
std::string describeSuites();

void check(OfxStatus status, const char *what);

class PropSet {
public:
    PropSet() = default;
    explicit PropSet(OfxPropertySetHandle handle) : h_(handle) {}
    OfxPropertySetHandle handle() const { return h_; }
    explicit operator bool() const { return h_ != nullptr; }

    int getInt(const char *name, int index = 0) const;
    double getDouble(const char *name, int index = 0) const;
    std::string getString(const char *name, int index = 0) const;
    void *getPointer(const char *name, int index = 0) const;
    int dimension(const char *name) const;  // 0 when the property is unknown
    std::optional<int> tryInt(const char *name, int index = 0) const noexcept;
    std::optional<double> tryDouble(const char *name, int index = 0) const noexcept;
    std::optional<std::string> tryString(const char *name, int index = 0) const noexcept;

    void setInt(const char *name, int value, int index = 0) const;
    void setDouble(const char *name, double value, int index = 0) const;
    void setString(const char *name, const std::string &value, int index = 0) const;
    void setPointer(const char *name, void *value, int index = 0) const;
    void setStrings(const char *name, const std::vector<std::string> &values) const;
    // For properties a host may not know (newer API): failure is ignored.
    void trySetInt(const char *name, int value, int index = 0) const noexcept;
    void trySetString(const char *name, const std::string &value, int index = 0) const noexcept;

private:
    OfxPropertySetHandle h_ = nullptr;
};

// A fetched image, released when this goes out of scope.
class Image {
public:
    Image() = default;
    explicit Image(OfxPropertySetHandle handle) : h_(handle) {}
    Image(const Image &) = delete;
    Image &operator=(const Image &) = delete;
    Image(Image &&other) noexcept : h_(other.h_) { other.h_ = nullptr; }
    Image &operator=(Image &&other) noexcept;
    ~Image() { release(); }
    void release() noexcept;
    explicit operator bool() const { return h_ != nullptr; }
    PropSet props() const { return PropSet(h_); }

private:
    OfxPropertySetHandle h_ = nullptr;
};

class Clip {
public:
    Clip() = default;
    Clip(OfxImageClipHandle handle, OfxPropertySetHandle props) : h_(handle), props_(props) {}
    explicit operator bool() const { return h_ != nullptr; }
    PropSet props() const { return props_; }
    bool connected() const;
    // Image at time t (full region of definition when region is null); empty when the host has none there.
    Image fetch(OfxTime t, const OfxRectD *region = nullptr) const;
    OfxRectD regionOfDefinition(OfxTime t) const;
    OfxRangeD frameRange() const;

private:
    OfxImageClipHandle h_ = nullptr;
    PropSet props_;
};

class Param {
public:
    Param() = default;
    Param(OfxParamHandle handle, OfxPropertySetHandle props, std::string name = {});
    // A String parameter the host did not make: its value lives here, shared by copies, for the node's life. A
    // parameter whose value the host cannot give or take (kOfxStatErrMissingHostFeature) is kept the same way
    // from then on, starting at its default.
    static Param unhosted(std::string name, std::string initial);
    explicit operator bool() const { return h_ != nullptr || kept_ != nullptr; }
    PropSet props() const { return props_; }
    int getInt() const;  // integer, boolean and choice parameters
    int getIntAt(OfxTime t) const;
    double getDouble() const;
    double getDoubleAt(OfxTime t) const;
    std::string getString() const;
    void setInt(int v) const;
    void setDouble(double v) const;
    void setString(const std::string &v) const;
    // Whether the node keeps this parameter's value itself (the host could not give or take it).
    bool keptByNode() const;
    // From now on the node keeps this Integer-like parameter itself, at its default (a host whose answers for it
    // are not stored values); said once on the host's stderr.
    void keepAtDefault() const;
    // An Integer-like parameter read as other than its default has that value written back; where the host refuses
    // the write as a feature it lacks, its reads were no stored values (HostSupport's example host answers every
    // Boolean read with true), and the node keeps the default. Only from InstanceChanged, the spec's place for
    // writes; a real host sees its own value again.
    void keepUnlessWritable() const;

private:
    void checkCall(OfxStatus status, const char *call) const;  // a refusal names this parameter
    struct Kept {
        std::mutex mutex;
        bool active = false;
        bool answered = false;  // the host gave or took a value once: a later refusal is an error, not a stub
        int i = 0;
        double d = 0;
        std::string s;
    };
    template <class T> void keep(const char *call) const;
    template <class T> bool startKeeping(OfxStatus st, const char *call) const;
    template <class T, class Get> T read(Get get, T Kept::*slot) const;
    template <class T, class Set> void write(Set set, T Kept::*slot, const T &v) const;
    OfxParamHandle h_ = nullptr;
    PropSet props_;
    std::string name_;
    std::shared_ptr<Kept> kept_;  // shared by the copies of one parameter
};

// Message helpers that never throw: they are used while reporting other failures.
void postMessage(OfxImageEffectHandle effect, const char *type, const std::string &text) noexcept;
// Persistent message when the host has the v2 message suite. Otherwise a plain message, for errors and warnings
// only and once per node until cleared (such hosts often show each message in a dialog).
void setPersistentMessage(OfxImageEffectHandle effect, const char *type, const std::string &text) noexcept;
void clearPersistentMessage(OfxImageEffectHandle effect) noexcept;
// Drops what the plain-message fallback remembers of a node (DestroyInstance), or of all (null: Unload).
void forgetMessages(OfxImageEffectHandle effect) noexcept;

// The host's progress bar with cancel, ended on destruction. A no-op when the host lacks the suite.
class Progress {
public:
    Progress(OfxImageEffectHandle effect, const std::string &label);
    ~Progress();
    Progress(const Progress &) = delete;
    Progress &operator=(const Progress &) = delete;
    // Returns false when the user asked to cancel.
    bool update(double fraction);

private:
    OfxImageEffectHandle effect_;
    bool started_ = false;
};

}  // namespace vinpaint::ofx
