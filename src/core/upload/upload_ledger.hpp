#pragma once
// The bookkeeping of tus uploads (docs/uploads.md): which exist, whose each is, how long it is,
// how much of it is stored, when it expires, which append may write to it, and the SHA-256 of
// what is stored — without the bytes themselves (the gateway's upload store keeps those in
// files, under the same lock as this).
//
// One append at a time: an append (PATCH) or an offset request (HEAD) takes the upload over from
// any older append still open on it, as the IETF resumable-upload draft asks; the older one's
// epoch is then stale and it may write nothing more. So a client whose link dropped resumes at
// once, never waiting for a lock the dead connection still holds (tusd's 423).
//
// Bounded: uploads in number and in declared bytes (a creation that would pass either is
// refused), each up to its own maximum; ended uploads leave a tombstone for `ttl` (410 rather
// than 404), at most as many as uploads. Pure: time is passed in; ids come from the caller.
//
// Threading: none of its own; the caller serialises every call.

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/codec/sha256_stream.hpp"

namespace nines::core {

enum class upload_problem {
  none,
  not_found,        // no such upload, or another client's: 404
  gone,             // terminated, expired, used, or refused for its digest: 410
  offset_mismatch,  // an append not at the stored offset: 409
  too_large,        // over the upload's limit, or past its declared length: 413
  storage_full,     // the declared bytes of all uploads would pass the limit: 503
  fenced,           // a newer append took the upload over: this one writes nothing more
  in_use,           // a finished upload already being read as another request's body: 409
  incomplete,       // named as a body before its last byte: 409
  digest_mismatch,  // the finished content's SHA-256 is not the one declared at creation: 460
  io_failed,        // the store could not write or read its file: 507 (not the ledger's own)
};

struct upload_limits {
  std::uint64_t max_upload_bytes = 32u << 20;  // one upload's Upload-Length
  std::uint64_t max_total_bytes = 1u << 30;    // every live upload's Upload-Length together
  std::size_t max_uploads = 4096;
  // One client key's share: what it may hold at once, so that one key cannot fill the store.
  std::uint64_t max_key_bytes = 256u << 20;
  std::size_t max_key_uploads = 1024;
  std::chrono::milliseconds ttl{600000};  // after the last change (creation or stored bytes)
};

class upload_ledger {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  struct upload {
    std::string owner;  // the client key's id
    std::uint64_t length = 0;
    std::uint64_t offset = 0;
    std::string metadata;  // Upload-Metadata as the creation sent it (HEAD returns it)
    std::optional<std::string> expected_sha256;  // 32 bytes, from the metadata's "sha256"
    time_point expires{};
    std::uint64_t epoch = 0;  // of the append allowed to write
    sha256_stream content;    // of the stored bytes
    bool in_use = false;      // read as a request's body right now (claim)
    bool complete() const { return offset == length; }
  };

  explicit upload_ledger(upload_limits limits) : limits_(limits) {}

  const upload_limits& limits() const { return limits_; }

  upload_problem create(const std::string& id, std::string owner, std::uint64_t length,
                        std::string metadata, std::optional<std::string> expected_sha256,
                        time_point now);

  // The upload, when it exists and is `owner`'s; otherwise null and `why`.
  const upload* find(std::string_view id, std::string_view owner, time_point now,
                     upload_problem& why) const;

  // Starts an append at `offset` (it must be the stored one), taking the upload over from any
  // older append; `epoch` is this append's. The upload's expiry moves on.
  upload_problem begin_append(std::string_view id, std::string_view owner, std::uint64_t offset,
                              time_point now, std::uint64_t& epoch);
  // An offset request: takes the upload over too (what it answers stays true until the client's
  // next append).
  const upload* take_over(std::string_view id, std::string_view owner, time_point now,
                          upload_problem& why);
  // The upload whatever its owner or expiry, for an append already let in; null when it ended.
  const upload* peek(std::string_view id) const;
  // Whether the append of `epoch` may still write.
  bool current(std::string_view id, std::uint64_t epoch) const;

  // `bytes` were stored at the upload's offset by the append of `epoch`: the offset moves past
  // them. When they complete the upload, its digest is checked against the declared one (a
  // mismatch ends the upload: digest_mismatch).
  upload_problem commit(std::string_view id, std::uint64_t epoch, std::string_view bytes,
                        time_point now);
  // The same for `count` bytes stored earlier and hashed by the caller: `content` is the upload's
  // digest stream continued over them (a checksummed append, staged, then verified).
  upload_problem commit_hashed(std::string_view id, std::uint64_t epoch, std::uint64_t count,
                               sha256_stream content, time_point now);

  // A finished upload of `owner`'s, taken for one request's body at a time (a second request
  // naming it meanwhile: in_use); release() gives it back, remove() ends it.
  const upload* claim(std::string_view id, std::string_view owner, time_point now,
                      upload_problem& why);
  void release(std::string_view id);

  // Termination, or the end of an upload that served its request.
  upload_problem remove(std::string_view id, std::string_view owner, time_point now);

  // Ends the uploads whose time is up; returns their ids (their files go).
  std::vector<std::string> sweep(time_point now);

  struct stats {
    std::size_t uploads = 0;
    std::uint64_t declared_bytes = 0;
    std::uint64_t stored_bytes = 0;
  };
  stats read_stats() const;

 private:
  void end(std::unordered_map<std::string, upload>::iterator it, time_point now);
  bool buried(std::string_view id, std::string_view owner, time_point now) const;

  struct share {
    std::uint64_t bytes = 0;
    std::size_t uploads = 0;
  };
  struct tombstone {
    time_point until;
    std::string owner;
  };
  upload_limits limits_;
  std::unordered_map<std::string, upload> uploads_;
  std::unordered_map<std::string, share> shares_;  // by owner
  std::uint64_t declared_ = 0;
  std::unordered_map<std::string, tombstone> tombstones_;  // by id
  std::deque<std::string> tombstone_order_;
};

}  // namespace nines::core
