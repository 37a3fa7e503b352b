#include "gateway/upload_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace nines::gateway {
namespace {

constexpr std::string_view part_suffix = ".part";

// 128 random bits from OpenSSL's generator, as 32 hex digits: an upload's URL is not guessable
// (and another key's upload does not exist for a client anyway).
std::optional<std::string> new_upload_id() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return std::nullopt;
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string id;
  for (const unsigned char b : bytes) {
    id.push_back(digits[b >> 4]);
    id.push_back(digits[b & 15]);
  }
  return id;
}

bool write_all_at(int fd, std::string_view bytes, std::uint64_t at) {
  while (!bytes.empty()) {
    const auto n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
    at += static_cast<std::uint64_t>(n);
  }
  return true;
}

bool read_all_at(int fd, char* out, std::size_t size, std::uint64_t at) {
  while (size > 0) {
    const auto n = ::pread(fd, out, size, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    out += n;
    size -= static_cast<std::size_t>(n);
    at += static_cast<std::uint64_t>(n);
  }
  return true;
}

}  // namespace

upload_store::upload_store(std::string dir, core::upload_limits limits)
    : dir_(std::move(dir)), limits_(limits), ledger_(limits) {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    throw std::runtime_error(
        fmt::format("uploads.dir {}: cannot be made: {}", dir_, std::strerror(errno)));
  }
  struct stat st {};
  if (::lstat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw std::runtime_error(fmt::format("uploads.dir {}: not a directory", dir_));
  }
  if (st.st_uid != ::geteuid() || (st.st_mode & 0077) != 0) {
    throw std::runtime_error(fmt::format(
        "uploads.dir {}: must belong to this user and be closed to others (mode 0700)", dir_));
  }
  // One gateway per directory: another one's uploads (a rolling restart sharing it) are not
  // this one's to remove.
  dir_lock_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_lock_ < 0 || ::flock(dir_lock_, LOCK_EX | LOCK_NB) != 0) {
    throw std::runtime_error(fmt::format(
        "uploads.dir {}: another process holds it (each gateway needs a directory of its own)",
        dir_));
  }
  // Part files of an earlier run: their uploads are gone with its ledger.
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (name.ends_with(part_suffix)) {
        ::unlinkat(::dirfd(d), e->d_name, 0);
      }
    }
    ::closedir(d);
  }
}

upload_store::~upload_store() {
  if (dir_lock_ >= 0) {
    ::close(dir_lock_);
  }
}

std::string upload_store::path_of(std::string_view id) const {
  return fmt::format("{}/{}{}", dir_, id, part_suffix);
}

void upload_store::drop_file(std::string_view id) const {
  ::unlink(path_of(id).c_str());
}

upload_store::created upload_store::create(std::string owner, std::uint64_t length,
                                           std::string metadata,
                                           std::optional<std::string> expected_sha256,
                                           time_point now) {
  created out;
  auto id = new_upload_id();
  if (!id) {
    out.problem = core::upload_problem::storage_full;
    return out;
  }
  std::lock_guard lock(mutex_);
  const std::string who = owner;
  out.problem = ledger_.create(*id, std::move(owner), length, std::move(metadata),
                               std::move(expected_sha256), now);
  if (out.problem != core::upload_problem::none) {
    return out;
  }
  const int fd = ::open(path_of(*id).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    ledger_.remove(*id, who, now);
    out.problem = core::upload_problem::io_failed;
    return out;
  }
  ::close(fd);
  out.id = std::move(*id);
  return out;
}

upload_store::upload_state upload_store::take_over(std::string_view id, std::string_view owner,
                                                   time_point now) {
  upload_state out;
  std::lock_guard lock(mutex_);
  const auto* u = ledger_.take_over(id, owner, now, out.problem);
  if (u != nullptr) {
    out.offset = u->offset;
    out.length = u->length;
    out.metadata = u->metadata;
    out.expires = u->expires;
  }
  return out;
}

core::upload_problem upload_store::begin_append(std::string_view id, std::string_view owner,
                                                std::uint64_t offset, time_point now, append& out) {
  std::lock_guard lock(mutex_);
  std::uint64_t epoch = 0;
  if (const auto p = ledger_.begin_append(id, owner, offset, now, epoch);
      p != core::upload_problem::none) {
    return p;
  }
  const int fd = ::open(path_of(id).c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return core::upload_problem::gone;  // its file was removed under us
  }
  out = append{};
  out.store_ = this;
  out.id_ = std::string(id);
  out.epoch_ = epoch;
  out.fd_ = fd;
  out.base_ = offset;
  out.seen_offset_ = offset;
  out.length_ = ledger_.peek(id)->length;
  return core::upload_problem::none;
}

upload_store::append::append(append&& other) noexcept {
  *this = std::move(other);
}

