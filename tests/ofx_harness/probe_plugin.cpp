// A tiny OFX plugin for testing the harness itself: it reproduces, on request, what an earlier vinpaint bundle did
// wrong, so the tests can show the strict harness refuses it (the real bundle no longer does these things).
// VINPAINT_PROBE in the environment is a comma-separated list of:
//   old-clip-depths   Describe sets "OfxImageEffectPropSupportsMultipleClipDepths" (the misspelling that shipped)
//   wrong-type        Describe sets OfxImageEffectPropSupportsTiles as a string
//   wrong-dimension   Describe sets OfxImageEffectPropSupportsTiles at index 1 (its dimension is 1)
//   identity-yes      IsIdentity answers kOfxStatReplyYes (which is not "identity") instead of kOfxStatOK
//   half              declares half float among its depths
// Otherwise it is a plain General-context filter (Source, optional Mask, Output) without GetClipPreferences, that
// copies the Source to the Output and posts "probe: <clip> <components> <depth> <field>" for every image it gets.
// Property names are written out here (the official strings), independent of vinpaint's header.
#include <cstdlib>
#include <cstring>
#include <string>

#include "ofx_official_names.h"  // the ABI types from vinpaint/ofx_abi.h, the official constants

#define PROBE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

OfxHost *g_host = nullptr;
const OfxPropertySuiteV1 *g_prop = nullptr;
const OfxImageEffectSuiteV1 *g_fx = nullptr;
const OfxMessageSuiteV1 *g_msg = nullptr;

bool probing(const char *what) {
    const char *v = std::getenv("VINPAINT_PROBE");
    if (!v) return false;
    const std::string list = std::string(",") + v + ",";
    return list.find(std::string(",") + what + ",") != std::string::npos;
}

OfxPropertySetHandle propsOf(OfxImageEffectHandle e) {
    OfxPropertySetHandle h = nullptr;
    g_fx->getPropertySet(e, &h);
    return h;
}

std::string str(OfxPropertySetHandle h, const char *name) {
    char *v = nullptr;
    return g_prop->propGetString(h, name, 0, &v) == kOfxStatOK && v ? v : "?";
}

OfxStatus describe(OfxImageEffectHandle e) {
    OfxPropertySetHandle p = propsOf(e);
    OfxStatus st = g_prop->propSetString(p, "OfxPropLabel", 0, "Probe");
    if (st != kOfxStatOK) return st;
    g_prop->propSetString(p, "OfxImageEffectPropSupportedContexts", 0, "OfxImageEffectContextGeneral");
    const char *depths[] = {"OfxBitDepthFloat", "OfxBitDepthShort", "OfxBitDepthByte", "OfxBitDepthHalf"};
    st = g_prop->propSetStringN(p, "OfxImageEffectPropSupportedPixelDepths", probing("half") ? 4 : 3, depths);
    if (st != kOfxStatOK) return st;
    if (probing("old-clip-depths") &&
        (st = g_prop->propSetInt(p, "OfxImageEffectPropSupportsMultipleClipDepths", 0, 0)) != kOfxStatOK)
        return st;
    if (probing("wrong-type") && (st = g_prop->propSetString(p, "OfxImageEffectPropSupportsTiles", 0, "no")) != kOfxStatOK)
        return st;
    if (probing("wrong-dimension") && (st = g_prop->propSetInt(p, "OfxImageEffectPropSupportsTiles", 1, 0)) != kOfxStatOK)
        return st;
    return g_prop->propSetInt(p, "OfxImageEffectPropSupportsTiles", 0, 0);
}

OfxStatus describeInContext(OfxImageEffectHandle e) {
    const char *rgb[] = {"OfxImageComponentRGBA", "OfxImageComponentRGB"};
    const char *mask[] = {"OfxImageComponentAlpha", "OfxImageComponentRGBA", "OfxImageComponentRGB"};
    OfxPropertySetHandle c = nullptr;
    if (g_fx->clipDefine(e, "Source", &c) != kOfxStatOK) return kOfxStatFailed;
    g_prop->propSetStringN(c, "OfxImageEffectPropSupportedComponents", 2, rgb);
    if (g_fx->clipDefine(e, "Mask", &c) != kOfxStatOK) return kOfxStatFailed;
    g_prop->propSetStringN(c, "OfxImageEffectPropSupportedComponents", 3, mask);
    g_prop->propSetInt(c, "OfxImageClipPropOptional", 0, 1);
    g_prop->propSetInt(c, "OfxImageClipPropIsMask", 0, 1);
    if (g_fx->clipDefine(e, "Output", &c) != kOfxStatOK) return kOfxStatFailed;
    g_prop->propSetStringN(c, "OfxImageEffectPropSupportedComponents", 2, rgb);
    return kOfxStatOK;
}

