#include "gateway/upstream_credentials.hpp"

#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <fmt/format.h>
#include <fstream>
#include <limits>
#include <spdlog/spdlog.h>

#include "core/access/secret_digest.hpp"
#include "gateway/file_stamp.hpp"
#include "net/one_shot_request.hpp"
#include "net/spawn.hpp"

namespace nines::gateway {

using namespace net;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::size_t max_secret_bytes = 8192;  // as core::sendable_secret allows
constexpr milliseconds token_request_timeout{10000};
constexpr milliseconds longest_failure_backoff{60000};
constexpr milliseconds forced_refresh_spacing{30000};

std::int64_t steady_ns(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}


std::string form_encode(std::string_view s) {
  return boost::urls::encode(s, boost::urls::unreserved_chars);
}

std::string base64(std::string_view s) {
  namespace b64 = boost::beast::detail::base64;
  std::string out(b64::encoded_size(s.size()), '\0');
  out.resize(b64::encode(out.data(), s.data(), s.size()));
  return out;
}

// What makes two upstreams' credentials the same source: never the secret itself in clear.
std::string settings_key(const core::upstream_config& u) {
  std::string k = u.name + '\n';
  if (!u.api_key.empty()) {
    k += "key:" + core::format_secret_digest(core::sha256_of(u.api_key));
  }
  for (const auto& key : u.api_keys) {
    k += "keys:" + core::format_secret_digest(core::sha256_of(key)) + ',';
  }
  k += "file:" + u.api_key_file + '\n';
  k += "oauth:" + u.oauth.token_url + '\n' + u.oauth.client_id + '\n' + u.oauth.scope + '\n' +
       u.oauth.client_secret_file + '\n' + u.ca_file;
  return k;
}

}  // namespace

std::string read_key_file(const std::string& path, std::string& why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = "cannot be read";
    return {};
  }
  std::string content(max_secret_bytes + 2, '\0');
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  content.resize(static_cast<std::size_t>(in.gcount()));
  const auto first = content.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) {
    why = "is empty";
    return {};
  }
  content = content.substr(first, content.find_last_not_of(" \t\r\n") - first + 1);
  if (!core::sendable_secret(content)) {
    why = "must hold one key of visible ASCII characters (at most 8192)";
    return {};
  }
  return content;
}

// --- upstream_credentials --------------------------------------------------------------------

upstream_credentials::upstream_credentials(const std::string& upstream,
                                           std::vector<std::string> labels,
                                           std::vector<std::string> secrets,
                                           std::shared_ptr<oauth_token_source> oauth,
                                           obs::registry& metrics)
    : labels_(std::move(labels)),
      secrets_(std::make_unique<std::atomic<std::shared_ptr<const std::string>>[]>(labels_.size())),
      ring_(labels_.size()),
      oauth_(std::move(oauth)) {
  for (std::size_t i = 0; i < labels_.size(); ++i) {
    if (i < secrets.size() && !secrets[i].empty()) {
      secrets_[i].store(std::make_shared<const std::string>(std::move(secrets[i])));
      present_.fetch_or(std::uint64_t{1} << i, std::memory_order_relaxed);
    }
    refusals_.push_back(&metrics.counter_of(
        "nines_upstream_credential_refusals_total",
        "Requests an upstream refused with 401 or 403, by the credential sent (never its value).",
        {{"upstream", upstream}, {"credential", labels_[i]}}));
  }
}

std::uint64_t upstream_credentials::token_version() {
  const auto version = oauth_->version();
  // Read first: every request passes here, and a write per request would bounce the line
  // between the workers' cores.
  if (seen_token_version_.load(std::memory_order_relaxed) != version &&
      seen_token_version_.exchange(version, std::memory_order_relaxed) != version) {
    ring_.cleared(0);  // a fresh token: whatever the last one earned does not hold
  }
  return version;
}

