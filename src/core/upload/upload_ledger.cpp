#include "core/upload/upload_ledger.hpp"

#include <algorithm>

namespace nines::core {

upload_problem upload_ledger::create(const std::string& id, std::string owner, std::uint64_t length,
                                     std::string metadata,
                                     std::optional<std::string> expected_sha256, time_point now) {
  if (length > limits_.max_upload_bytes) {
    return upload_problem::too_large;
  }
  const auto found = shares_.find(owner);
  const share mine = found == shares_.end() ? share{} : found->second;
  if (uploads_.size() >= limits_.max_uploads || declared_ + length > limits_.max_total_bytes ||
      mine.uploads >= limits_.max_key_uploads || mine.bytes + length > limits_.max_key_bytes) {
    return upload_problem::storage_full;
  }
  upload u;
  u.owner = owner;
  u.length = length;
  u.metadata = std::move(metadata);
  u.expected_sha256 = std::move(expected_sha256);
  u.expires = now + limits_.ttl;
  if (!uploads_.try_emplace(id, std::move(u)).second) {
    return upload_problem::storage_full;  // an id drawn twice: never in practice, refused anyway
  }
  declared_ += length;
  auto& s = shares_[std::move(owner)];
  s.bytes += length;
  ++s.uploads;
  return upload_problem::none;
}

const upload_ledger::upload* upload_ledger::find(std::string_view id, std::string_view owner,
                                                 time_point now, upload_problem& why) const {
  const auto it = uploads_.find(std::string(id));
  if (it != uploads_.end() && it->second.owner != owner) {
    why = upload_problem::not_found;  // another client's: it does not exist for this one
    return nullptr;
  }
  if (it == uploads_.end() || it->second.expires <= now) {
    why = it != uploads_.end() || buried(id, owner, now) ? upload_problem::gone
                                                         : upload_problem::not_found;
    return nullptr;
  }
  why = upload_problem::none;
  return &it->second;
}

upload_problem upload_ledger::begin_append(std::string_view id, std::string_view owner,
                                           std::uint64_t offset, time_point now,
                                           std::uint64_t& epoch) {
  upload_problem why = upload_problem::none;
  auto* u = const_cast<upload*>(find(id, owner, now, why));
  if (u == nullptr) {
    return why;
  }
  ++u->epoch;  // an older append, if any, is fenced from here on
  if (offset != u->offset) {
    return upload_problem::offset_mismatch;
  }
  epoch = u->epoch;  // the expiry moves on with stored bytes only, not with empty appends
  return upload_problem::none;
}

const upload_ledger::upload* upload_ledger::take_over(std::string_view id, std::string_view owner,
                                                      time_point now, upload_problem& why) {
  auto* u = const_cast<upload*>(find(id, owner, now, why));
  if (u != nullptr) {
    ++u->epoch;
  }
  return u;
}

const upload_ledger::upload* upload_ledger::peek(std::string_view id) const {
  const auto it = uploads_.find(std::string(id));
  return it == uploads_.end() ? nullptr : &it->second;
}

bool upload_ledger::current(std::string_view id, std::uint64_t epoch) const {
  const auto* u = peek(id);
  return u != nullptr && u->epoch == epoch;
}

upload_problem upload_ledger::commit(std::string_view id, std::uint64_t epoch,
                                     std::string_view bytes, time_point now) {
  const auto* u = peek(id);
  if (u == nullptr || u->epoch != epoch) {
    return u == nullptr ? upload_problem::gone : upload_problem::fenced;
  }
  auto content = u->content.copy();
  content.update(bytes);
  return commit_hashed(id, epoch, bytes.size(), std::move(content), now);
}

upload_problem upload_ledger::commit_hashed(std::string_view id, std::uint64_t epoch,
                                            std::uint64_t count, sha256_stream content,
                                            time_point now) {
  const auto it = uploads_.find(std::string(id));
  if (it == uploads_.end()) {
    return upload_problem::gone;  // ended meanwhile (terminated, expired)
  }
  auto& u = it->second;
  if (u.epoch != epoch) {
    return upload_problem::fenced;
  }
  if (count > u.length - u.offset) {
    return upload_problem::too_large;
  }
  u.offset += count;
  u.content = std::move(content);
  u.expires = now + limits_.ttl;
  if (u.complete() && u.expected_sha256) {
    const auto digest = u.content.current();
    if (!std::equal(digest.begin(), digest.end(), u.expected_sha256->begin(),
                    u.expected_sha256->end(),
                    [](unsigned char a, char b) { return a == static_cast<unsigned char>(b); })) {
      end(it, now);
      return upload_problem::digest_mismatch;
    }
  }
  return upload_problem::none;
}

const upload_ledger::upload* upload_ledger::claim(std::string_view id, std::string_view owner,
                                                  time_point now, upload_problem& why) {
  auto* u = const_cast<upload*>(find(id, owner, now, why));
  if (u == nullptr) {
    return nullptr;
  }
  if (!u->complete()) {
    why = upload_problem::incomplete;
    return nullptr;
  }
  if (u->in_use) {
    why = upload_problem::in_use;
    return nullptr;
  }
  u->in_use = true;
  return u;
}

void upload_ledger::release(std::string_view id) {
  if (const auto it = uploads_.find(std::string(id)); it != uploads_.end()) {
    it->second.in_use = false;
  }
}

upload_problem upload_ledger::remove(std::string_view id, std::string_view owner, time_point now) {
  upload_problem why = upload_problem::none;
  if (find(id, owner, now, why) == nullptr) {
    return why;
  }
  end(uploads_.find(std::string(id)), now);
  return upload_problem::none;
}

std::vector<std::string> upload_ledger::sweep(time_point now) {
  std::vector<std::string> ended;
  for (auto it = uploads_.begin(); it != uploads_.end();) {
    const auto next = std::next(it);
    if (it->second.expires <= now) {
      ended.push_back(it->first);
      end(it, now);
    }
    it = next;
  }
  while (!tombstone_order_.empty()) {
    const auto t = tombstones_.find(tombstone_order_.front());
    if (t != tombstones_.end() && t->second.until > now) {
      break;
    }
    if (t != tombstones_.end()) {
      tombstones_.erase(t);
    }
    tombstone_order_.pop_front();
  }
  return ended;
}

upload_ledger::stats upload_ledger::read_stats() const {
  stats s;
  s.uploads = uploads_.size();
  s.declared_bytes = declared_;
  for (const auto& [id, u] : uploads_) {
    s.stored_bytes += u.offset;
  }
  return s;
}

void upload_ledger::end(std::unordered_map<std::string, upload>::iterator it, time_point now) {
  declared_ -= it->second.length;
  if (const auto s = shares_.find(it->second.owner); s != shares_.end()) {
    s->second.bytes -= it->second.length;
    if (--s->second.uploads == 0) {
      shares_.erase(s);
    }
  }
  if (tombstones_.size() >= limits_.max_uploads && !tombstone_order_.empty()) {
    tombstones_.erase(tombstone_order_.front());
    tombstone_order_.pop_front();
  }
  if (tombstones_.insert_or_assign(it->first, tombstone{now + limits_.ttl, it->second.owner})
          .second) {
    tombstone_order_.push_back(it->first);
  }
  uploads_.erase(it);
}

bool upload_ledger::buried(std::string_view id, std::string_view owner, time_point now) const {
  const auto it = tombstones_.find(std::string(id));
  return it != tombstones_.end() && it->second.until > now && it->second.owner == owner;
}

}  // namespace nines::core