void report(OfxImageEffectHandle e, const char *clip, OfxPropertySetHandle img) {
    const std::string text = std::string("probe: ") + clip + " " + str(img, "OfxImageEffectPropComponents") + " " +
                             str(img, "OfxImageEffectPropPixelDepth") + " " + str(img, "OfxImagePropField");
    if (g_msg) g_msg->message(e, "OfxMessageLog", nullptr, "%s", text.c_str());
}

OfxStatus render(OfxImageEffectHandle e, OfxPropertySetHandle inArgs) {
    double t = 0;
    g_prop->propGetDouble(inArgs, "OfxPropTime", 0, &t);
    OfxImageClipHandle src = nullptr, mask = nullptr, out = nullptr;
    g_fx->clipGetHandle(e, "Source", &src, nullptr);
    g_fx->clipGetHandle(e, "Mask", &mask, nullptr);
    g_fx->clipGetHandle(e, "Output", &out, nullptr);
    OfxPropertySetHandle si = nullptr, mi = nullptr, oi = nullptr;
    if (g_fx->clipGetImage(out, t, nullptr, &oi) != kOfxStatOK) return kOfxStatFailed;
    if (g_fx->clipGetImage(src, t, nullptr, &si) == kOfxStatOK) {
        report(e, "Source", si);
        // Copied row by row when both have the same components (the depth is the same: one depth per instance).
        void *sd = nullptr, *od = nullptr;
        int sb[4], ob[4], srb = 0, orb = 0;
        g_prop->propGetPointer(si, "OfxImagePropData", 0, &sd);
        g_prop->propGetPointer(oi, "OfxImagePropData", 0, &od);
        g_prop->propGetIntN(si, "OfxImagePropBounds", 4, sb);
        g_prop->propGetIntN(oi, "OfxImagePropBounds", 4, ob);
        g_prop->propGetInt(si, "OfxImagePropRowBytes", 0, &srb);
        g_prop->propGetInt(oi, "OfxImagePropRowBytes", 0, &orb);
        const int rowLen = std::abs(srb) < std::abs(orb) ? std::abs(srb) : std::abs(orb);
        if (str(si, "OfxImageEffectPropComponents") == str(oi, "OfxImageEffectPropComponents"))
            for (int y = ob[1]; y < ob[3]; ++y)
                if (y >= sb[1] && y < sb[3])
                    std::memcpy(static_cast<char *>(od) + static_cast<long>(y - ob[1]) * orb,
                                static_cast<char *>(sd) + static_cast<long>(y - sb[1]) * srb, static_cast<std::size_t>(rowLen));
        g_fx->clipReleaseImage(si);
    }
    if (mask && g_fx->clipGetImage(mask, t, nullptr, &mi) == kOfxStatOK) {
        report(e, "Mask", mi);
        g_fx->clipReleaseImage(mi);
    }
    g_fx->clipReleaseImage(oi);
    return kOfxStatOK;
}

OfxStatus mainEntry(const char *action, const void *handle, OfxPropertySetHandle inArgs, OfxPropertySetHandle outArgs) {
    auto e = static_cast<OfxImageEffectHandle>(const_cast<void *>(handle));
    const std::string a = action ? action : "";
    if (a == "OfxActionLoad") {
        g_prop = static_cast<const OfxPropertySuiteV1 *>(g_host->fetchSuite(g_host->host, "OfxPropertySuite", 1));
        g_fx = static_cast<const OfxImageEffectSuiteV1 *>(g_host->fetchSuite(g_host->host, "OfxImageEffectSuite", 1));
        g_msg = static_cast<const OfxMessageSuiteV1 *>(g_host->fetchSuite(g_host->host, "OfxMessageSuite", 1));
        return g_prop && g_fx ? kOfxStatOK : kOfxStatErrMissingHostFeature;
    }
    if (a == "OfxActionDescribe") return describe(e);
    if (a == "OfxImageEffectActionDescribeInContext") return describeInContext(e);
    if (a == "OfxImageEffectActionIsIdentity") {
        if (!probing("identity-yes")) return kOfxStatReplyDefault;
        g_prop->propSetString(outArgs, "OfxPropName", 0, "Source");
        return kOfxStatReplyYes;
    }
    if (a == "OfxImageEffectActionRender") return render(e, inArgs);
    if (a == "OfxActionCreateInstance" || a == "OfxActionDestroyInstance" || a == "OfxActionUnload") return kOfxStatOK;
    return kOfxStatReplyDefault;
}

void setHost(OfxHost *host) { g_host = host; }

OfxPlugin g_plugin = {"OfxImageEffectPluginAPI", 1, "org.vinpaint.HarnessProbe", 1, 0, setHost, mainEntry};

}  // namespace

PROBE_EXPORT int OfxGetNumberOfPlugins(void) { return 1; }
PROBE_EXPORT OfxPlugin *OfxGetPlugin(int nth) { return nth == 0 ? &g_plugin : nullptr; }
