#include "npy.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

namespace harness {

NpyArray readNpy(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path);
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (all.size() < 10 || all.compare(0, 6, "\x93NUMPY") != 0) throw std::runtime_error(path + " is not a .npy file");
    const int major = static_cast<unsigned char>(all[6]);
    std::size_t headerLen, offset;
    if (major == 1) {
        headerLen = static_cast<unsigned char>(all[8]) | (static_cast<unsigned char>(all[9]) << 8);
        offset = 10;
    } else {
        headerLen = static_cast<std::uint32_t>(static_cast<unsigned char>(all[8])) |
                    (static_cast<std::uint32_t>(static_cast<unsigned char>(all[9])) << 8) |
                    (static_cast<std::uint32_t>(static_cast<unsigned char>(all[10])) << 16) |
                    (static_cast<std::uint32_t>(static_cast<unsigned char>(all[11])) << 24);
        offset = 12;
    }
    const std::string header = all.substr(offset, headerLen);
    NpyArray a;
    auto d = header.find("'descr':");
    auto q1 = header.find('\'', d + 8);
    auto q2 = header.find('\'', q1 + 1);
    std::string descr = header.substr(q1 + 1, q2 - q1 - 1);
    if (descr == "|u1" || descr == "<u1") a.dtype = "u1";
    else if (descr == "<u2") a.dtype = "u2";
    else if (descr == "<f4") a.dtype = "f4";
    else if (descr == "<f2") a.dtype = "f2";
    else if (descr == "|b1") a.dtype = "u1";  // bool masks: 0/1 bytes
    else throw std::runtime_error(path + ": dtype " + descr + " is not supported (u1, u2, f4)");
    if (header.find("'fortran_order': True") != std::string::npos) throw std::runtime_error(path + ": Fortran order");
    auto s = header.find("'shape':");
    auto p1 = header.find('(', s);
    auto p2 = header.find(')', p1);
    std::stringstream shape(header.substr(p1 + 1, p2 - p1 - 1));
    for (std::string tok; std::getline(shape, tok, ',');) {
        tok.erase(0, tok.find_first_not_of(' '));
        if (!tok.empty()) a.shape.push_back(std::stoull(tok));
    }
    const std::size_t bytes = a.count() * a.itemsize();
    if (all.size() < offset + headerLen + bytes) throw std::runtime_error(path + " is truncated");
    a.data.assign(all.begin() + offset + headerLen, all.begin() + offset + headerLen + bytes);
    if (descr == "|b1")
        for (auto &b : a.data) b = b ? 255 : 0;
    return a;
}

void writeNpy(const std::string &path, const NpyArray &a) {
    std::string shape = "(";
    for (std::size_t i = 0; i < a.shape.size(); ++i) shape += std::to_string(a.shape[i]) + (a.shape.size() == 1 || i + 1 < a.shape.size() ? "," : "");
    shape += ")";
    const std::string descr = a.dtype == "u1" ? "|u1" : a.dtype == "u2" ? "<u2" : a.dtype == "f2" ? "<f2" : "<f4";
    std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    const std::size_t total = 10 + header.size() + 1;
    header += std::string((64 - total % 64) % 64, ' ') + "\n";
    std::ofstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot write " + path);
    f.write("\x93NUMPY\x01\x00", 8);
    const unsigned char len[2] = {static_cast<unsigned char>(header.size() & 0xff),
                                  static_cast<unsigned char>(header.size() >> 8)};
    f.write(reinterpret_cast<const char *>(len), 2);
    f << header;
    f.write(reinterpret_cast<const char *>(a.data.data()), static_cast<std::streamsize>(a.data.size()));
}

}  // namespace harness
