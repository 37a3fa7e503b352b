#pragma once
// The credentials an upstream's requests carry (`Authorization: Bearer ...`), and how they change
// while the gateway runs ([[upstreams]] api_key, api_keys, api_key_file, token_url in
// docs/config.md):
//
// - `upstream_credentials`: one per upstream, shared by every worker. Its slots (each key of
//   api_keys; the file's key; the OAuth token) are used in turn through a core::credential_ring: a
//   slot the upstream refused (401/403) cools down and the attempt moves to the next slot, then to
//   the next upstream. Secrets are swapped whole (atomic shared pointers): a request keeps the one
//   it sent.
// - `oauth_token_source`: one per (token_url, client_id, scope), on the control thread: fetches a
//   token with the client-credentials grant, refreshes it at `exp − max(5 min, 10%)`
//   (core::token_refresh_time), once more at once when an upstream refused the current token, and
//   with a backoff (1 s doubling to 60 s) while the endpoint fails.
// - `credential_keeper`: process-wide, on the control thread: hands out the same objects for an
//   upstream whose credential settings did not change across reloads (cooldowns and tokens
//   survive), re-reads key files when they change, owns the token sources.
//
// No secret is ever logged, counted or shown: slots are named by their place ("api_keys[1]",
// "api_key_file", "oauth").

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/access/credential_ring.hpp"
#include "core/config/config.hpp"
#include "gateway/file_stamp.hpp"
#include "net/asio.hpp"
#include "obs/metrics.hpp"

namespace nines::gateway {

class oauth_token_source;

class upstream_credentials {
 public:
  using clock_time = std::chrono::steady_clock::time_point;
  struct choice {
    std::size_t slot = 0;
    std::shared_ptr<const std::string> secret;
    std::uint64_t token_version = 0;  // OAuth: which token was sent
  };

  // Fixed secrets (api_key, api_keys), one slot each, or one slot filled later (a key file, a
  // token source).
  upstream_credentials(const std::string& upstream, std::vector<std::string> labels,
                       std::vector<std::string> secrets, std::shared_ptr<oauth_token_source> oauth,
                       obs::registry& metrics);

  // The slot for this attempt, skipping `excluded` (bits of slots this request already had
  // refused) and those cooling down; with none usable and nothing excluded, the one that is least
  // bad (the upstream's answer then goes to the client). nullopt: no secret at all yet (a token
  // never fetched, an unreadable key file) or every slot was tried.
  std::optional<choice> choose(clock_time now, std::uint64_t excluded);
  // The upstream answered 401 or 403 to `c`: its slot cools down; counted on metrics shard
  // `shard`.
  std::chrono::milliseconds refused(const choice& c, clock_time now, unsigned shard);
  // After a refusal of an OAuth token: one forced refresh (oauth_token_source::refresh_refused);
  // true when a new token is in place and may be tried. False at once for other credentials.
  // The fetch takes at most `time_left`.
  net::awaitable<bool> refreshed_after(const choice& c, unsigned shard,
                                       std::chrono::milliseconds time_left);
  const std::shared_ptr<oauth_token_source>& oauth() const { return oauth_; }
  // The upstream took `c`.
  void accepted(const choice& c);
  std::size_t usable(clock_time now);
  std::size_t size() const { return labels_.size(); }
  const std::string& label(std::size_t slot) const { return labels_[slot]; }

  // Control thread: a new secret for `slot` (a changed key file); "" when it cannot be read.
  void set_secret(std::size_t slot, std::string secret);

 private:
  std::shared_ptr<const std::string> secret_of(std::size_t slot, std::uint64_t& version);
  // The OAuth token's version (0: none yet); a new one ends the slot's cooldown.
  std::uint64_t token_version();

