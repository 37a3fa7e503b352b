#include "core/cache/answer_cache.hpp"

#include <cstring>

namespace nines::core {

namespace {
constexpr std::size_t bookkeeping_bytes = 256;  // a node, its index slot, the answer's shell
}

bool answer_is_repeatable(const json_facts& facts) {
  return facts.is_object && !facts.temperature_repeated && facts.temperature &&
         *facts.temperature == 0.0;
}

std::size_t cached_answer::cost() const {
  std::size_t n = bookkeeping_bytes + body.size() + (model ? model->size() : 0);
  for (const auto& [name, value] : fields) {
    n += name.size() + value.size() + 64;
  }
  return n;
}

std::size_t answer_cache::key_hash::operator()(const answer_key& k) const {
  std::size_t h = 0;  // the key is a SHA-256: any of its bytes are as good as a hash
  std::memcpy(&h, k.data(), sizeof h);
  return h;
}

std::optional<answer_cache::hit> answer_cache::lookup(const answer_key& key, time_point now) {
  std::lock_guard lock(mutex_);
  const auto found = index_.find(key);
  if (found == index_.end()) {
    return std::nullopt;
  }
  const auto it = found->second;
  if (now - it->stored_at >= settings_.ttl) {
    ++stats_.expired;
    drop_locked(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it);
  return hit{it->answer,
             std::chrono::duration_cast<std::chrono::milliseconds>(now - it->stored_at)};
}

answer_cache::store_result answer_cache::store(const answer_key& key, cached_answer answer,
                                               time_point now) {
  const std::size_t cost = answer.cost();
  std::lock_guard lock(mutex_);
  if (cost > settings_.max_entry_bytes || cost > settings_.max_bytes) {
    ++stats_.too_large;
    return store_result::too_large;
  }
  if (const auto found = index_.find(key); found != index_.end()) {
    drop_locked(found->second);
  }
  while (stats_.bytes + cost > settings_.max_bytes && !lru_.empty()) {
    ++stats_.evicted;
    drop_locked(std::prev(lru_.end()));
  }
  lru_.push_front(node{key, std::make_shared<const cached_answer>(std::move(answer)), now, cost});
  index_.emplace(key, lru_.begin());
  stats_.bytes += cost;
  ++stats_.stored;
  return store_result::stored;
}

void answer_cache::sweep(time_point now) {
  std::lock_guard lock(mutex_);
  sweep_locked(now);
}

void answer_cache::sweep_locked(time_point now) {
  for (auto it = lru_.begin(); it != lru_.end();) {
    const auto next = std::next(it);
    if (now - it->stored_at >= settings_.ttl) {
      ++stats_.expired;
      drop_locked(it);
    }
    it = next;
  }
}

void answer_cache::drop_locked(list::iterator it) {
  stats_.bytes -= it->cost;
  index_.erase(it->key);
  lru_.erase(it);
}

answer_cache::stats answer_cache::read_stats() const {
  std::lock_guard lock(mutex_);
  stats s = stats_;
  s.entries = lru_.size();
  return s;
}

}  // namespace nines::core