std::shared_ptr<const std::string> upstream_credentials::secret_of(std::size_t slot,
                                                                   std::uint64_t& version) {
  if (oauth_) {
    version = token_version();
    return oauth_->token();
  }
  return secrets_[slot].load();
}

std::optional<upstream_credentials::choice> upstream_credentials::choose(clock_time now,
                                                                         std::uint64_t excluded) {
  choice c;
  auto slot = ring_.choose(now, excluded);
  if (!slot && excluded == 0) {
    slot = 0;  // every slot cooling: the upstream's own answer goes to the client
  }
  if (!slot) {
    return std::nullopt;
  }
  c.slot = *slot;
  c.secret = secret_of(c.slot, c.token_version);
  if (!c.secret) {
    return std::nullopt;
  }
  return c;
}

std::chrono::milliseconds upstream_credentials::refused(const choice& c, clock_time now,
                                                        unsigned shard) {
  refusals_[c.slot]->add(shard);
  if (oauth_ && c.token_version != oauth_->version()) {
    return std::chrono::milliseconds(0);  // an old token's refusal says nothing of the new one
  }
  return ring_.refused(c.slot, now);
}

awaitable<bool> upstream_credentials::refreshed_after(const choice& c, unsigned shard,
                                                      milliseconds time_left) {
  if (!oauth_) {
    co_return false;
  }
  co_return co_await oauth_->refresh_refused(c.token_version, shard, time_left);
}

void upstream_credentials::accepted(const choice& c) {
  if (ring_.cooling(c.slot, steady::now())) {
    ring_.cleared(c.slot);
  }
}

std::size_t upstream_credentials::usable(clock_time now) {
  std::size_t n = 0;
  // Read for every upstream on every request (forwarder's candidates): atomics only, no secret
  // loaded.
  for (std::size_t i = 0; i < labels_.size(); ++i) {
    const bool holds = oauth_ ? token_version() > 0
                              : (present_.load(std::memory_order_relaxed) >> i & 1U) != 0;
    n += !ring_.cooling(i, now) && holds ? 1 : 0;
  }
  return n;
}

void upstream_credentials::set_secret(std::size_t slot, std::string secret) {
  if (slot >= labels_.size()) {
    return;
  }
  const std::uint64_t bit = std::uint64_t{1} << slot;
  if (secret.empty()) {
    secrets_[slot].store(nullptr);
    present_.fetch_and(~bit, std::memory_order_relaxed);
  } else {
    secrets_[slot].store(std::make_shared<const std::string>(std::move(secret)));
    present_.fetch_or(bit, std::memory_order_relaxed);
  }
  ring_.cleared(slot);
}

// --- oauth_token_source ----------------------------------------------------------------------

oauth_token_source::oauth_token_source(asio::io_context& control,
                                       core::oauth_client_settings settings, std::string ca_file,
                                       oauth_metrics metrics)
    : control_(control),
      settings_(std::move(settings)),
      ca_file_(std::move(ca_file)),
      metrics_(metrics),
      wake_(control) {}

namespace {
awaitable<void> keep_fetching(std::shared_ptr<oauth_token_source> self, awaitable<void> run) {
  co_await std::move(run);  // `self` keeps the source alive while it runs
}
}  // namespace

void oauth_token_source::start() {
  spawn(control_.get_executor(), keep_fetching(shared_from_this(), run()), "oauth token source");
}

void oauth_token_source::stop() {
  asio::post(control_, [self = shared_from_this()] {
    self->stopped_ = true;
    self->wake_.cancel();
  });
}

std::optional<double> oauth_token_source::expires_in() const {
  const auto at = expires_at_ns_.load(std::memory_order_relaxed);
  if (at == 0) {
    return std::nullopt;
  }
  return static_cast<double>(at - steady_ns(steady::now())) / 1e9;
}

