// SHA-256 (FIPS 180-4), written for the protocol's content hash (SPEC.md section 5).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace vinpaint {

class Sha256 {
public:
    using Digest = std::array<std::uint8_t, 32>;
    Sha256() { reset(); }
    void reset();
    void update(const void *data, std::size_t size);
    void update(const std::string &s) { update(s.data(), s.size()); }
    Digest finish();  // the object is reset afterwards

    static Digest of(const void *data, std::size_t size);
    static std::string hex(const Digest &d);

    // The x86 SHA extensions are used when the CPU has them (several times faster on 1080p float frames);
    // tests switch them off to check both paths give the same digests.
    static bool accelerationAvailable();
    static void setAccelerated(bool on);

private:
    void blocks(const std::uint8_t *p, std::size_t n);
    std::uint32_t h_[8];
    std::uint8_t buf_[64];
    std::size_t used_ = 0;
    std::uint64_t total_ = 0;
};

}  // namespace vinpaint
