// Reading and writing .npy arrays (format 1.0, little-endian u1/u2/f4, C order) for the harness's clips and
// rendered frames. Written for the harness; no image library is needed in C++.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace harness {

struct NpyArray {
    std::string dtype;             // "u1", "u2", "f2" or "f4"
    std::vector<std::size_t> shape;
    std::vector<unsigned char> data;
    std::size_t itemsize() const { return dtype == "u1" ? 1 : dtype == "u2" || dtype == "f2" ? 2 : 4; }
    std::size_t count() const {
        std::size_t n = 1;
        for (auto s : shape) n *= s;
        return n;
    }
};

NpyArray readNpy(const std::string &path);  // throws std::runtime_error
void writeNpy(const std::string &path, const NpyArray &a);

}  // namespace harness