awaitable<bool> oauth_token_source::refresh_refused(std::uint64_t version, unsigned shard,
                                                    milliseconds time_left) {
  if (version != this->version()) {
    co_return true;  // refreshed since
  }
  // Once per token, by one caller, and at most every 30 s: an upstream that refuses every token
  // must not turn each request into a token request.
  const auto now = steady_ns(steady::now());
  const auto last = last_forced_ns_.load(std::memory_order_relaxed);
  if (last != 0 && now - last < std::chrono::nanoseconds(forced_refresh_spacing).count()) {
    co_return false;
  }
  std::uint64_t before = forced_for_.load(std::memory_order_relaxed);
  if (before == version || !forced_for_.compare_exchange_strong(before, version)) {
    co_return false;
  }
  last_forced_ns_.store(now, std::memory_order_relaxed);
  const auto got = co_await fetch(shard, std::min(token_request_timeout, time_left));
  if (!got.ok) {
    spdlog::error("OAuth token from {} for client {} (after an upstream refused the last): {}",
                  settings_.token_url, settings_.client_id, got.why);
    co_return false;
  }
  // The control thread's schedule follows the new token.
  asio::post(control_, [self = shared_from_this()] { self->wake_.cancel(); });
  co_return true;
}

awaitable<void> oauth_token_source::run() {
  milliseconds backoff{0};
  while (!stopped_) {
    const auto now = steady::now();
    auto next = std::chrono::nanoseconds(refresh_at_ns_.load() - steady_ns(now));
    if (next <= std::chrono::nanoseconds(0)) {
      const auto got = co_await fetch(metrics_.shard, token_request_timeout);
      if (stopped_) {
        break;
      }
      if (got.ok) {
        backoff = milliseconds(0);
        continue;
      }
      backoff = std::min(std::max(backoff * 2, milliseconds(1000)), longest_failure_backoff);
      spdlog::error("OAuth token from {} for client {}: {}; next try in {} ms",
                    settings_.token_url, settings_.client_id, got.why, backoff.count());
      next = backoff;
    }
    wake_.expires_after(next);
    co_await wake_.async_wait(use_nothrow);  // cancelled: a refresh elsewhere, or stopped
  }
}

