#pragma once
// The gateway's tus uploads on disk ([uploads] dir): one file per upload ("<id>.part", mode
// 0600, in a directory of mode 0700 that only the gateway writes), with core/upload's ledger
// saying what each file holds. Bytes are written as they arrive, so an append cut half-way keeps
// what came; a checksummed append is committed only once its whole body matched.
//
// Files are written with pwrite under the store's lock (page cache; a chunk of at most 64 KiB at
// a time). Uploads do not outlive the process: leftover part files are removed at start.
//
// Threading: shared by every worker; every call takes the lock.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/upload/upload_ledger.hpp"

namespace nines::gateway {

class upload_store {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  // Opens (or makes) `dir`; throws at start when it cannot be used.
  upload_store(std::string dir, core::upload_limits limits);
  ~upload_store();
  upload_store(const upload_store&) = delete;
  upload_store& operator=(const upload_store&) = delete;

  const core::upload_limits& limits() const { return limits_; }

  struct created {
    core::upload_problem problem = core::upload_problem::none;
    std::string id;
  };
  created create(std::string owner, std::uint64_t length, std::string metadata,
                 std::optional<std::string> expected_sha256, time_point now);

  struct upload_state {
    core::upload_problem problem = core::upload_problem::none;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    std::string metadata;
    time_point expires{};
  };
  // An offset request (HEAD): takes the upload over from an older append.
  upload_state take_over(std::string_view id, std::string_view owner, time_point now);

  // One append (PATCH, or the body of a creation): begun at `offset`, then written piece by
  // piece. Destroying it closes its file; what it committed stays.
  class append {
   public:
    append() = default;
    append(append&& other) noexcept;
    append& operator=(append&& other) noexcept;
    ~append();
    // Writes `bytes` at the upload's offset and commits them (the offset moves on).
    core::upload_problem write(std::string_view bytes, time_point now);
    // Writes `bytes` after what this append staged so far, without committing them.
    core::upload_problem stage(std::string_view bytes);
    // Commits everything staged (it is read back for the upload's digest).
    core::upload_problem commit_staged(time_point now);
    std::uint64_t offset_after() const;  // the upload's offset now (as last seen)
    std::uint64_t length() const { return length_; }

   private:
    friend class upload_store;
    upload_store* store_ = nullptr;
    std::string id_;
    std::uint64_t epoch_ = 0;
    int fd_ = -1;
    std::uint64_t base_ = 0;    // the offset when this append began
    std::uint64_t staged_ = 0;  // bytes written after base_ and not committed
    std::uint64_t seen_offset_ = 0;
    std::uint64_t length_ = 0;
    std::optional<core::sha256_stream> tentative_;  // the upload's digest over what is staged
  };
  core::upload_problem begin_append(std::string_view id, std::string_view owner,
                                    std::uint64_t offset, time_point now, append& out);

  core::upload_problem remove(std::string_view id, std::string_view owner, time_point now);

  // A finished upload's content, for the one request that names it as its body; release()
  // when that request ends without using it up (remove() when it did).
  core::upload_problem claim_complete(std::string_view id, std::string_view owner, time_point now,
                                      std::string& out);
  void release(std::string_view id);
  // When the upload ends if nothing more is stored (for Upload-Expires); nullopt once it ended.
  std::optional<time_point> expiry_of(std::string_view id) const;

  void sweep(time_point now);
  core::upload_ledger::stats read_stats() const;

  // Counters for /metrics: bytes of appends kept or refused (fenced, past the length, a checksum
  // that did not match), and appends that resumed an upload (an offset above 0).
  void count_received(std::size_t bytes, bool kept) {
    (kept ? bytes_kept_ : bytes_refused_).fetch_add(bytes, std::memory_order_relaxed);
  }
  void count_resumed_append() { resumed_appends_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t bytes_kept() const { return bytes_kept_.load(std::memory_order_relaxed); }
  std::uint64_t bytes_refused() const { return bytes_refused_.load(std::memory_order_relaxed); }
  std::uint64_t resumed_appends() const { return resumed_appends_.load(std::memory_order_relaxed); }

 private:
  std::string path_of(std::string_view id) const;
  void drop_file(std::string_view id) const;

  std::string dir_;
  int dir_lock_ = -1;  // flock on the directory: one gateway's at a time
  core::upload_limits limits_;
  mutable std::mutex mutex_;
  core::upload_ledger ledger_;  // guarded by mutex_
  std::atomic<std::uint64_t> bytes_kept_{0};
  std::atomic<std::uint64_t> bytes_refused_{0};
  std::atomic<std::uint64_t> resumed_appends_{0};
};

}  // namespace nines::gateway
