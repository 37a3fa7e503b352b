#include "core/stream/stream_journal.hpp"

#include <algorithm>

#include "core/config/key_values.hpp"

namespace nines::core {
namespace {

// What an event or field costs besides its bytes (the string and deque bookkeeping).
constexpr std::size_t per_item_overhead = 48;

std::size_t head_bytes(const journal_head& h) {
  std::size_t n = per_item_overhead;
  for (const auto& [k, v] : h.fields) {
    n += k.size() + v.size() + per_item_overhead;
  }
  return n;
}

void call_all(std::vector<std::function<void()>>& waiters) {
  for (auto& w : waiters) {
    w();
  }
}

}  // namespace

std::vector<std::function<void()>> journal_entry::take_waiters() {
  std::vector<std::function<void()>> out;
  out.swap(waiters_);
  return out;
}

bool journal_entry::room_for(std::size_t cost, time_point now, std::function<void()>& waker) {
  if (!waker || journal_.free_for(*this, cost, now) || journal_.take_from_stalled(cost, now)) {
    return true;
  }
  journal_.room_waiters_.push_back(std::move(waker));  // active clients will read: wait for them
  return false;
}

journal_entry::lag journal_entry::lag_at(time_point now) const {
  lag out;
  const std::uint64_t last = first_seq_ + events_.size() - 1;  // first_seq_ - 1 when empty
  for (const auto& [client, r] : cursors_) {
    if (r.cursor >= last) {
      continue;
    }
    auto& worst = now - r.last_read >= journal_.settings_.stalled_reader ? out.stalled : out.active;
    worst = std::max(worst, last - r.cursor);
  }
  return out;
}

bool journal_entry::commit_head(journal_head head, time_point now, std::function<void()> waker) {
  std::vector<std::function<void()>> wake;
  {
    std::lock_guard lock(journal_.mutex_);
    const auto bytes = head_bytes(head);
    if (!room_for(bytes, now, waker)) {
      return false;
    }
    head_ = std::move(head);
    journal_.grow(*this, bytes, now);
    wake = take_waiters();
  }
  call_all(wake);
  return true;
}

namespace {

// What `events` cost in the journal: each event and its bookkeeping.
std::size_t events_cost(std::string_view events) {
  std::size_t cost = 0;
  while (!events.empty()) {
    const auto end = events.find("\n\n");
    const auto size = end == std::string_view::npos ? events.size() : end + 2;
    cost += size + per_item_overhead;
    events.remove_prefix(size);
  }
  return cost;
}

}  // namespace

bool journal_entry::append_events(std::string_view events, time_point now,
                                  std::function<void()> waker) {
  if (events.empty()) {
    return true;
  }
  std::vector<std::function<void()>> wake;
  {
    std::lock_guard lock(journal_.mutex_);
    if (!room_for(events_cost(events), now, waker)) {
      return false;
    }
    while (!events.empty()) {
      const auto end = events.find("\n\n");
      const auto size = end == std::string_view::npos ? events.size() : end + 2;
      events_.emplace_back(events.substr(0, size));
      events.remove_prefix(size);
      journal_.grow(*this, size + per_item_overhead, now);
    }
    wake = take_waiters();
  }
  call_all(wake);
  return true;
}

bool journal_entry::finish(std::string_view body_or_last_events, const journal_summary& summary,
                           time_point now, std::function<void()> waker) {
  if (head_ && head_->stream && !append_events(body_or_last_events, now, std::move(waker))) {
    return false;
  }
  std::vector<std::function<void()>> wake;
  {
    std::lock_guard lock(journal_.mutex_);
    if ((!head_ || !head_->stream) && !room_for(body_or_last_events.size(), now, waker)) {
      return false;
    }
    if (!head_ || !head_->stream) {
      body_ = std::string(body_or_last_events);
      journal_.grow(*this, body_.size(), now);
    }
    summary_ = summary;
    ended_ = true;
    ended_at_ = now;
    wake = take_waiters();
  }
  call_all(wake);
  return true;
}

bool journal_entry::failed_locked() const {
  return ended_ && ((head_ && (head_->status >= 500 || head_->status == 429)) ||
                    summary_.outcome == "stream_incomplete" || summary_.outcome == "cancelled");
}

bool journal_entry::failed() const {
  std::lock_guard lock(journal_.mutex_);
  return failed_locked();
}

bool journal_entry::cancelled(time_point now) const {
  std::lock_guard lock(journal_.mutex_);
  return clients_ == 0 && !ended_ && now - alone_since_ > journal_.settings_.ttl;
}

journal_entry::view journal_entry::read(std::uint64_t client, std::uint64_t after, time_point now,
                                        std::function<void()> waiter) {
  std::vector<std::function<void()>> producers;
  const auto v = read_locked(client, after, now, std::move(waiter), producers);
  call_all(producers);
  return v;
}

journal_entry::view journal_entry::read_locked(std::uint64_t client, std::uint64_t after,
                                               time_point now, std::function<void()> waiter,
                                               std::vector<std::function<void()>>& producers) {
  std::lock_guard lock(journal_.mutex_);
  view v;
  v.head = head_;
  v.next_seq = after;
  v.lost = after + 1 < first_seq_;
  const std::uint64_t last = first_seq_ + events_.size() - 1;  // first_seq_ - 1 when empty
  for (std::uint64_t seq = std::max(after + 1, first_seq_); seq <= last && !v.lost; ++seq) {
    v.events += events_[seq - first_seq_];
    v.next_seq = seq;
  }
  if (auto it = cursors_.find(client); it != cursors_.end()) {
    it->second.last_read = now;
    if (v.next_seq > it->second.cursor) {
      it->second.cursor = v.next_seq;
      producers.swap(journal_.room_waiters_);  // what this client read may go now
    }
  }
  v.ended = ended_;
  if (ended_) {
    v.body = body_;
    v.summary = summary_;
  } else if (waiter && v.events.empty() && !v.lost) {
    waiters_.push_back(std::move(waiter));
  }
  return v;
}

std::uint64_t journal_entry::attach(std::uint64_t after, time_point now) {
  std::lock_guard lock(journal_.mutex_);
  ++clients_;
  const auto id = ++next_client_;
  cursors_[id] = reader{after, now};
  return id;
}

unsigned journal_entry::clients() const {
  std::lock_guard lock(journal_.mutex_);
  return clients_;
}

void journal_entry::detach(std::uint64_t client, time_point now) {
  std::lock_guard lock(journal_.mutex_);
  if (cursors_.erase(client) > 0 && clients_ > 0 && --clients_ == 0) {
    alone_since_ = now;
  }
  if (journal_.bytes_ > journal_.settings_.max_bytes) {
    journal_.expire(now);
  }
}

stream_journal::opened stream_journal::open(std::string_view key_hint, std::string digest,
                                            std::optional<std::string> idempotency_key,
                                            time_point now, bool running_only) {
  std::lock_guard lock(mutex_);
  expire(now);
  if (idempotency_key) {
    if (auto it = by_idempotency_.find(*idempotency_key); it != by_idempotency_.end()) {
      auto existing = it->second;
      if (existing->digest_ != digest) {
        return {open_kind::conflict, existing};
      }
      // A generation that failed is not replayed: the client's retry deserves a new one.
      const bool failed = existing->failed_locked();
      const bool joinable = !running_only || (!existing->ended_ && existing->first_seq_ == 1);
      if (!failed && joinable) {
        return {open_kind::existing, existing};
      }
      if (failed) {
        erase(existing);
      } else {
        // Ended well, or still running but short of its first events: it stays for its own
        // clients' reconnects (Last-Event-ID); a new entry takes the key.
        by_idempotency_.erase(it);
      }
    }
  }
  std::string key(key_hint);
  while (key.empty() || by_key_.contains(key)) {
    key = std::string(key_hint) + "-" + std::to_string(++suffix_);
  }
  auto entry = std::shared_ptr<journal_entry>(new journal_entry(*this, key, std::move(digest)));
  entry->alone_since_ = now;
  by_key_.emplace(key, entry);
  if (idempotency_key) {
    entry->idempotency_key_ = idempotency_key;
    by_idempotency_[*idempotency_key] = entry;
  }
  return {open_kind::created, entry};
}

std::shared_ptr<journal_entry> stream_journal::find(std::string_view stream_key,
                                                    std::string_view digest, time_point now) {
  std::lock_guard lock(mutex_);
  expire(now);
  const auto it = by_key_.find(stream_key);
  if (it == by_key_.end() || it->second->digest_ != digest) {
    return nullptr;
  }
  return it->second;
}

void stream_journal::sweep(time_point now) {
  std::lock_guard lock(mutex_);
  expire(now);
}

stream_journal::stats stream_journal::read_stats() const {
  std::lock_guard lock(mutex_);
  return {bytes_, by_key_.size(), evicted_, events_dropped_};
}

void stream_journal::erase(const std::shared_ptr<journal_entry>& e) {
  const auto it = by_key_.find(e->stream_key_);
  if (it == by_key_.end() || it->second != e) {
    return;  // already out of the index
  }
  by_key_.erase(it);
  if (e->idempotency_key_) {
    if (auto idem = by_idempotency_.find(*e->idempotency_key_);
        idem != by_idempotency_.end() && idem->second == e) {
      by_idempotency_.erase(idem);
    }
  }
  bytes_ -= std::min(bytes_, e->bytes_);
}

void stream_journal::expire(time_point now) {
  std::vector<std::shared_ptr<journal_entry>> gone;
  for (const auto& [key, e] : by_key_) {
    const bool finished_long_ago = e->ended_ && now - e->ended_at_ > settings_.ttl;
    // A generation that nobody has waited for in two ttls is stuck or abandoned: its producer
    // stops when it next looks (cancelled()); the entry goes now.
    const bool abandoned = !e->ended_ && e->clients_ == 0 && now - e->alone_since_ > 2 * settings_.ttl;
    // Over the bound (one whole answer larger than the rest): finished entries nobody reads go.
    const bool squeezed = bytes_ > settings_.max_bytes && e->ended_ && e->clients_ == 0;
    if (finished_long_ago || abandoned || squeezed) {
      gone.push_back(e);
      evicted_ += finished_long_ago || abandoned ? 0 : 1;
    }
  }
  for (const auto& e : gone) {
    erase(e);
  }
}

bool stream_journal::free_for(const journal_entry& growing, std::size_t bytes, time_point now) {
  if (bytes_ + bytes <= settings_.max_bytes) {
    return true;
  }
  const std::size_t target = bytes >= settings_.max_bytes ? 0 : settings_.max_bytes - bytes;
  expire(now);
  while (bytes_ > target) {
    std::shared_ptr<journal_entry> oldest;
    for (const auto& [key, e] : by_key_) {
      if (e->ended_ && e.get() != &growing && (!oldest || e->ended_at_ < oldest->ended_at_)) {
        oldest = e;
      }
    }
    if (!oldest) {
      break;
    }
    erase(oldest);
    ++evicted_;
  }
  for (const auto& [key, e] : by_key_) {
    if (bytes_ <= target) {
      break;
    }
    if (!e->ended_) {
      std::uint64_t read_by_all = UINT64_MAX;
      for (const auto& [client, r] : e->cursors_) {
        read_by_all = std::min(read_by_all, r.cursor);
      }
      trim(*e, read_by_all, target);
    }
  }
  return bytes_ <= target;
}

bool stream_journal::take_from_stalled(std::size_t bytes, time_point now) {
  const std::size_t target = bytes >= settings_.max_bytes ? 0 : settings_.max_bytes - bytes;
  while (bytes_ > target) {
    // The running stream whose stalled client is furthest behind, unless an active client of
    // the same stream still needs those events.
    journal_entry* victim = nullptr;
    std::uint64_t worst = 0;
    for (const auto& [key, e] : by_key_) {
      if (e->ended_ || e->events_.empty()) {
        continue;
      }
      const auto l = e->lag_at(now);
      if (l.stalled > worst && l.active == 0) {
        victim = e.get();
        worst = l.stalled;
      }
    }
    if (victim == nullptr) {
      return false;
    }
    trim(*victim, victim->first_seq_, target);  // its oldest event
  }
  return true;
}

void stream_journal::grow(journal_entry& growing, std::size_t delta, time_point now) {
  growing.bytes_ += delta;
  const auto it = by_key_.find(growing.stream_key_);
  if (it == by_key_.end() || it->second.get() != &growing) {
    return;  // no longer in the journal: its bytes are its producer's own until it ends
  }
  bytes_ += delta;
  if (free_for(growing, 0, now)) {
    return;
  }
  // Last resort: the growing stream forgets events a lagging client has not read yet.
  trim(growing, growing.first_seq_ + growing.events_.size() - 2, settings_.max_bytes);
}

void stream_journal::trim(journal_entry& e, std::uint64_t upto, std::size_t target) {
  while (bytes_ > target && !e.events_.empty() && e.first_seq_ <= upto) {
    const auto size = e.events_.front().size() + per_item_overhead;
    e.events_.pop_front();
    ++e.first_seq_;
    e.bytes_ -= size;
    bytes_ -= size;
    ++events_dropped_;
  }
}

std::optional<event_id> parse_event_id(std::string_view id) {
  const auto colon = id.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return std::nullopt;
  }
  const auto seq = parse_count(id.substr(colon + 1));
  if (!seq) {
    return std::nullopt;
  }
  return event_id{std::string(id.substr(0, colon)), *seq};
}

std::string format_event_id(std::string_view stream_key, std::uint64_t seq) {
  std::string out(stream_key);
  out.push_back(':');
  out += std::to_string(seq);
  return out;
}

}  // namespace nines::core