awaitable<oauth_token_source::fetched> oauth_token_source::fetch(unsigned shard,
                                                                  milliseconds timeout) {
  fetched out;
  const auto failed = [&](std::string why) {
    metrics_.failed->add(shard);
    out.why = std::move(why);
    return out;
  };
  std::string why;
  const std::string secret = read_key_file(settings_.client_secret_file, why);
  if (secret.empty()) {
    co_return failed("client_secret_file " + settings_.client_secret_file + " " + why);
  }
  http::request<http::string_body> req{http::verb::post, "/", 11};
  req.set(http::field::content_type, "application/x-www-form-urlencoded");
  req.set(http::field::accept, "application/json");
  // client_secret_basic (RFC 6749 §2.3.1): each part form-encoded, then Base64.
  req.set(http::field::authorization,
          "Basic " + base64(form_encode(settings_.client_id) + ":" + form_encode(secret)));
  req.body() = "grant_type=client_credentials";
  if (!settings_.scope.empty()) {
    req.body() += "&scope=" + form_encode(settings_.scope);
  }
  const auto issued = steady::now();
  const auto answer =
      co_await send_one_shot(settings_.token_url, std::move(req), timeout, 64 * 1024,
                             ca_file_);
  if (answer.status == 0) {
    co_return failed(answer.why);
  }
  boost::system::error_code ec;
  const auto doc = boost::json::parse(answer.body, ec);
  const auto* obj = ec ? nullptr : doc.if_object();
  if (answer.status != 200) {
    // The endpoint's own error code ("invalid_client"), never the body in full: it may echo.
    std::string code;
    if (obj != nullptr) {
      if (const auto* e = obj->if_contains("error"); e != nullptr && e->is_string()) {
        const auto text = e->as_string().subview().substr(0, 64);
        if (core::sendable_secret(text)) {
          code = " " + std::string(text);
        }
      }
    }
    co_return failed(fmt::format("status {}{}", answer.status, code));
  }
  const boost::json::value* token = obj != nullptr ? obj->if_contains("access_token") : nullptr;
  if (token == nullptr || !token->is_string() ||
      !core::sendable_secret(std::string_view(token->as_string()))) {
    co_return failed("the answer holds no usable access_token");
  }
  if (const auto* type = obj->if_contains("token_type"); type != nullptr) {
    if (!type->is_string() || !boost::beast::iequals(type->as_string().subview(), "bearer")) {
      co_return failed("token_type is not Bearer");
    }
  }
  std::int64_t lifetime = 0;
  if (const auto* e = obj->if_contains("expires_in"); e != nullptr) {
    if (e->is_int64()) {
      lifetime = e->as_int64();
    } else if (e->is_uint64()) {
      lifetime = static_cast<std::int64_t>(std::min<std::uint64_t>(e->as_uint64(), 1U << 30));
    } else if (e->is_double()) {
      lifetime = static_cast<std::int64_t>(e->as_double());
    }
  }
  lifetime = std::clamp<std::int64_t>(lifetime, 0, std::int64_t{1} << 30);
  token_.store(std::make_shared<const std::string>(std::string(token->as_string())));
  version_.fetch_add(1, std::memory_order_acq_rel);
  expires_at_ns_.store(lifetime > 0 ? steady_ns(issued + std::chrono::seconds(lifetime))
                                    : steady_ns(issued + std::chrono::hours(24 * 365)),
                       std::memory_order_relaxed);
  refresh_at_ns_.store(steady_ns(core::token_refresh_time(issued, std::chrono::seconds(lifetime))));
  metrics_.ok->add(shard);
  spdlog::info("OAuth token from {} for client {}: valid {} s", settings_.token_url,
               settings_.client_id, lifetime);
  out.ok = true;
  co_return out;
}

// --- credential_keeper -----------------------------------------------------------------------

credential_keeper::credential_keeper(asio::io_context& control, obs::registry& metrics,
                                     unsigned shard)
    : control_(control), metrics_(metrics), shard_(shard) {}

