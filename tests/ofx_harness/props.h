// The harness's own knowledge of OpenFX properties: every name it accepts, with its type and dimension, written
// here as literal strings (the official values) and NOT taken from vinpaint/ofx_abi.h. A host that used the
// plugin's header for its names could never notice a wrong name in that header; this table is independent.
//
// The harness behaves like the HostSupport library's property sets: a set holds a fixed list of properties (made
// by the host with their defaults); a plugin that sets or gets a name the set does not hold gets
// kOfxStatErrUnknown, a value of the wrong type kOfxStatErrValue, an index outside the dimension
// kOfxStatErrBadIndex.
#pragma once

#include <string>
#include <vector>

namespace harness {

enum class PropType { Int, Double, String, Pointer, ParamValue };  // ParamValue: the parameter's own type

struct PropSpec {
    const char *name;
    PropType type;
    int dimension;  // 0: any number of values
};

// The spec of a property name; null when the name is not an OpenFX property this host knows. Names ending in
// '_' (OfxImageClipPropComponents_ ...) match any clip name appended.
const PropSpec *findPropSpec(const std::string &name);

// The properties a host makes on each kind of set, before the plugin sees it.
enum class SetKind { EffectDescriptor, ClipDescriptor, ParamDescriptor, Page };
std::vector<std::string> propsOf(SetKind kind, const std::string &paramType = "");

}  // namespace harness
