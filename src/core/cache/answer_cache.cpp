#include "core/cache/answer_cache.hpp"

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

answer_cache::list::iterator answer_cache::find_locked(std::uint64_t key,
                                                       const answer_request_view& request,
                                                       const answer_request* body_matches) {
  const auto [first, last] = index_.equal_range(key);
  if (body_matches != nullptr) {
    // The candidate whose body matched as it arrived: only the short parts are compared.
    for (auto it = first; it != last; ++it) {
      if (it->second->request.get() == body_matches &&
          same_request_but_body(body_matches->view(), request)) {
        return it->second;
      }
    }
  }
  for (auto it = first; it != last; ++it) {
    if (same_request(it->second->request->view(), request)) {
      return it->second;
    }
  }
  return lru_.end();
}

std::vector<std::shared_ptr<const answer_request>> answer_cache::candidates(
    std::uint64_t key, std::size_t body_length, std::size_t at_most) const {
  std::vector<std::shared_ptr<const answer_request>> out;
  std::lock_guard lock(mutex_);
  const auto [first, last] = index_.equal_range(key);
  for (auto it = first; it != last && out.size() < at_most; ++it) {
    if (it->second->request->body.size() == body_length) {
      out.push_back(it->second->request);
    }
  }
  return out;
}

std::optional<answer_cache::hit> answer_cache::lookup(std::uint64_t key,
                                                      const answer_request_view& request,
                                                      time_point now,
                                                      const answer_request* body_matches) {
  std::lock_guard lock(mutex_);
  const auto it = find_locked(key, request, body_matches);
  if (it == lru_.end()) {
    return std::nullopt;
  }
  if (now - it->stored_at >= settings_.ttl) {
    ++stats_.expired;
    drop_locked(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it);
  return hit{it->answer,
             std::chrono::duration_cast<std::chrono::milliseconds>(now - it->stored_at)};
}

answer_cache::store_result answer_cache::store(std::uint64_t key, answer_request request,
                                               cached_answer answer, time_point now,
                                               std::uint64_t epoch) {
  const std::size_t cost = answer.cost() + request.size();
  auto kept = std::make_shared<const answer_request>(std::move(request));
  std::lock_guard lock(mutex_);
  if (epoch != epoch_) {
    return store_result::stale;  // generated under what a reload replaced
  }
  if (cost > settings_.max_entry_bytes || cost > settings_.max_bytes) {
    ++stats_.too_large;
    return store_result::too_large;
  }
  if (const auto same = find_locked(key, kept->view(), nullptr); same != lru_.end()) {
    drop_locked(same);
  }
  // At most per_key under one key: the oldest goes.
  for (;;) {
    const auto [first, last] = index_.equal_range(key);
    if (static_cast<std::size_t>(std::distance(first, last)) < per_key) {
      break;
    }
    auto oldest = first->second;
    for (auto it = first; it != last; ++it) {
      if (it->second->stored_at < oldest->stored_at) {
        oldest = it->second;
      }
    }
    ++stats_.evicted;
    drop_locked(oldest);
  }
  while (stats_.bytes + cost > settings_.max_bytes && !lru_.empty()) {
    ++stats_.evicted;
    drop_locked(std::prev(lru_.end()));
  }
  lru_.push_front(node{key,
                       std::move(kept),
                       std::make_shared<const cached_answer>(std::move(answer)),
                       now,
                       cost,
                       {}});
  lru_.front().by_age = by_age_.insert(by_age_.end(), lru_.begin());
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
  while (!by_age_.empty() && now - by_age_.front()->stored_at >= settings_.ttl) {
    ++stats_.expired;
    drop_locked(by_age_.front());
  }
}

void answer_cache::clear() {
  std::lock_guard lock(mutex_);
  ++epoch_;
  while (!lru_.empty()) {
    ++stats_.cleared;
    drop_locked(lru_.begin());
  }
}

std::uint64_t answer_cache::epoch() const {
  std::lock_guard lock(mutex_);
  return epoch_;
}

void answer_cache::count_too_large() {
  std::lock_guard lock(mutex_);
  ++stats_.too_large;
}

void answer_cache::drop_locked(list::iterator it) {
  stats_.bytes -= it->cost;
  const auto [first, last] = index_.equal_range(it->key);
  for (auto i = first; i != last; ++i) {
    if (i->second == it) {
      index_.erase(i);
      break;
    }
  }
  by_age_.erase(it->by_age);
  lru_.erase(it);
}

answer_cache::stats answer_cache::read_stats() const {
  std::lock_guard lock(mutex_);
  stats s = stats_;
  s.entries = lru_.size();
  return s;
}

}  // namespace nines::core
