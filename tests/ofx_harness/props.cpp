#include "props.h"

#include <cstring>

namespace harness {

namespace {
constexpr PropType I = PropType::Int, D = PropType::Double, S = PropType::String, P = PropType::Pointer,
                   V = PropType::ParamValue;

// Types and dimensions as the OpenFX API documents them (bool and int are Int; enum is String).
const PropSpec kSpecs[] = {
    // core
    {"OfxPropAPIVersion", I, 0},
    {"OfxPropTime", D, 1},
    {"OfxPropIsInteractive", I, 1},
    {"OfxPluginPropFilePath", S, 1},
    {"OfxPropInstanceData", P, 1},
    {"OfxPropType", S, 1},
    {"OfxPropName", S, 1},
    {"OfxPropVersion", I, 0},
    {"OfxPropVersionLabel", S, 1},
    {"OfxPropPluginDescription", S, 1},
    {"OfxPropLabel", S, 1},
    {"OfxPropIcon", S, 2},
    {"OfxPropShortLabel", S, 1},
    {"OfxPropLongLabel", S, 1},
    {"OfxPropChangeReason", S, 1},
    {"OfxPropEffectInstance", P, 1},
    {"OfxPropHostOSHandle", P, 1},
    // image effect: host and plugin descriptions
    {"OfxImageEffectPropSupportedContexts", S, 0},
    {"OfxImageEffectPropPluginHandle", P, 1},
    {"OfxImageEffectHostPropIsBackground", I, 1},
    {"OfxImageEffectPluginPropSingleInstance", I, 1},
    {"OfxImageEffectPluginRenderThreadSafety", S, 1},
    {"OfxImageEffectPluginPropHostFrameThreading", I, 1},
    {"OfxImageEffectPropMultipleClipDepths", I, 1},
    {"OfxImageEffectPropSupportsMultipleClipPARs", I, 1},
    {"OfxImageEffectPropClipPreferencesSlaveParam", S, 0},
    {"OfxImageEffectPropSetableFrameRate", I, 1},
    {"OfxImageEffectPropSetableFielding", I, 1},
    {"OfxImageEffectInstancePropSequentialRender", I, 1},
    {"OfxImageEffectPropSequentialRenderStatus", I, 1},
    {"OfxImageEffectPropInteractiveRenderStatus", I, 1},
    {"OfxImageEffectPluginPropGrouping", S, 1},
    {"OfxImageEffectPropSupportsOverlays", I, 1},
    {"OfxImageEffectPluginPropOverlayInteractV1", P, 1},
    {"OfxImageEffectPropSupportsMultiResolution", I, 1},
    {"OfxImageEffectPropSupportsTiles", I, 1},
    {"OfxImageEffectPropTemporalClipAccess", I, 1},
    {"OfxImageEffectPropContext", S, 1},
    {"OfxImageEffectPropPixelDepth", S, 1},
    {"OfxImageEffectPropComponents", S, 1},
    {"OfxImageEffectPropSupportedPixelDepths", S, 0},
    {"OfxImageEffectPropSupportedComponents", S, 0},
    {"OfxImageEffectPluginPropFieldRenderTwiceAlways", I, 1},
    {"OfxImageEffectPropFrameRate", D, 1},
    {"OfxImageEffectPropUnmappedFrameRate", D, 1},
    {"OfxImageEffectPropFrameStep", D, 1},
    {"OfxImageEffectPropFrameRange", D, 2},
    {"OfxImageEffectPropUnmappedFrameRange", D, 2},
    {"OfxImageEffectFrameVarying", I, 1},
    {"OfxImageEffectPropRenderScale", D, 2},
    {"OfxImageEffectPropRenderQualityDraft", I, 1},
    {"OfxImageEffectPropProjectExtent", D, 2},
    {"OfxImageEffectPropProjectSize", D, 2},
    {"OfxImageEffectPropProjectOffset", D, 2},
    {"OfxImageEffectPropPixelAspectRatio", D, 1},
    {"OfxImageEffectInstancePropEffectDuration", D, 1},
    {"OfxImageEffectPropFieldToRender", S, 1},
    {"OfxImageEffectPropRegionOfDefinition", D, 4},
    {"OfxImageEffectPropRegionOfInterest", D, 4},
    {"OfxImageEffectPropRenderWindow", I, 4},
    {"OfxImageEffectPropPreMultiplication", S, 1},
    // clips
    {"OfxImageClipPropOptional", I, 1},
    {"OfxImageClipPropIsMask", I, 1},
    {"OfxImageClipPropConnected", I, 1},
    {"OfxImageClipPropContinuousSamples", I, 1},
    {"OfxImageClipPropUnmappedPixelDepth", S, 1},
    {"OfxImageClipPropUnmappedComponents", S, 1},
    {"OfxImageClipPropFieldOrder", S, 1},
    {"OfxImageClipPropFieldExtraction", S, 1},
    // clip preferences (the clip's name is appended)
    {"OfxImageClipPropComponents_", S, 1},
    {"OfxImageClipPropDepth_", S, 1},
    {"OfxImageClipPropPAR_", D, 1},
    // images
    {"OfxImagePropData", P, 1},
    {"OfxImagePropBounds", I, 4},
    {"OfxImagePropRegionOfDefinition", I, 4},
    {"OfxImagePropRowBytes", I, 1},
    {"OfxImagePropPixelAspectRatio", D, 1},
    {"OfxImagePropField", S, 1},
    {"OfxImagePropUniqueIdentifier", S, 1},
    // parameters
    {"OfxParamPropType", S, 1},
    {"OfxParamPropAnimates", I, 1},
    {"OfxParamPropCanUndo", I, 1},
    {"OfxParamPropIsAnimating", I, 1},
    {"OfxParamPropPluginMayWrite", I, 1},
    {"OfxParamPropPersistant", I, 1},
    {"OfxParamPropEvaluateOnChange", I, 1},
    {"OfxParamPropSecret", I, 1},
    {"OfxParamPropScriptName", S, 1},
    {"OfxParamPropCacheInvalidation", S, 1},
    {"OfxParamPropHint", S, 1},
    {"OfxParamPropDefault", V, 0},
    {"OfxParamPropPageChild", S, 0},
    {"OfxParamPropParent", S, 1},
    {"OfxParamPropGroupOpen", I, 1},
    {"OfxParamPropEnabled", I, 1},
    {"OfxParamPropDataPtr", P, 1},
    {"OfxParamPropChoiceOption", S, 0},
    {"OfxParamPropMin", V, 0},
    {"OfxParamPropMax", V, 0},
    {"OfxParamPropDisplayMin", V, 0},
    {"OfxParamPropDisplayMax", V, 0},
    {"OfxParamPropIncrement", D, 1},
    {"OfxParamPropDigits", I, 1},
    {"OfxParamPropIsAutoKeying", I, 1},
    {"OfxParamPropStringMode", S, 1},
    {"OfxParamPropStringFilePathExists", I, 1},
    {"OfxParamHostPropMaxParameters", I, 1},
    {"OfxParamHostPropMaxPages", I, 1},
};
}  // namespace

const PropSpec *findPropSpec(const std::string &name) {
    for (const PropSpec &s : kSpecs) {
        const std::size_t n = std::strlen(s.name);
        if (name == s.name) return &s;
        if (n > 0 && s.name[n - 1] == '_' && name.size() > n && name.compare(0, n, s.name) == 0) return &s;
    }
    return nullptr;
}

std::vector<std::string> propsOf(SetKind kind, const std::string &paramType) {
    switch (kind) {
        case SetKind::EffectDescriptor:
            return {"OfxPropType", "OfxPropLabel", "OfxPropShortLabel", "OfxPropLongLabel", "OfxPropVersion",
                    "OfxPropVersionLabel", "OfxPropPluginDescription", "OfxPluginPropFilePath",
                    "OfxImageEffectPropSupportedContexts", "OfxImageEffectPluginPropGrouping",
                    "OfxImageEffectPluginPropSingleInstance", "OfxImageEffectPluginRenderThreadSafety",
                    "OfxImageEffectPluginPropHostFrameThreading", "OfxImageEffectPluginPropOverlayInteractV1",
                    "OfxImageEffectPropSupportsMultiResolution", "OfxImageEffectPropSupportsTiles",
                    "OfxImageEffectPropTemporalClipAccess", "OfxImageEffectPropSupportedPixelDepths",
                    "OfxImageEffectPluginPropFieldRenderTwiceAlways", "OfxImageEffectPropMultipleClipDepths",
                    "OfxImageEffectPropSupportsMultipleClipPARs", "OfxImageEffectPropClipPreferencesSlaveParam"};
        case SetKind::ClipDescriptor:
            return {"OfxPropType", "OfxPropName", "OfxPropLabel", "OfxPropShortLabel", "OfxPropLongLabel",
                    "OfxImageEffectPropSupportedComponents", "OfxImageEffectPropTemporalClipAccess",
                    "OfxImageClipPropOptional", "OfxImageClipPropFieldExtraction", "OfxImageClipPropIsMask",
                    "OfxImageEffectPropSupportsTiles"};
        case SetKind::Page:
            return {"OfxPropType", "OfxPropName", "OfxPropLabel", "OfxPropShortLabel", "OfxPropLongLabel",
                    "OfxParamPropType", "OfxParamPropSecret", "OfxParamPropHint", "OfxParamPropScriptName",
                    "OfxParamPropParent", "OfxParamPropEnabled", "OfxParamPropDataPtr", "OfxParamPropPageChild"};
        case SetKind::ParamDescriptor: {
            std::vector<std::string> p = {"OfxPropType", "OfxPropName", "OfxPropLabel", "OfxPropShortLabel",
                                          "OfxPropLongLabel", "OfxParamPropType", "OfxParamPropSecret",
                                          "OfxParamPropHint", "OfxParamPropScriptName", "OfxParamPropParent",
                                          "OfxParamPropEnabled", "OfxParamPropDataPtr"};
            const bool button = paramType == "OfxParamTypePushButton", group = paramType == "OfxParamTypeGroup";
            if (group) p.push_back("OfxParamPropGroupOpen");
            if (!button && !group) {
                for (const char *n : {"OfxParamPropDefault", "OfxParamPropAnimates", "OfxParamPropIsAnimating",
                                      "OfxParamPropIsAutoKeying", "OfxParamPropPersistant",
                                      "OfxParamPropEvaluateOnChange", "OfxParamPropPluginMayWrite",
                                      "OfxParamPropCanUndo", "OfxParamPropCacheInvalidation"})
                    p.push_back(n);
            }
            if (paramType == "OfxParamTypeChoice") p.push_back("OfxParamPropChoiceOption");
            if (paramType == "OfxParamTypeString") {
                p.push_back("OfxParamPropStringMode");
                p.push_back("OfxParamPropStringFilePathExists");
            }
            if (paramType == "OfxParamTypeInteger" || paramType == "OfxParamTypeDouble") {
                for (const char *n : {"OfxParamPropMin", "OfxParamPropMax", "OfxParamPropDisplayMin", "OfxParamPropDisplayMax"})
                    p.push_back(n);
            }
            if (paramType == "OfxParamTypeDouble") {
                p.push_back("OfxParamPropIncrement");
                p.push_back("OfxParamPropDigits");
            }
            return p;
        }
    }
    return {};
}

}  // namespace harness
