#include "core/upload/upload_ledger.hpp"

namespace nines::core {

upload_problem upload_ledger::create(const std::string& id, std::string owner, std::uint64_t length,
                                     std::string metadata,
                                     std::optional<std::string> expected_sha256, time_point now) {
  if (length > limits_.max_upload_bytes) {
    return upload_problem::too_large;
  }
  if (uploads_.size() >= limits_.max_uploads || declared_ + length > limits_.max_total_bytes) {
    return upload_problem::storage_full;
  }
  upload u;
  u.owner = std::move(owner);
  u.length = length;
  u.metadata = std::move(metadata);
  u.expected_sha256 = std::move(expected_sha256);
  u.expires = now + limits_.ttl;
  if (!uploads_.try_emplace(id, std::move(u)).second) {
    return upload_problem::storage_full;  // an id drawn twice: never in practice, refused anyway
  }
  declared_ += length;
  return upload_problem::none;
}

const upload_ledger::upload* upload_ledger::find(std::string_view id, std::string_view owner,
                                                 time_point now, upload_problem& why) const {
  const auto it = uploads_.find(std::string(id));
  if (it == uploads_.end() || it->second.expires <= now) {
    why =
        buried(id, now) || it != uploads_.end() ? upload_problem::gone : upload_problem::not_found;
    if (it != uploads_.end() && it->second.owner != owner) {
      why = upload_problem::not_found;
    }
    return nullptr;
  }
  if (it->second.owner != owner) {
    why = upload_problem::not_found;  // another client's: it does not exist for this one
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
  u->expires = now + limits_.ttl;
  epoch = u->epoch;
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
  const auto it = uploads_.find(std::string(id));
  return it != uploads_.end() && it->second.epoch == epoch;
}

upload_problem upload_ledger::commit(std::string_view id, std::uint64_t epoch,
                                     std::string_view bytes, time_point now) {
  const auto it = uploads_.find(std::string(id));
  if (it == uploads_.end() || it->second.epoch != epoch) {
    return upload_problem::fenced;
  }
  auto& u = it->second;
  if (bytes.size() > u.length - u.offset) {
    return upload_problem::too_large;
  }
  u.offset += bytes.size();
  u.content.update(bytes);
  u.expires = now + limits_.ttl;
  if (u.complete() && u.expected_sha256) {
    const auto digest = u.content.current();
    if (u.expected_sha256->size() != digest.size() ||
        !std::equal(digest.begin(), digest.end(), u.expected_sha256->begin(),
                    [](unsigned char a, char b) { return a == static_cast<unsigned char>(b); })) {
      declared_ -= u.length;
      bury(it->first, now);
      uploads_.erase(it);
      return upload_problem::digest_mismatch;
    }
  }
  return upload_problem::none;
}

upload_problem upload_ledger::remove(std::string_view id, std::string_view owner, time_point now) {
  upload_problem why = upload_problem::none;
  if (find(id, owner, now, why) == nullptr) {
    return why;
  }
  const auto it = uploads_.find(std::string(id));
  declared_ -= it->second.length;
  bury(it->first, now);
  uploads_.erase(it);
  return upload_problem::none;
}

std::vector<std::string> upload_ledger::sweep(time_point now) {
  std::vector<std::string> ended;
  for (auto it = uploads_.begin(); it != uploads_.end();) {
    if (it->second.expires <= now) {
      ended.push_back(it->first);
      declared_ -= it->second.length;
      bury(it->first, now);
      it = uploads_.erase(it);
    } else {
      ++it;
    }
  }
  while (!tombstone_order_.empty()) {
    const auto t = tombstones_.find(tombstone_order_.front());
    if (t != tombstones_.end() && t->second > now) {
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

void upload_ledger::bury(const std::string& id, time_point now) {
  if (tombstones_.size() >= limits_.max_uploads && !tombstone_order_.empty()) {
    tombstones_.erase(tombstone_order_.front());
    tombstone_order_.pop_front();
  }
  if (tombstones_.insert_or_assign(id, now + limits_.ttl).second) {
    tombstone_order_.push_back(id);
  }
}

bool upload_ledger::buried(std::string_view id, time_point now) const {
  const auto it = tombstones_.find(std::string(id));
  return it != tombstones_.end() && it->second > now;
}

}  // namespace nines::core
