// Minimal test macros for the plugin's ctest programs (no test framework is installed here).
#pragma once

#include <cstdio>
#include <string>

namespace vptest {
inline int &failures() {
    static int n = 0;
    return n;
}
inline int &checks() {
    static int n = 0;
    return n;
}
}  // namespace vptest

#define CHECK(cond)                                                                   \
    do {                                                                              \
        ++vptest::checks();                                                           \
        if (!(cond)) {                                                                \
            ++vptest::failures();                                                     \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                             \
    } while (0)

#define CHECK_MSG(cond, msg)                                                                              \
    do {                                                                                                  \
        ++vptest::checks();                                                                               \
        if (!(cond)) {                                                                                    \
            ++vptest::failures();                                                                         \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s (%s)\n", __FILE__, __LINE__, #cond,             \
                         std::string(msg).c_str());                                                      \
        }                                                                                                 \
    } while (0)

#define TEST_MAIN_END()                                                                          \
    do {                                                                                         \
        std::printf("%d checks, %d failures\n", vptest::checks(), vptest::failures());           \
        return vptest::failures() ? 1 : 0;                                                       \
    } while (0)
