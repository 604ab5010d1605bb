// The ABI check: vinpaint's own OpenFX declarations (include/vinpaint/ofx_abi.h) against an official SDK's
// headers, at compile time. Built only when CMake is given -DVINPAINT_OFX_SDK=<an OpenFX checkout>; the bundle
// depends on it, so any difference fails the build. ofx_abi_list.inc (generated from our header by
// ofx_abi_list.cmake) names every constant, struct, member and typedef we declare; this file says how each is
// compared:
//   constants  same kind (string or integer) and the same value (strings compared character by character)
//   structs    same size and alignment; every member at the same offset with the same type
//   members    function-pointer slots compared by their whole signature, our handle types mapped to theirs
//   typedefs   the same type (after the same mapping)
// Our header is included inside namespace `ours`, so both declarations can live in one translation unit; our
// macro values are captured before the official headers define the same names.
#include <stddef.h>  // before namespace ours: our header's own #include must find the guard already set

#include <cstddef>
#include <type_traits>

namespace ours {
#include "vinpaint/ofx_abi.h"
}  // namespace ours

// ---- our constants' values, captured while the macros are ours ----------------------------------------------
#define VP_HANDLE(name)
#define VP_STRUCT(name)
#define VP_TYPEDEF(name)
#define VP_FIELD(type, member)
#define VP_CONSTANT(name) constexpr auto name##_ours = name;
namespace ours_values {
#include "ofx_abi_list.inc"
}  // namespace ours_values
#undef VP_CONSTANT
#include "ofx_abi_undef.inc"

// ---- the official headers --------------------------------------------------------------------------------------
#include <ofxCore.h>
#include <ofxImageEffect.h>
#include <ofxMemory.h>
#include <ofxMessage.h>
#include <ofxMultiThread.h>
#include <ofxParam.h>
#include <ofxProgress.h>
#include <ofxProperty.h>

namespace vp_check {

// Equal kind and value: two strings with the same characters, or two integers with the same value.
template <class A, class B> constexpr bool same(A a, B b) {
    if constexpr (std::is_same_v<A, const char *> && std::is_same_v<B, const char *>) {
        for (; *a && *a == *b; ++a, ++b) {
        }
        return *a == *b;
    } else if constexpr (std::is_integral_v<A> && std::is_integral_v<B>) {
        return a == b;
    } else {
        return false;
    }
}

// Our types -> the official ones: pointers, const, function types (variadic too) map part by part; the
// structs and opaque handle targets are specialised below, one per declaration in the list.
template <class T> struct Map { using type = T; };
template <class T> using map_t = typename Map<T>::type;
template <class T> struct Map<T *> { using type = map_t<T> *; };
template <class T> struct Map<const T> { using type = const map_t<T>; };
template <class R, class... A> struct Map<R(A...)> { using type = map_t<R>(map_t<A>...); };
template <class R, class... A> struct Map<R(A..., ...)> { using type = map_t<R>(map_t<A>..., ...); };

#undef VP_HANDLE
#undef VP_STRUCT
#undef VP_TYPEDEF
#undef VP_FIELD
#define VP_HANDLE(name)                                                                                 \
    static_assert(std::is_pointer_v<ours::name> && std::is_pointer_v<::name>, #name " is a pointer type"); \
    template <> struct Map<std::remove_pointer_t<ours::name>> { using type = std::remove_pointer_t<::name>; };
#define VP_STRUCT(name) \
    template <> struct Map<ours::name> { using type = ::name; };
#define VP_TYPEDEF(name)
#define VP_FIELD(type, member)
#define VP_CONSTANT(name)
#include "ofx_abi_list.inc"

#undef VP_HANDLE
#undef VP_STRUCT
#undef VP_TYPEDEF
#undef VP_FIELD
#undef VP_CONSTANT
#define VP_HANDLE(name)
#define VP_STRUCT(name)                                                                           \
    static_assert(sizeof(ours::name) == sizeof(::name), "size of " #name " differs from the official header"); \
    static_assert(alignof(ours::name) == alignof(::name), "alignment of " #name " differs from the official header");
#define VP_TYPEDEF(name) \
    static_assert(std::is_same_v<map_t<ours::name>, ::name>, "typedef " #name " differs from the official header");
#define VP_FIELD(type, member)                                                                    \
    static_assert(offsetof(ours::type, member) == offsetof(::type, member),                       \
                  "offset of " #type "::" #member " differs from the official header");          \
    static_assert(std::is_same_v<map_t<decltype(ours::type::member)>, decltype(::type::member)>, \
                  "type of " #type "::" #member " differs from the official header");
#define VP_CONSTANT(name) \
    static_assert(same(ours_values::name##_ours, name), #name " differs from the official header");
#include "ofx_abi_list.inc"

}  // namespace vp_check

// Something for the object file to hold; the checks above are all compile time.
extern "C" int vinpaint_ofx_abi_checked(void) { return 1; }