upload_store::append& upload_store::append::operator=(append&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    store_ = other.store_;
    id_ = std::move(other.id_);
    epoch_ = other.epoch_;
    fd_ = std::exchange(other.fd_, -1);
    base_ = other.base_;
    staged_ = other.staged_;
    seen_offset_ = other.seen_offset_;
    length_ = other.length_;
    tentative_ = std::move(other.tentative_);
  }
  return *this;
}

upload_store::append::~append() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::uint64_t upload_store::append::offset_after() const {
  return seen_offset_;
}

core::upload_problem upload_store::append::write(std::string_view bytes, time_point now) {
  std::lock_guard lock(store_->mutex_);
  auto& ledger = store_->ledger_;
  const auto* u = ledger.peek(id_);
  if (u == nullptr || !ledger.current(id_, epoch_)) {
    return u == nullptr ? core::upload_problem::gone : core::upload_problem::fenced;
  }
  if (bytes.size() > u->length - u->offset) {
    return core::upload_problem::too_large;
  }
  if (!write_all_at(fd_, bytes, u->offset)) {
    return core::upload_problem::io_failed;
  }
  const auto p = ledger.commit(id_, epoch_, bytes, now);
  if (p == core::upload_problem::digest_mismatch) {
    store_->drop_file(id_);
  }
  if (const auto* after = ledger.peek(id_)) {
    seen_offset_ = after->offset;
  }
  return p;
}

core::upload_problem upload_store::append::stage(std::string_view bytes) {
  std::lock_guard lock(store_->mutex_);
  auto& ledger = store_->ledger_;
  const auto* u = ledger.peek(id_);
  if (u == nullptr || !ledger.current(id_, epoch_)) {
    return u == nullptr ? core::upload_problem::gone : core::upload_problem::fenced;
  }
  if (bytes.size() > u->length - base_ - staged_) {
    return core::upload_problem::too_large;
  }
  if (!write_all_at(fd_, bytes, base_ + staged_)) {
    return core::upload_problem::io_failed;
  }
  if (!tentative_) {
    tentative_ = u->content.copy();  // nobody else writes while this append is current
  }
  tentative_->update(bytes);
  staged_ += bytes.size();
  return core::upload_problem::none;
}

core::upload_problem upload_store::append::commit_staged(time_point now) {
  if (staged_ == 0) {
    return core::upload_problem::none;
  }
  std::lock_guard lock(store_->mutex_);
  auto& ledger = store_->ledger_;
  const auto p = ledger.commit_hashed(id_, epoch_, staged_, std::move(*tentative_), now);
  tentative_.reset();
  if (p == core::upload_problem::digest_mismatch) {
    store_->drop_file(id_);
  }
  if (p != core::upload_problem::none) {
    return p;
  }
  staged_ = 0;
  if (const auto* after = ledger.peek(id_)) {
    seen_offset_ = after->offset;
  }
  return core::upload_problem::none;
}

core::upload_problem upload_store::remove(std::string_view id, std::string_view owner,
                                          time_point now) {
  std::lock_guard lock(mutex_);
  const auto p = ledger_.remove(id, owner, now);
  if (p == core::upload_problem::none) {
    drop_file(id);
  }
  return p;
}

core::upload_problem upload_store::claim_complete(std::string_view id, std::string_view owner,
                                                  time_point now, std::string& out) {
  int fd = -1;
  std::uint64_t length = 0;
  {
    std::lock_guard lock(mutex_);
    core::upload_problem why = core::upload_problem::none;
    const auto* u = ledger_.claim(id, owner, now, why);
    if (u == nullptr) {
      return why;
    }
    fd = ::open(path_of(id).c_str(), O_RDONLY | O_CLOEXEC);
    length = u->length;
    if (fd < 0) {
      ledger_.release(id);
      return core::upload_problem::io_failed;
    }
  }
  // A finished upload's file no longer changes (and an open one outlives its removal): read
  // without the lock.
  out.resize(static_cast<std::size_t>(length));
  const bool ok = read_all_at(fd, out.data(), out.size(), 0);
  ::close(fd);
  if (!ok) {
    release(id);
    return core::upload_problem::io_failed;
  }
  return core::upload_problem::none;
}

void upload_store::release(std::string_view id) {
  std::lock_guard lock(mutex_);
  ledger_.release(id);
}

std::optional<upload_store::time_point> upload_store::expiry_of(std::string_view id) const {
  std::lock_guard lock(mutex_);
  const auto* u = ledger_.peek(id);
  return u == nullptr ? std::nullopt : std::optional(u->expires);
}

void upload_store::sweep(time_point now) {
  std::lock_guard lock(mutex_);
  for (const auto& id : ledger_.sweep(now)) {
    drop_file(id);
  }
}

core::upload_ledger::stats upload_store::read_stats() const {
  std::lock_guard lock(mutex_);
  return ledger_.read_stats();
}

}  // namespace nines::gateway
