// A small in-plugin cache of fetched result frames, shared by every instance (two nodes on the same job share
// frames), least recently used out first, bounded in bytes (VINPAINT_CACHE_MB, default 1024).
#pragma once

#include <cstddef>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "client.h"

namespace vinpaint {

class FrameCache {
public:
    explicit FrameCache(std::size_t budgetBytes) : budget_(budgetBytes) {}
    static FrameCache &global();

    std::optional<FetchedFrame> get(const std::string &job, int index);
    void put(const std::string &job, int index, FetchedFrame frame);
    void dropJob(const std::string &job);
    void clear();
    std::size_t bytes() const;

private:
    using Key = std::pair<std::string, int>;
    struct Entry {
        Key key;
        FetchedFrame frame;
    };
    void evict();
    mutable std::mutex m_;
    std::size_t budget_, used_ = 0;
    std::list<Entry> lru_;  // front = most recent
    std::map<Key, std::list<Entry>::iterator> index_;
};

}  // namespace vinpaint
