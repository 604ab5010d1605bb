#include "frame_cache.h"

#include <cstdlib>

namespace vinpaint {

FrameCache &FrameCache::global() {
    static FrameCache cache([] {
        std::size_t mb = 1024;
        if (const char *v = std::getenv("VINPAINT_CACHE_MB"); v && *v) mb = std::strtoull(v, nullptr, 10);
        return mb * 1024 * 1024;
    }());
    return cache;
}

std::optional<FetchedFrame> FrameCache::get(const std::string &job, int index) {
    std::lock_guard<std::mutex> lock(m_);
    auto it = index_.find(Key(job, index));
    if (it == index_.end()) return std::nullopt;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->frame;
}

void FrameCache::put(const std::string &job, int index, FetchedFrame frame) {
    std::lock_guard<std::mutex> lock(m_);
    const Key key(job, index);
    if (auto it = index_.find(key); it != index_.end()) {
        used_ -= it->second->frame.pixels->size();
        lru_.erase(it->second);
        index_.erase(it);
    }
    used_ += frame.pixels->size();
    lru_.push_front(Entry{key, std::move(frame)});
    index_[key] = lru_.begin();
    evict();
}

void FrameCache::evict() {
    // The newest entry always stays, even when it alone is over budget (renders hold a reference anyway).
    while (used_ > budget_ && lru_.size() > 1) {
        Entry &last = lru_.back();
        used_ -= last.frame.pixels->size();
        index_.erase(last.key);
        lru_.pop_back();
    }
}

void FrameCache::dropJob(const std::string &job) {
    std::lock_guard<std::mutex> lock(m_);
    for (auto it = lru_.begin(); it != lru_.end();) {
        if (it->key.first == job || it->key.first == job + ":matte") {  // its frames and its mattes
            used_ -= it->frame.pixels->size();
            index_.erase(it->key);
            it = lru_.erase(it);
        } else {
            ++it;
        }
    }
}

void FrameCache::clear() {
    std::lock_guard<std::mutex> lock(m_);
    lru_.clear();
    index_.clear();
    used_ = 0;
}

std::size_t FrameCache::bytes() const {
    std::lock_guard<std::mutex> lock(m_);
    return used_;
}

}  // namespace vinpaint
