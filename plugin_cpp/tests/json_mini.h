// A small JSON reader for the golden vectors' description (tests only). Numbers with a fraction or exponent
// become floats, others ints, as vectors.json promises; object key order is kept.
#pragma once

#include <cctype>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "codec.h"

namespace vptest {

class JsonReader {
public:
    explicit JsonReader(const std::string &text) : s_(text) {}
    vinpaint::proto::Value parse() {
        auto v = value();
        ws();
        if (i_ != s_.size()) throw std::runtime_error("json: trailing characters");
        return v;
    }

private:
    using Value = vinpaint::proto::Value;
    void ws() {
        while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    char peek() {
        ws();
        if (i_ >= s_.size()) throw std::runtime_error("json: unexpected end");
        return s_[i_];
    }
    void expect(char c) {
        if (peek() != c) throw std::runtime_error(std::string("json: expected ") + c);
        ++i_;
    }
    bool literal(const char *word) {
        const std::string w(word);
        if (s_.compare(i_, w.size(), w) == 0) {
            i_ += w.size();
            return true;
        }
        return false;
    }
    Value value() {
        const char c = peek();
        if (c == '{') return object();
        if (c == '[') return array();
        if (c == '"') return Value(string());
        if (literal("true")) return Value(true);
        if (literal("false")) return Value(false);
        if (literal("null")) return Value();
        return number();
    }
    Value object() {
        expect('{');
        Value m = Value::map();
        if (peek() == '}') {
            ++i_;
            return m;
        }
        for (;;) {
            std::string k = (peek(), string());
            expect(':');
            m.asMap().emplace_back(k, value());
            if (peek() == ',') {
                ++i_;
                continue;
            }
            expect('}');
            return m;
        }
    }
    Value array() {
        expect('[');
        Value::Array a;
        if (peek() == ']') {
            ++i_;
            return Value(a);
        }
        for (;;) {
            a.push_back(value());
            if (peek() == ',') {
                ++i_;
                continue;
            }
            expect(']');
            return Value(std::move(a));
        }
    }
    std::string string() {
        expect('"');
        std::string out;
        while (i_ < s_.size() && s_[i_] != '"') {
            char c = s_[i_++];
            if (c != '\\') {
                out += c;
                continue;
            }
            char e = s_[i_++];
            switch (e) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case 'r': out += '\r'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'u': {
                    unsigned cp = std::stoul(s_.substr(i_, 4), nullptr, 16);
                    i_ += 4;
                    if (cp < 0x80) {
                        out += static_cast<char>(cp);
                    } else if (cp < 0x800) {
                        out += static_cast<char>(0xC0 | (cp >> 6));
                        out += static_cast<char>(0x80 | (cp & 0x3F));
                    } else {
                        out += static_cast<char>(0xE0 | (cp >> 12));
                        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                        out += static_cast<char>(0x80 | (cp & 0x3F));
                    }
                    break;
                }
                default: out += e;
            }
        }
        expect('"');
        return out;
    }
    Value number() {
        const std::size_t start = i_;
        bool isFloat = false;
        while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
                                  s_[i_] == '+' || s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E')) {
            if (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E') isFloat = true;
            ++i_;
        }
        const std::string tok = s_.substr(start, i_ - start);
        if (tok.empty()) throw std::runtime_error("json: bad value");
        if (isFloat) return Value(std::strtod(tok.c_str(), nullptr));
        return Value(static_cast<std::int64_t>(std::strtoll(tok.c_str(), nullptr, 10)));
    }
    const std::string &s_;
    std::size_t i_ = 0;
};

}  // namespace vptest
