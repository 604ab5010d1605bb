// Exceptions used below the C boundary. Exactly one place (ofx_main.cpp) turns them into an OfxStatus.
#pragma once

#include <stdexcept>
#include <string>

#include "vinpaint/ofx_abi.h"

namespace vinpaint {

// A failure with the OFX status the host should receive. The message is for the user.
class OfxError : public std::runtime_error {
public:
    OfxError(OfxStatus status, const std::string &message) : std::runtime_error(message), status_(status) {}
    OfxStatus status() const noexcept { return status_; }

private:
    OfxStatus status_;
};

// A suite or property the plugin needs is missing from the host.
class MissingHostFeature : public OfxError {
public:
    explicit MissingHostFeature(const std::string &what)
        : OfxError(kOfxStatErrMissingHostFeature, "vinpaint: the host lacks " + what) {}
};

// The daemon could not be reached or answered badly; the text says what to do.
class DaemonError : public std::runtime_error {
public:
    explicit DaemonError(const std::string &message) : std::runtime_error(message) {}
};

}  // namespace vinpaint