  std::vector<std::string> labels_;
  std::unique_ptr<std::atomic<std::shared_ptr<const std::string>>[]> secrets_;
  core::credential_ring ring_;
  std::shared_ptr<oauth_token_source> oauth_;
  std::atomic<std::uint64_t> seen_token_version_{0};
  std::atomic<std::uint64_t> present_{0};  // a bit per fixed or file slot that holds a secret
  std::vector<obs::counter*> refusals_;  // per slot
};

struct oauth_metrics {
  obs::counter* ok = nullptr;
  obs::counter* failed = nullptr;
  unsigned shard = 0;
};

class oauth_token_source : public std::enable_shared_from_this<oauth_token_source> {
 public:
  oauth_token_source(net::asio::io_context& control, core::oauth_client_settings settings,
                     std::string ca_file, oauth_metrics metrics);
  void start();
  void stop();

  // Any thread.
  std::shared_ptr<const std::string> token() const { return token_.load(); }
  std::uint64_t version() const { return version_.load(std::memory_order_acquire); }
  // Seconds until the current token expires (negative once it has); none when there is none.
  std::optional<double> expires_in() const;
  // An upstream refused token `version`: the first caller for that token fetches a new one at
  // once, on its own executor, and returns true when it got one; true too when the token had
  // already changed. False: another caller is refreshing it, or the refresh failed.
  net::awaitable<bool> refresh_refused(std::uint64_t version, unsigned shard,
                                       std::chrono::milliseconds time_left);
  const core::oauth_client_settings& settings() const { return settings_; }

 private:
  struct fetched {
    bool ok = false;
    std::string why;
  };
  net::awaitable<void> run();
  // One token request from the calling executor; a good token replaces the current one.
  net::awaitable<fetched> fetch(unsigned shard, std::chrono::milliseconds timeout);

  net::asio::io_context& control_;
  core::oauth_client_settings settings_;
  std::string ca_file_;
  oauth_metrics metrics_;
  net::asio::steady_timer wake_;
  std::atomic<std::shared_ptr<const std::string>> token_;
  std::atomic<std::uint64_t> version_{0};
  std::atomic<std::int64_t> expires_at_ns_{0};  // steady
  std::atomic<std::int64_t> refresh_at_ns_{0};  // steady; 0: now
  std::atomic<std::uint64_t> forced_for_{0};    // the token version already refreshed on a refusal
  std::atomic<std::int64_t> last_forced_ns_{0};  // steady
  bool stopped_ = false;                        // control thread
};

class credential_keeper {
 public:
  credential_keeper(net::asio::io_context& control, obs::registry& metrics, unsigned shard);
  // The credentials for `u`: the same object as before when its credential settings are the
  // same. Null when the upstream takes none. Any thread before the workers start, then the
  // control thread only.
  std::shared_ptr<upstream_credentials> for_upstream(const core::upstream_config& u);
  // Control thread: re-reads key files that changed (call every few hundred ms).
  void check_files();
  // Control thread: forgets the credentials no generation uses any more, and stops the token
  // sources only they used (an upstream removed, or its token_url changed, by a reload).
  void forget_unused();
  // Starts the token sources (once the control thread runs).
  void start();
  void stop();

 private:
  struct watched_file {
    std::string path;
    std::weak_ptr<upstream_credentials> owner;
    std::optional<file_stamp> stamp;  // when it was last read
  };
  net::asio::io_context& control_;
  obs::registry& metrics_;
  unsigned shard_;
  std::mutex mutex_;
  bool started_ = false;
  std::map<std::string, std::shared_ptr<upstream_credentials>> by_settings_;
  // By token_url, client_id, scope, client_secret_file and ca_file.
  std::map<std::string, std::shared_ptr<oauth_token_source>> sources_;
  std::vector<watched_file> files_;
};

// The key in a key file: its content without surrounding whitespace; "" when it cannot be read or
// holds anything but visible ASCII (a header must not carry it). `why` says what is wrong.
std::string read_key_file(const std::string& path, std::string& why);

}  // namespace nines::gateway