std::shared_ptr<upstream_credentials> credential_keeper::for_upstream(
    const core::upstream_config& u) {
  const bool none = u.api_key.empty() && u.api_keys.empty() && u.api_key_file.empty() &&
                    !u.oauth.enabled();
  if (none) {
    return nullptr;
  }
  std::lock_guard lock(mutex_);
  const auto key = settings_key(u);
  if (auto it = by_settings_.find(key); it != by_settings_.end()) {
    return it->second;
  }
  std::shared_ptr<upstream_credentials> made;
  if (u.oauth.enabled()) {
    const auto source_key = u.oauth.token_url + '\n' + u.oauth.client_id + '\n' + u.oauth.scope +
                            '\n' + u.oauth.client_secret_file + '\n' + u.ca_file;
    auto& source = sources_[source_key];
    if (!source) {
      const obs::labels l{{"client", u.oauth.client_id}};
      oauth_metrics m{&metrics_.counter_of("nines_oauth_token_requests_total",
                                           "OAuth2 token requests, by client and result.",
                                           {{"client", u.oauth.client_id}, {"result", "ok"}}),
                      &metrics_.counter_of("nines_oauth_token_requests_total", "",
                                           {{"client", u.oauth.client_id}, {"result", "failed"}}),
                      shard_};
      source = std::make_shared<oauth_token_source>(control_, u.oauth, u.ca_file, m);
      std::weak_ptr<oauth_token_source> weak = source;
      metrics_.gauge_function("nines_oauth_token_expiry_seconds",
                              "Seconds until the client's current OAuth token expires.", l,
                              [weak] {
                                const auto s = weak.lock();
                                if (!s) {
                                  return std::numeric_limits<double>::quiet_NaN();
                                }
                                const auto in = s->expires_in();
                                return in ? *in : 0.0;
                              });
      if (started_) {
        source->start();
      }
    }
    made = std::make_shared<upstream_credentials>(u.name, std::vector<std::string>{"oauth"},
                                                  std::vector<std::string>{}, source, metrics_);
  } else if (!u.api_key_file.empty()) {
    std::string why;
    auto secret = read_key_file(u.api_key_file, why);
    if (secret.empty()) {
      spdlog::error("upstream {}: api_key_file {} {}", u.name, u.api_key_file, why);
    }
    made = std::make_shared<upstream_credentials>(
        u.name, std::vector<std::string>{"api_key_file"}, std::vector<std::string>{secret},
        nullptr, metrics_);
    files_.push_back({u.api_key_file, made, stamp_of(u.api_key_file)});
  } else if (!u.api_keys.empty()) {
    std::vector<std::string> labels;
    for (std::size_t i = 0; i < u.api_keys.size(); ++i) {
      labels.push_back(fmt::format("api_keys[{}]", i));
    }
    made = std::make_shared<upstream_credentials>(u.name, std::move(labels), u.api_keys, nullptr,
                                                  metrics_);
  } else {
    made = std::make_shared<upstream_credentials>(u.name, std::vector<std::string>{"api_key"},
                                                  std::vector<std::string>{u.api_key}, nullptr,
                                                  metrics_);
  }
  std::weak_ptr<upstream_credentials> weak = made;
  metrics_.gauge_function("nines_upstream_credentials_usable",
                          "Credentials of the upstream not cooling down after a 401 or 403 (and "
                          "holding a secret).",
                          {{"upstream", u.name}}, [weak] {
                            // NaN once the upstream is gone: no alert for what is not there.
                            const auto c = weak.lock();
                            return c ? static_cast<double>(c->usable(steady::now()))
                                     : std::numeric_limits<double>::quiet_NaN();
                          });
  by_settings_[key] = made;
  return made;
}

void credential_keeper::check_files() {
  std::lock_guard lock(mutex_);
  for (auto& f : files_) {
    auto now = stamp_of(f.path);
    if (now == f.stamp) {
      continue;
    }
    f.stamp = now;
    auto owner = f.owner.lock();
    if (!owner) {
      continue;
    }
    std::string why;
    auto secret = read_key_file(f.path, why);
    const bool readable = !secret.empty();
    owner->set_secret(0, std::move(secret));  // in use before the log says so
    if (!readable) {
      spdlog::error("api_key_file {} changed but {}; the upstream gets no key until it is fixed",
                    f.path, why);
    } else {
      spdlog::info("api_key_file {} changed: the new key is in use", f.path);
    }
  }
}

void credential_keeper::forget_unused() {
  std::lock_guard lock(mutex_);
  // Held by the keeper alone: no generation (and no request) uses them any more.
  std::erase_if(by_settings_, [](const auto& entry) { return entry.second.use_count() == 1; });
  std::erase_if(files_, [](const watched_file& f) { return f.owner.expired(); });
  std::erase_if(sources_, [this](const auto& entry) {
    const bool used = std::any_of(by_settings_.begin(), by_settings_.end(), [&](const auto& c) {
      return c.second->oauth() == entry.second;
    });
    if (!used) {
      spdlog::info("OAuth token source {} for client {}: no upstream uses it any more; stopped",
                   entry.second->settings().token_url, entry.second->settings().client_id);
      entry.second->stop();
    }
    return !used;
  });
}

void credential_keeper::start() {
  std::lock_guard lock(mutex_);
  started_ = true;
  for (auto& [key, source] : sources_) {
    source->start();
  }
}

void credential_keeper::stop() {
  std::lock_guard lock(mutex_);
  for (auto& [key, source] : sources_) {
    source->stop();
  }
}

}  // namespace nines::gateway
