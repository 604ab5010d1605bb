// The OFX entry points and the one place where the C boundary is crossed: every exception is caught here and
// mapped to an OfxStatus (bad_alloc -> memory error, a missing host feature -> its status, anything else ->
// failed), with the reason shown through the message suite when there is an instance to show it on.
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>

#include "effect.h"
#include "frame_cache.h"
#include "ofx_host.h"
#include "transport.h"
#include "vinpaint/ofx_abi.h"

#define VINPAINT_EXPORT extern "C" __attribute__((visibility("default")))

namespace vinpaint {
namespace {

bool isInstanceAction(const char *action) {
    return std::strcmp(action, kOfxImageEffectActionRender) == 0 ||
           std::strcmp(action, kOfxActionCreateInstance) == 0 ||
           std::strcmp(action, kOfxActionInstanceChanged) == 0 ||
           std::strcmp(action, kOfxImageEffectActionIsIdentity) == 0 ||
           std::strcmp(action, kOfxImageEffectActionGetClipPreferences) == 0 ||
           std::strcmp(action, kOfxImageEffectActionBeginSequenceRender) == 0 ||
           std::strcmp(action, kOfxImageEffectActionEndSequenceRender) == 0;
}

// Loads not yet unloaded. HostSupport's plug-in cache loads, describes and unloads the binary again on a handle of
// its own when a re-scan finds the bundle changed, while nodes of it live: only the last Unload ends what they use
// (before, 2026-12-03: every later render, Train and destroy of a live node answered kOfxStatErrMissingHostFeature).
// Load, Unload and the re-fetch below, one at a time (renders on other threads only read the suites).
int g_loads = 0;
std::mutex g_loadMutex;

OfxStatus dispatch(const char *action, OfxImageEffectHandle effect, ofx::PropSet inArgs, ofx::PropSet outArgs) {
    if (std::strcmp(action, kOfxActionLoad) == 0) {
        std::lock_guard<std::mutex> lock(g_loadMutex);
        if (g_loads == 0 || !ofx::suites().prop) ofx::fetchSuites();  // a second Load: the suites in use stay
        ++g_loads;
        return kOfxStatOK;
    }
    if (std::strcmp(action, kOfxActionUnload) == 0) {
        std::lock_guard<std::mutex> lock(g_loadMutex);
        if (g_loads > 0 && --g_loads > 0) return kOfxStatOK;
        FrameCache::global().clear();
        net::shutdownContext();
        ofx::forgetMessages(nullptr);
        ofx::forgetSuites();
        return kOfxStatOK;
    }
    // HostSupport also goes on after an Unload without loading again (ImageEffectPlugin::unload keeps its handle, and
    // the next node it makes sends no Load): the suites are fetched again from the host it gave.
    if (!ofx::suites().prop && ofx::suites().host) {
        std::lock_guard<std::mutex> lock(g_loadMutex);
        if (!ofx::suites().prop) {
            ofx::fetchSuites();  // a host without them: its MissingHostFeature, said
            ++g_loads;
        }
    }
    if (!ofx::suites().prop) return kOfxStatErrMissingHostFeature;  // no host given, or Load failed
    if (std::strcmp(action, kOfxActionDescribe) == 0) {
        describe(effect);
        return kOfxStatOK;
    }
    if (std::strcmp(action, kOfxImageEffectActionDescribeInContext) == 0) {
        describeInContext(effect, inArgs);
        return kOfxStatOK;
    }
    if (std::strcmp(action, kOfxActionCreateInstance) == 0) {
        createInstance(effect);
        return kOfxStatOK;
    }
    if (std::strcmp(action, kOfxActionDestroyInstance) == 0) {
        destroyInstance(effect);
        return kOfxStatOK;
    }
    if (std::strcmp(action, kOfxActionInstanceChanged) == 0) return instanceChanged(effect, inArgs);
    if (std::strcmp(action, kOfxImageEffectActionIsIdentity) == 0) return isIdentity(effect, inArgs, outArgs);
    if (std::strcmp(action, kOfxImageEffectActionGetClipPreferences) == 0) return clipPreferences(effect, outArgs);
    if (std::strcmp(action, kOfxImageEffectActionGetRegionOfDefinition) == 0)
        return regionOfDefinition(effect, inArgs, outArgs);
    if (std::strcmp(action, kOfxImageEffectActionRender) == 0) return render(effect, inArgs);
    if (std::strcmp(action, kOfxImageEffectActionBeginSequenceRender) == 0) return beginSequenceRender(effect, inArgs);
    if (std::strcmp(action, kOfxImageEffectActionEndSequenceRender) == 0) return endSequenceRender(effect);
    if (std::strcmp(action, kOfxActionPurgeCaches) == 0) {
        FrameCache::global().clear();
        return kOfxStatOK;
    }
    return kOfxStatReplyDefault;
}

void report(const char *action, OfxImageEffectHandle effect, const char *text) noexcept {
    const bool onTheNode = effect && ofx::suites().prop && isInstanceAction(action);
    if (onTheNode) {
        if (std::strcmp(action, kOfxImageEffectActionRender) == 0)
            ofx::setPersistentMessage(effect, kOfxMessageError, text);
        else
            ofx::postMessage(effect, kOfxMessageError, text);
    }
    // A node that could not be created may have no panel to show a message on: the host's log gets it too.
    if (!onTheNode || std::strcmp(action, kOfxActionCreateInstance) == 0)
        std::fprintf(stderr, "vinpaint (%s): %s\n", action, text);
}

OfxStatus mainEntry(const char *action, const void *handle, OfxPropertySetHandle inArgs,
                    OfxPropertySetHandle outArgs) noexcept {
    auto effect = static_cast<OfxImageEffectHandle>(const_cast<void *>(handle));
    if (!action) return kOfxStatErrValue;
    try {
        return dispatch(action, effect, ofx::PropSet(inArgs), ofx::PropSet(outArgs));
    } catch (const std::bad_alloc &) {
        report(action, effect, "vinpaint: out of memory");
        return kOfxStatErrMemory;
    } catch (const OfxError &e) {
        report(action, effect, e.what());
        return e.status();
    } catch (const std::exception &e) {
        report(action, effect, e.what());
        return kOfxStatFailed;
    } catch (...) {
        report(action, effect, "vinpaint: unexpected error");
        return kOfxStatFailed;
    }
}

void setHost(OfxHost *host) { ofx::setHost(host); }

OfxPlugin g_plugin = {kOfxImageEffectPluginApi, 1, kPluginIdentifier, kVersionMajor, kVersionMinor, setHost, mainEntry};

}  // namespace
}  // namespace vinpaint

VINPAINT_EXPORT int OfxGetNumberOfPlugins(void) { return 1; }

VINPAINT_EXPORT OfxPlugin *OfxGetPlugin(int nth) { return nth == 0 ? &vinpaint::g_plugin : nullptr; }
