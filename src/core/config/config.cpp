#include "core/config/config.hpp"

#include <algorithm>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <fmt/format.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <set>

#include "core/access/secret_digest.hpp"
#include "core/config/admin_config.hpp"
#include "core/config/alerting_config.hpp"
#include "core/config/devices_config.hpp"
#include "core/config/toml_reader.hpp"

namespace nines::core {
namespace {

struct reader : toml_reader {
  reader(std::vector<config_problem>& problems, role_names n) : toml_reader(problems), names(n) {}

  role_names names;

  void read_gateway(const toml::table& t, gateway_settings& g) {
    const std::string p = std::string(names.role) + ".";
    unknown_keys(t, p, {"listen", "workers", "drain_timeout_ms", "access_log", "log_format"});
    string(t, p, "log_format", g.log_format);
    if (g.log_format != "text" && g.log_format != "json") {
      problem(p + "log_format", t.get("log_format"), "must be \"text\" or \"json\"");
    }
    if (const toml::node* node = t.get("listen")) {
      auto v = node->value_exact<std::string>();
      auto addr = v ? parse_listen_address(*v) : std::nullopt;
      if (!addr) {
        problem(p + "listen", node, "must be \"host:port\", e.g. \"127.0.0.1:8080\"");
      } else {
        g.listen = *addr;
      }
    }
    integer(t, p, "workers", g.workers, 0, 256);
    duration(t, p, "drain_timeout_ms", g.drain_timeout, 0);
    string(t, p, "access_log", g.access_log);
  }

  void read_limits(const toml::table& t, limit_settings& l) {
    const std::string p = "limits.";
    unknown_keys(t, p, {"max_body_bytes", "max_header_bytes", "max_header_count",
                        "max_chunk_meta_bytes", "max_response_bytes", "max_event_bytes",
                        "max_idle_per_upstream", "min_idle_per_upstream",
                        "max_connection_lifetime_ms", "max_client_connections",
                        "max_client_connections_per_worker"});
    integer(t, p, "max_header_count", l.max_header_count, 8, 10000);
    integer(t, p, "max_chunk_meta_bytes", l.max_chunk_meta_bytes, 64, 1 << 20);
    integer(t, p, "max_client_connections", l.max_client_connections, 0, 10000000);
    integer(t, p, "max_client_connections_per_worker", l.max_client_connections_per_worker, 0,
            10000000);
    integer(t, p, "min_idle_per_upstream", l.min_idle_per_upstream, 0, 10000);
    duration(t, p, "max_connection_lifetime_ms", l.max_connection_lifetime);
    integer(t, p, "max_body_bytes", l.max_body_bytes, 1, 1LL << 32);
    integer(t, p, "max_header_bytes", l.max_header_bytes, 1024, 1 << 20);
    integer(t, p, "max_response_bytes", l.max_response_bytes, 1024, 1LL << 32);
    integer(t, p, "max_event_bytes", l.max_event_bytes, 1024, 1LL << 30);
    integer(t, p, "max_idle_per_upstream", l.max_idle_per_upstream, 0, 100000);
  }

  void read_timeouts(const toml::table& t, timeout_settings& s) {
    const std::string p = "timeouts.";
    unknown_keys(t, p, {"connect_ms", "first_byte_ms", "stream_idle_ms", "request_ms",
                        "client_header_ms", "client_idle_ms", "upstream_idle_ms",
                        "tls_handshake_ms"});
    duration(t, p, "connect_ms", s.connect);
    duration(t, p, "first_byte_ms", s.first_byte);
    duration(t, p, "stream_idle_ms", s.stream_idle);
    duration(t, p, "request_ms", s.request);
    duration(t, p, "client_header_ms", s.client_header);
    duration(t, p, "client_idle_ms", s.client_idle);
    duration(t, p, "upstream_idle_ms", s.upstream_idle);
    duration(t, p, "tls_handshake_ms", s.tls_handshake, 100);
  }

  void read_retry(const toml::table& t, retry_settings& r) {
    const std::string p = "retry.";
    unknown_keys(t, p, {"max_attempts", "backoff_base_ms", "backoff_cap_ms", "deadline_ms",
                        "retry_on_status", "honour_retry_after", "max_resumes", "budget_percent",
                        "min_retry_concurrency", "retry_tokens", "retry_token_ratio"});
    double percent = r.budget.budget_percent * 100;
    number(t, p, "budget_percent", percent, 0, 100);
    r.budget.budget_percent = percent / 100;
    integer(t, p, "min_retry_concurrency", r.budget.min_retry_concurrency, 0, 100000);
    number(t, p, "retry_tokens", r.budget.max_tokens, 1, 100000);
    number(t, p, "retry_token_ratio", r.budget.token_ratio, 0, 100000);
    integer(t, p, "max_resumes", r.max_resumes, 0, 20);
    integer(t, p, "max_attempts", r.policy.max_attempts, 1, 20);
    duration(t, p, "backoff_base_ms", r.policy.backoff.base, 0);
    duration(t, p, "backoff_cap_ms", r.policy.backoff.cap, 0);
    duration(t, p, "deadline_ms", r.deadline);
    boolean(t, p, "honour_retry_after", r.policy.honour_retry_after);
    std::vector<unsigned> statuses;
    if (array(t, p, "retry_on_status", "must be an array of HTTP status codes",
              [&](const toml::node& n, const std::string& at) {
                const auto v = n.value_exact<std::int64_t>();
                if (!v || *v < 400 || *v > 599) {
                  problem(at, &n, "must be a status code from 400 to 599");
                } else {
                  statuses.push_back(static_cast<unsigned>(*v));
                }
              })) {
      r.policy.retry_statuses = std::move(statuses);
    }
  }

  void read_health(const toml::table& t, health_settings& h) {
    const std::string p = "health.";
    unknown_keys(t, p, {"enabled", "interval_ms", "jitter_ms", "timeout_ms", "path",
                        "healthy_threshold", "unhealthy_threshold", "window", "rtt_normal_ms",
                        "rtt_alert_ms", "loss_alert_percent", "jitter_normal_ms",
                        "jitter_alert_ms"});
    boolean(t, p, "enabled", h.enabled);
    duration(t, p, "interval_ms", h.interval, 10);
    duration(t, p, "jitter_ms", h.jitter, 0);
    duration(t, p, "timeout_ms", h.timeout, 1);
    string(t, p, "path", h.path);
    if (h.path.empty() || h.path.front() != '/') {
      problem(p + "path", t.get("path"), "must be an absolute path such as \"/health\"");
    }
    integer(t, p, "healthy_threshold", h.thresholds.healthy_threshold, 1, 1000);
    integer(t, p, "unhealthy_threshold", h.thresholds.unhealthy_threshold, 1, 1000);
    integer(t, p, "window", h.window, 2, 100000);
    duration(t, p, "rtt_normal_ms", h.alerts.rtt_normal, 0);
    duration(t, p, "rtt_alert_ms", h.alerts.rtt_alert, 0);
    double loss = h.alerts.loss_alert * 100;
    number(t, p, "loss_alert_percent", loss, 0, 100);
    h.alerts.loss_alert = loss / 100;
    duration(t, p, "jitter_normal_ms", h.alerts.jitter_normal, 0);
    duration(t, p, "jitter_alert_ms", h.alerts.jitter_alert, 0);
    if (h.jitter >= h.interval) {
      problem(p + "jitter_ms", t.get("jitter_ms"), "must be below health.interval_ms");
    }
  }

  void read_outlier(const toml::table& t, outlier_settings& o) {
    const std::string p = "outlier.";
    unknown_keys(t, p, {"enabled", "consecutive_gateway_failures", "consecutive_connect_failures",
                        "failure_rate_percent", "failure_rate_min_requests", "interval_ms",
                        "base_ejection_ms", "max_ejection_ms", "max_ejection_percent",
                        "half_open_trials"});
    boolean(t, p, "enabled", o.enabled);
    integer(t, p, "consecutive_gateway_failures", o.consecutive_gateway_failures, 0, 100000);
    integer(t, p, "consecutive_connect_failures", o.consecutive_connect_failures, 0, 100000);
    double rate = o.failure_rate_threshold * 100;
    number(t, p, "failure_rate_percent", rate, 1, 100);
    o.failure_rate_threshold = rate / 100;
    integer(t, p, "failure_rate_min_requests", o.failure_rate_min_requests, 1, 1000000);
    duration(t, p, "interval_ms", o.interval);
    duration(t, p, "base_ejection_ms", o.base_ejection);
    duration(t, p, "max_ejection_ms", o.max_ejection);
    double percent = o.max_ejection_percent * 100;
    number(t, p, "max_ejection_percent", percent, 0, 100);
    o.max_ejection_percent = percent / 100;
    integer(t, p, "half_open_trials", o.half_open_trials, 1, 1000);
  }

  void read_routing(const toml::table& t, routing_settings& r) {
    const std::string p = "routing.";
    unknown_keys(t, p, {"leave_tier_below", "tier_hysteresis_ms", "panic_threshold_percent",
                        "connect_race_ms"});
    number(t, p, "leave_tier_below", r.tiers.leave_below, 0, 1);
    duration(t, p, "connect_race_ms", r.connect_race, 0);
    duration(t, p, "tier_hysteresis_ms", r.tiers.hysteresis, 0);
    double percent = r.panic_threshold * 100;
    number(t, p, "panic_threshold_percent", percent, 0, 100);
    r.panic_threshold = percent / 100;
  }

  void read_hedge(const toml::table& t, hedge_config& h) {
    const std::string p = "hedge.";
    unknown_keys(t, p, {"routes", "allow_client_header", "quantile", "min_delay_ms",
                        "max_delay_ms", "initial_delay_ms", "min_samples", "loss_memory_ms"});
    boolean(t, p, "allow_client_header", h.allow_client_header);
    array(t, p, "routes", "must be an array of route names",
          [&](const toml::node& n, const std::string& at) {
            const auto v = n.value_exact<std::string>();
            if (!v || (*v != "chat" && *v != "completions" && *v != "embeddings")) {
              problem(at, &n, "must be \"chat\", \"completions\" or \"embeddings\"");
            } else {
              h.routes.push_back(*v);
            }
          });
    number(t, p, "quantile", h.delays.quantile, 0.5, 1);
    duration(t, p, "min_delay_ms", h.delays.min_delay);
    duration(t, p, "max_delay_ms", h.delays.max_delay);
    duration(t, p, "initial_delay_ms", h.delays.initial_delay);
    integer(t, p, "min_samples", h.delays.min_samples, 1, 100000);
    duration(t, p, "loss_memory_ms", h.delays.loss_memory, 0);
  }

  void read_routes(const toml::table& t, route_settings& r) {
    const std::string p = "routes.";
    unknown_keys(t, p, {"passthrough"});
    array(t, p, "passthrough", "must be an array of \"METHOD /v1/path\" patterns",
          [&](const toml::node& n, const std::string& at) {
            const auto v = n.value_exact<std::string>();
            route_pattern pattern;
            if (!v) {
              problem(at, &n, "must be a string such as \"POST /v1/tokenize\"");
            } else if (auto why = parse_route_pattern(*v, pattern)) {
              problem(at, &n, *why);
            } else {
              r.passthrough.push_back(std::move(pattern));
            }
          });
  }

  void read_listen(const toml::table& t, const std::string& p, listen_address& out) {
    core::read_listen(*this, t, p, out);
  }

  void read_tls_pair(const toml::table& t, const std::string& p, std::string& cert,
                     std::string& key) {
    string(t, p, "cert_file", cert);
    string(t, p, "key_file", key);
    if (cert.empty() != key.empty()) {
      problem(p + (cert.empty() ? "cert_file" : "key_file"), &t,
              "is required with " + p + (cert.empty() ? "key_file" : "cert_file"));
    }
  }

  void read_tls(const toml::table& t, tls_listener_settings& s) {
    const std::string p = "tls.";
    unknown_keys(t, p, {"cert_file", "key_file", "listen", "client_ca_file", "min_version", "sni"});
    read_tls_pair(t, p, s.cert_file, s.key_file);
    if (t.get("listen") != nullptr) {
      listen_address addr;
      read_listen(t, p, addr);
      s.listen = addr;
    }
    string(t, p, "client_ca_file", s.client_ca_file);
    if (const toml::node* node = t.get("min_version")) {
      const auto v = node->value_exact<std::string>();
      if (v == "1.2") {
        s.min_version = tls_min_version::tls1_2;
      } else if (v == "1.3") {
        s.min_version = tls_min_version::tls1_3;
      } else {
        problem(p + "min_version", node, "must be \"1.2\" or \"1.3\" (older versions are not served)");
      }
    }
    const toml::node* sni = t.get("sni");
    if (sni == nullptr) {
      return;
    }
    const toml::array* arr = sni->as_array();
    if (arr == nullptr) {
      problem(p + "sni", sni, "must be an array of tables ([[tls.sni]])");
      return;
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const std::string at = fmt::format("tls.sni[{}].", i);
      const toml::table* e = (*arr)[i].as_table();
      if (e == nullptr) {
        problem(at.substr(0, at.size() - 1), &(*arr)[i], "must be a table");
        continue;
      }
      unknown_keys(*e, at, {"server_name", "cert_file", "key_file"});
      tls_sni_certificate c;
      string(*e, at, "server_name", c.server_name);
      for (auto& ch : c.server_name) {
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      }
      if (!valid_server_name_pattern(c.server_name)) {
        problem(at + "server_name", e->get("server_name") ? e->get("server_name") : e,
                "must be a DNS name such as \"api.example.com\" or \"*.example.com\"");
      } else if (!names.insert(c.server_name).second) {
        problem(at + "server_name", e->get("server_name"),
                fmt::format("\"{}\" is already named by another [[tls.sni]] entry", c.server_name));
      }
      read_tls_pair(*e, at, c.cert_file, c.key_file);
      if (c.cert_file.empty()) {
        problem(at + "cert_file", e, "is required");
      }
      s.sni.push_back(std::move(c));
    }
  }

  // A DNS name of letters, digits and hyphens in dot-separated labels, optionally "*." first.
  static bool valid_server_name_pattern(std::string_view name) {
    if (name.starts_with("*.")) {
      name.remove_prefix(2);
    }
    if (name.empty() || name.size() > 253) {
      return false;
    }
    std::size_t label = 0;
    for (std::size_t i = 0; i <= name.size(); ++i) {
      if (i == name.size() || name[i] == '.') {
        if (label == 0 || label > 63 || name[i - 1] == '-') {
          return false;
        }
        label = 0;
        continue;
      }
      const char ch = name[i];
      const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || (ch == '-' && label > 0);
      if (!ok) {
        return false;
      }
      ++label;
    }
    return true;
  }

  void read_auth(const toml::table& t, auth_settings& a) {
    const std::string p = "auth.";
    unknown_keys(t, p, {"mode", "keys_file", "default_token_reservation", "shared_limits"});
    if (const toml::node* node = t.get("mode")) {
      const auto v = node->value_exact<std::string>();
      if (v == "keys") {
        a.mode = auth_mode::keys;
      } else if (v == "open") {
        a.mode = auth_mode::open;
      } else {
        problem(p + "mode", node, "must be \"keys\" or \"open\"");
      }
    }
    string(t, p, "keys_file", a.keys_file);
    integer(t, p, "default_token_reservation", a.default_token_reservation, 1, 10000000);
    if (const toml::node* node = t.get("shared_limits")) {
      const auto v = node->value_exact<std::string>();
      if (v == "off") {
        a.shared_limits = shared_limits_mode::off;
      } else if (v == "open") {
        a.shared_limits = shared_limits_mode::open;
      } else if (v == "closed") {
        a.shared_limits = shared_limits_mode::closed;
      } else if (v == "local-share") {
        a.shared_limits = shared_limits_mode::local_share;
      } else {
        problem(p + "shared_limits", node,
                "must be \"off\", \"open\", \"closed\" or \"local-share\"");
      }
    }
  }

  void read_admin(const toml::table& t, admin_settings& a) { core::read_admin(*this, t, a); }

  void read_journal(const toml::table& t, journal_settings_config& j) {
    const std::string p = "journal.";
    unknown_keys(
        t, p,
        {"mode", "max_bytes", "ttl_ms", "store", "store_password_file", "store_queue_bytes",
         "store_max_readers", "store_wait_replicas", "store_lease_ms"});
    if (const toml::node* node = t.get("mode")) {
      const auto v = node->value_exact<std::string>();
      if (v == "off") {
        j.mode = journal_mode::off;
      } else if (v == "keyed") {
        j.mode = journal_mode::keyed;
      } else if (v == "all") {
        j.mode = journal_mode::all;
      } else {
        problem(p + "mode", node, "must be \"off\", \"keyed\" or \"all\"");
      }
    }
    integer(t, p, "max_bytes", j.max_bytes, 4096, 1LL << 34);
    duration(t, p, "ttl_ms", j.ttl);
    if (const toml::node* node = t.get("store")) {
      const auto v = node->value_exact<std::string>();
      auto parsed = v ? parse_redis_store_address(*v) : redis_store_parse{};
      if (!v) {
        problem(p + "store", node, "must be a string such as \"redis://10.0.0.5:6379/0\"");
      } else if (!parsed.address) {
        problem(p + "store", node, parsed.problem);
      } else {
        j.store = std::move(parsed.address);
      }
    }
    string(t, p, "store_password_file", j.store_password_file);
    integer(t, p, "store_queue_bytes", j.store_queue_bytes, 65536, 1LL << 32);
    integer(t, p, "store_max_readers", j.store_max_readers, 1, 100000);
    duration(t, p, "store_lease_ms", j.store_lease, 300);
    if (j.store_lease > std::chrono::minutes(10)) {
      problem(p + "store_lease_ms", t.get("store_lease_ms"), "must be at most 600000");
    }
    if (t.contains("store_wait_replicas")) {
      unsigned replicas = 0;
      integer(t, p, "store_wait_replicas", replicas, 0, 16);
      j.store_wait_replicas = replicas;
    }
    if (!j.store_password_file.empty() && !j.store) {
      problem(p + "store_password_file", t.get("store_password_file"),
              "is set but journal.store is not");
    }
    if (j.store && j.mode == journal_mode::off) {
      problem(p + "store", t.get("store"),
              "is set but journal.mode is \"off\": nothing would be written to it (set mode to "
              "\"keyed\" or \"all\")");
    }
  }

  void read_uploads(const toml::table& t, upload_settings& u) {
    const std::string p = "uploads.";
    unknown_keys(t, p, {"dir", "max_bytes", "max_upload_bytes", "max_uploads", "ttl_ms"});
    string(t, p, "dir", u.dir);
    integer(t, p, "max_bytes", u.max_bytes, 1024, 1LL << 40);
    integer(t, p, "max_upload_bytes", u.max_upload_bytes, 1, 1LL << 34);
    integer(t, p, "max_uploads", u.max_uploads, 1, 1000000);
    duration(t, p, "ttl_ms", u.ttl, 1000);
  }

  void read_cache(const toml::table& t, cache_settings& c) {
    const std::string p = "cache.";
    unknown_keys(t, p, {"max_bytes", "max_entry_bytes", "ttl_ms"});
    integer(t, p, "max_bytes", c.max_bytes, 0, 1LL << 36);
    integer(t, p, "max_entry_bytes", c.max_entry_bytes, 4096, 1LL << 32);
    if (!t.contains("max_entry_bytes")) {
      c.max_entry_bytes = std::min(c.max_entry_bytes, c.max_bytes);  // a small cache: its size
    }
    if (c.max_bytes > 0 && c.max_bytes < 65536) {
      problem(p + "max_bytes", t.get("max_bytes"), "must be 0 (off) or at least 65536");
    }
    if (!t.contains("max_bytes") && !t.empty()) {
      problem(p + "max_bytes", &t,
              "is required: the cache is on only with a size (0 keeps it off)");
    }
    duration(t, p, "ttl_ms", c.ttl, 1000);
  }

  // api_key, api_keys, api_key_file, or token_url with client_id, client_secret_file and scope:
  // one source at most, since two would leave which one is sent to a guess.
  void read_upstream_credentials(const toml::table& t, const std::string& p, upstream_config& u) {
    string(t, p, "api_key", u.api_key);
    // A key goes into a header: visible ASCII only, or a key could smuggle a header of its own.
    if (t.contains("api_key") && !sendable_secret(u.api_key)) {
      problem(p + "api_key", t.get("api_key"), "must be visible ASCII without spaces");
    }
    array(t, p, "api_keys", "must be an array of non-empty strings",
          [&](const toml::node& n, const std::string& at) {
            const auto v = n.value_exact<std::string>();
            if (!v || !sendable_secret(*v)) {
              problem(at, &n, "must be a non-empty string of visible ASCII without spaces");
            } else if (std::find(u.api_keys.begin(), u.api_keys.end(), *v) != u.api_keys.end()) {
              problem(at, &n, "repeats an earlier key");
            } else {
              u.api_keys.push_back(*v);
            }
          });
    string(t, p, "api_key_file", u.api_key_file);
    auto& o = u.oauth;
    string(t, p, "token_url", o.token_url);
    string(t, p, "client_id", o.client_id);
    string(t, p, "client_secret_file", o.client_secret_file);
    string(t, p, "scope", o.scope);
    const int sources = int(t.contains("api_key")) + int(t.contains("api_keys")) +
                        int(t.contains("api_key_file")) + int(t.contains("token_url"));
    if (sources > 1) {
      problem(p + "api_key", &t,
              "give at most one of api_key, api_keys, api_key_file and token_url");
    }
    if (t.contains("api_keys") && u.api_keys.empty()) {
      problem(p + "api_keys", t.get("api_keys"), "must name at least one key");
    } else if (u.api_keys.size() > 64) {
      problem(p + "api_keys", t.get("api_keys"), "names more than 64 keys");
    }
    if (t.contains("api_key_file") && u.api_key_file.empty()) {
      problem(p + "api_key_file", t.get("api_key_file"), "must be a path");
    }
    for (const char* key : {"client_id", "client_secret_file", "scope"}) {
      if (t.contains(key) && !t.contains("token_url")) {
        problem(p + key, t.get(key), "is used only with token_url");
      }
    }
    if (!o.enabled()) {
      return;
    }
    const auto url = boost::urls::parse_absolute_uri(o.token_url);
    const bool https = url && url->scheme() == "https";
    const bool http = url && url->scheme() == "http";
    if (!url || !(https || http) || url->encoded_host().empty() || url->has_userinfo()) {
      problem(p + "token_url", t.get("token_url"),
              "must be an https:// URL without user:password@ (http:// only on loopback)");
    } else if (http && !is_loopback_host(url->host())) {
      problem(p + "token_url", t.get("token_url"),
              "must be https:// beyond loopback: the client secret is sent to it");
    }
    if (o.client_id.empty()) {
      problem(p + "client_id", &t, "is required with token_url");
    }
    if (o.client_secret_file.empty()) {
      problem(p + "client_secret_file", &t, "is required with token_url");
    }
  }

  // Where the connections leave from: an address of this host, an interface, or both.
  void read_source_binding(const toml::table& t, const std::string& p, upstream_config& u) {
    string(t, p, "bind_address", u.bind_address);
    if (t.contains("bind_address") && !is_ip_literal(u.bind_address)) {
      problem(p + "bind_address", t.get("bind_address"),
              "must be an IPv4 or IPv6 address of this host, e.g. \"192.168.1.20\"");
    }
    string(t, p, "bind_interface", u.bind_interface);
    if (t.contains("bind_interface") && !is_interface_name(u.bind_interface)) {
      problem(p + "bind_interface", t.get("bind_interface"),
              fmt::format("must be a network interface name of 1 to {} characters without "
                          "'/', ':' or spaces, e.g. \"wlan0\"",
                          IFNAMSIZ - 1));
    }
  }

  static bool is_loopback_host(std::string_view h) {
    return h.starts_with("127.") || h == "[::1]" || h == "::1";
  }

  void read_upstream(const toml::table& t, std::size_t index, upstream_config& u) {
    const std::string p = fmt::format("{}[{}].", names.links, index);
    unknown_keys(t, p, {"name", "url", "priority", "weight", "api_key", "api_keys", "api_key_file",
                        "token_url", "client_id", "client_secret_file", "scope", "tls_verify",
                        "ca_file", "resume", "reasoning_resume", "responses_resume",
                        "max_requests", "max_connections", "max_pending", "health_path",
                        "bind_address", "bind_interface", "heartbeat_ms",
                        "upload_threshold_bytes"});
    read_source_binding(t, p, u);
    u.heartbeat = link_defaults(names).heartbeat;
    u.upload_threshold = link_defaults(names).upload_threshold;
    integer(t, p, "upload_threshold_bytes", u.upload_threshold, 0, 1LL << 34);
    if (u.upload_threshold > 0 && u.upload_threshold < 4096) {
      problem(p + "upload_threshold_bytes", t.get("upload_threshold_bytes"),
              "must be 0 (bodies inline) or at least 4096");
    }
    duration(t, p, "heartbeat_ms", u.heartbeat, 0);
    if (u.heartbeat.count() != 0 && (u.heartbeat.count() < 100 || u.heartbeat.count() > 60000)) {
      problem(p + "heartbeat_ms", t.get("heartbeat_ms"), "must be 0 (off) or from 100 to 60000");
    }
    integer(t, p, "max_requests", u.max_requests, 0, 1000000);
    integer(t, p, "max_connections", u.max_connections, 0, 1000000);
    integer(t, p, "max_pending", u.max_pending, 0, 1000000);
    string(t, p, "health_path", u.health_path);
    if (!u.health_path.empty() && u.health_path.front() != '/') {
      problem(p + "health_path", t.get("health_path"), "must be an absolute path such as \"/v1/models\"");
    }
    if (const toml::node* node = t.get("resume")) {
      const auto v = node->value_exact<std::string>();
      if (v == "continue") {
        u.resume = resume_mode::continue_message;
      } else if (v == "prefill") {
        u.resume = resume_mode::prefill;
      } else if (v == "none") {
        u.resume = resume_mode::none;
      } else {
        problem(p + "resume", node, "must be \"continue\", \"prefill\" or \"none\"");
      }
    }
    if (const toml::node* node = t.get("reasoning_resume")) {
      const auto v = node->value_exact<std::string>();
      if (v == "think_tags") {
        u.resume_reasoning = reasoning_resume::think_tags;
      } else if (v == "think_tags_newline") {
        u.resume_reasoning = reasoning_resume::think_tags_newline;
      } else if (v == "opened_think") {
        u.resume_reasoning = reasoning_resume::opened_think;
      } else if (v == "none") {
        u.resume_reasoning = reasoning_resume::none;
      } else {
        problem(p + "reasoning_resume", node,
                "must be \"think_tags\", \"think_tags_newline\", \"opened_think\" or \"none\"");
      }
    }
    if (const toml::node* node = t.get("responses_resume")) {
      const auto v = node->value_exact<std::string>();
      if (v == "chat" || v == "none") {
        u.resume_responses = v == "chat";
      } else {
        problem(p + "responses_resume", node, "must be \"chat\" or \"none\"");
      }
    }
    string(t, p, "name", u.name);
    if (u.name.empty()) {
      u.name = fmt::format("{}-{}", names.link, index);
    }
    if (const toml::node* node = t.get("url")) {
      string(t, p, "url", u.url);
      if (!u.url.empty()) {
        if (auto why = resolve_upstream_url(u); !why.empty()) {
          problem(p + "url", node, why);
        }
      }
    } else {
      problem(p + "url", &t, "is required");
    }
    integer(t, p, "priority", u.priority, 0, 1000);
    integer(t, p, "weight", u.weight, 1, 1000000);
    read_upstream_credentials(t, p, u);
    boolean(t, p, "tls_verify", u.tls_verify);
    string(t, p, "ca_file", u.ca_file);
  }
};

}  // namespace

std::optional<listen_address> parse_listen_address(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || port.empty() || ec != std::errc() || ptr != port.data() + port.size() ||
      value > 65535) {
    return std::nullopt;
  }
  return listen_address{std::string(host), static_cast<std::uint16_t>(value)};
}

bool is_loopback(const listen_address& a) {
  const std::string_view h = a.host;
  return h.starts_with("127.") || h == "::1" || h == "0:0:0:0:0:0:0:1";
}

api_listeners api_listeners_of(const config& c) {
  api_listeners l;
  if (!c.tls.enabled()) {
    l.plain = c.gateway.listen;
  } else if (c.tls.listen) {
    l.plain = c.gateway.listen;
    l.tls = c.tls.listen;
  } else {
    l.tls = c.gateway.listen;
  }
  return l;
}

auth_mode effective_auth_mode(const auth_settings& a) {
  return a.mode.value_or(a.keys_file.empty() ? auth_mode::open : auth_mode::keys);
}

std::string resolve_upstream_url(upstream_config& u) {
  auto parsed = boost::urls::parse_absolute_uri(u.url);
  if (!parsed) {
    return "is not an absolute URL: " + parsed.error().message();
  }
  if (parsed->has_userinfo()) {
    // Never used, and it would show wherever the URL does (status, logs): credentials go in
    // api_key.
    return "must not hold credentials (user:password@); put a key in api_key";
  }
  const auto scheme = parsed->scheme();
  if (scheme != "http" && scheme != "https") {
    return "must start with http:// or https://";
  }
  u.tls = scheme == "https";
  u.host = std::string(parsed->host_address());
  if (u.host.empty()) {
    return "has no host";
  }
  if (parsed->has_port()) {
    if (parsed->port().empty() || parsed->port_number() == 0) {
      return "has an invalid port";
    }
    u.port = parsed->port_number();
  } else {
    u.port = u.tls ? 443 : 80;
  }
  if (parsed->has_query() || parsed->has_fragment()) {
    return "must not have a query or fragment";
  }
  std::string path(parsed->encoded_path());
  while (!path.empty() && path.back() == '/') {
    path.pop_back();
  }
  u.base_path = path.empty() ? "/v1" : path;
  return {};
}

role_names names_of(config_role role) {
  if (role == config_role::edge) {
    return {"edge", "uplinks", "uplink"};
  }
  return {"gateway", "upstreams", "upstream"};
}

upstream_config link_defaults(role_names names) {
  upstream_config u;
  if (names.role == "edge") {
    u.heartbeat = milliseconds(250);  // its uplinks are nines gateways: a cut shows in 750 ms
    u.upload_threshold = 256u << 10;  // a screenshot's body survives a cut in its upload
  }
  return u;
}

config defaults_of(config_role role) {
  config c;
  c.role = role;
  if (role == config_role::edge) {
    c.gateway.listen.port = 8081;
    c.admin.listen.port = 9902;
    c.health.path = "/readyz";
    c.routing.connect_race = milliseconds(250);
  }
  return c;
}

bool is_ip_literal(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) {
    return false;
  }
  const std::string s(text);
  unsigned char out[16];
  return ::inet_pton(AF_INET, s.c_str(), out) == 1 || ::inet_pton(AF_INET6, s.c_str(), out) == 1;
}

bool is_interface_name(std::string_view name) {
  return !name.empty() && name.size() < IFNAMSIZ && name != "." && name != ".." &&
         std::all_of(name.begin(), name.end(), [](char ch) {
           const auto u = static_cast<unsigned char>(ch);
           return u > 0x20 && u < 0x7f && ch != '/' && ch != ':';
         });
}

void validate(const config& c, std::vector<config_problem>& problems) {
  const auto n = names_of(c.role);
  if (c.upstreams.empty()) {
    problems.push_back({std::string(n.links), 0, 0,
                        fmt::format("at least one {} is required", n.link)});
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < c.upstreams.size(); ++i) {
    if (!names.insert(c.upstreams[i].name).second) {
      problems.push_back({fmt::format("{}[{}].name", n.links, i), 0, 0,
                          fmt::format("duplicate {} name \"{}\"", n.link, c.upstreams[i].name)});
    }
  }
  const std::string listen_key = std::string(n.role) + ".listen";
  if (c.outlier.max_ejection < c.outlier.base_ejection) {
    problems.push_back({"outlier.max_ejection_ms", 0, 0, "must not be below outlier.base_ejection_ms"});
  }
  if (c.hedge.delays.max_delay < c.hedge.delays.min_delay) {
    problems.push_back({"hedge.max_delay_ms", 0, 0, "must not be below hedge.min_delay_ms"});
  }
  if (c.retry.policy.backoff.cap < c.retry.policy.backoff.base) {
    problems.push_back({"retry.backoff_cap_ms", 0, 0, "must not be below retry.backoff_base_ms"});
  }
  // Beyond loopback, nobody gets in without a key unless the operator said so.
  const auto mode = effective_auth_mode(c.auth);
  if (mode == auth_mode::keys && c.auth.keys_file.empty()) {
    problems.push_back({"auth.keys_file", 0, 0, "is required with auth.mode = \"keys\""});
  }
  // An upload belongs to the client key that made it: without keys it would be anyone's.
  if (c.uploads.enabled() && mode != auth_mode::keys) {
    problems.push_back({"uploads.dir", 0, 0,
                        "uploads are for client keys only: set [auth] keys_file (auth.mode "
                        "\"keys\")"});
  }
  if (c.uploads.enabled() && c.uploads.max_upload_bytes > c.limits.max_body_bytes) {
    problems.push_back({"uploads.max_upload_bytes", 0, 0,
                        "must not be above limits.max_body_bytes: a finished upload becomes a "
                        "request body"});
  }
  if (c.uploads.enabled() && c.uploads.max_upload_bytes > c.uploads.max_bytes) {
    problems.push_back({"uploads.max_upload_bytes", 0, 0, "must not be above uploads.max_bytes"});
  }
  if (c.cache.enabled() && c.cache.max_entry_bytes > c.cache.max_bytes) {
    problems.push_back({"cache.max_entry_bytes", 0, 0, "must not be above cache.max_bytes"});
  }
  const auto listeners = api_listeners_of(c);
  for (const auto& [key, addr] :
       {std::pair{listen_key, listeners.plain},
        std::pair{c.tls.listen ? std::string("tls.listen") : listen_key, listeners.tls}}) {
    if (mode == auth_mode::open && !c.auth.mode && addr && !is_loopback(*addr)) {
      problems.push_back({key, 0, 0,
                          fmt::format("listens beyond loopback ({}), so it needs client keys "
                                      "([auth] keys_file); or set [auth] mode = \"open\" to "
                                      "serve anyone who can reach it",
                                      addr->host)});
      break;
    }
  }
  if (!c.tls.enabled() && (c.tls.listen || !c.tls.client_ca_file.empty() || !c.tls.sni.empty())) {
    problems.push_back({"tls.cert_file", 0, 0,
                        "is required with tls.listen, tls.client_ca_file or [[tls.sni]]"});
  }
  const auto same = [](const listen_address& a, const listen_address& b) {
    return a.port != 0 && a.port == b.port && a.host == b.host;
  };
  if (c.tls.enabled() && c.tls.listen && same(*c.tls.listen, c.gateway.listen)) {
    problems.push_back({"tls.listen", 0, 0,
                        "must differ from " + listen_key + " (leave it out to serve TLS there)"});
  }
  if (c.tls.enabled() && c.tls.listen && same(*c.tls.listen, c.admin.listen)) {
    problems.push_back({"tls.listen", 0, 0, "must not be the admin listener's address"});
  }
  validate_admin(c.admin, problems);
  if (c.devices) {
    validate_devices_settings(*c.devices, problems);
  }
  if (c.admin.listen.port != 0 && c.admin.listen.port == c.gateway.listen.port &&
      c.admin.listen.host == c.gateway.listen.host) {
    problems.push_back({"admin.listen", 0, 0, "must not be the API listener's address"});
  }
}

config_result parse_config(std::string_view toml_text, std::string_view source,
                           config_role role) {
  config_result result;
  auto& problems = result.problems;
  auto parsed = parse_toml(toml_text, source, problems);
  if (!parsed) {
    return result;
  }
  const toml::table& root = *parsed;
  const auto names = names_of(role);
  config c = defaults_of(role);
  reader r(problems, names);
  std::vector<int> upstream_lines;
  const std::string role_table(names.role);
  const std::string links(names.links);
  // The other role's tables: said so, since a file meant for one given to the other is the
  // likeliest way to meet them.
  const auto other = names_of(role == config_role::edge ? config_role::gateway : config_role::edge);
  const std::string other_table(other.role);
  const std::string other_links(other.links);
  r.unknown_keys(root, "", {role_table, "tls", "auth", "admin", "limits", "timeouts", "retry",
                            "journal", "uploads", "cache", "devices", "health", "outlier", "routing", "hedge",
                            "routes", "alerting", links, other_table, other_links});
  for (const auto& [theirs, ours] : {std::pair{other_table, role_table},
                                     std::pair{other_links, links}}) {
    if (const toml::node* node = root.get(theirs)) {
      r.problem(theirs, node,
                fmt::format("belongs to a nines {} configuration; nines {} reads [{}{}{}]",
                            other.role, names.role, theirs == other_links ? "[" : "", ours,
                            theirs == other_links ? "]" : ""));
    }
  }
  if (const auto* t = r.section(root, role_table)) {
    r.read_gateway(*t, c.gateway);
  }
  if (const auto* t = r.section(root, "tls")) {
    r.read_tls(*t, c.tls);
  }
  if (const auto* t = r.section(root, "auth")) {
    r.read_auth(*t, c.auth);
  }
  if (const auto* t = r.section(root, "admin")) {
    r.read_admin(*t, c.admin);
  }
  if (const auto* t = r.section(root, "limits")) {
    r.read_limits(*t, c.limits);
  }
  if (const auto* t = r.section(root, "timeouts")) {
    r.read_timeouts(*t, c.timeouts);
  }
  if (const auto* t = r.section(root, "retry")) {
    r.read_retry(*t, c.retry);
  }
  if (const auto* t = r.section(root, "journal")) {
    r.read_journal(*t, c.journal);
  }
  if (c.auth.shared_limits != shared_limits_mode::off && !c.journal.store) {
    const auto* auth = root.get("auth");
    r.problem(
        "auth.shared_limits",
        auth != nullptr && auth->is_table() ? auth->as_table()->get("shared_limits") : nullptr,
        "counts in journal.store's Redis, which is not set");
  }
  if (const auto* t = r.section(root, "uploads")) {
    r.read_uploads(*t, c.uploads);
  }
  if (const auto* t = r.section(root, "cache")) {
    r.read_cache(*t, c.cache);
  }
  if (const toml::node* node = root.get("devices"); node && role != config_role::edge) {
    r.problem("devices", node,
              "belongs to a nines edge configuration (the keeper beside the agents' phones) or "
              "to nines devices");
  } else if (const auto* t = r.section(root, "devices")) {
    c.devices.emplace();
    read_devices_section(r, *t, *c.devices);
  }
  if (const auto* t = r.section(root, "health")) {
    r.read_health(*t, c.health);
  }
  if (const auto* t = r.section(root, "outlier")) {
    r.read_outlier(*t, c.outlier);
  }
  if (const auto* t = r.section(root, "routing")) {
    r.read_routing(*t, c.routing);
  }
  if (const auto* t = r.section(root, "hedge")) {
    r.read_hedge(*t, c.hedge);
  }
  if (const auto* t = r.section(root, "routes")) {
    r.read_routes(*t, c.routes);
  }
  if (const auto* t = r.section(root, "alerting")) {
    read_alerting(r, *t, c.alerting);
  }
  if (const toml::node* node = root.get(links)) {
    const toml::array* arr = node->as_array();
    if (arr == nullptr) {
      r.problem(links, node, fmt::format("must be an array of tables ([[{}]])", links));
    } else {
      for (std::size_t i = 0; i < arr->size(); ++i) {
        const toml::table* t = (*arr)[i].as_table();
        if (t == nullptr) {
          r.problem(fmt::format("{}[{}]", links, i), &(*arr)[i], "must be a table");
          continue;
        }
        upstream_config u;
        r.read_upstream(*t, i, u);
        c.upstreams.push_back(std::move(u));
        upstream_lines.push_back(static_cast<int>(t->source().begin.line));
      }
    }
  }
  const std::size_t before = problems.size();
  validate(c, problems);
  // Relational problems have no node of their own: place them at their upstream's table.
  for (std::size_t i = before; i < problems.size(); ++i) {
    for (std::size_t u = 0; u < upstream_lines.size(); ++u) {
      if (problems[i].key.starts_with(fmt::format("{}[{}]", links, u))) {
        problems[i].line = upstream_lines[u];
      }
    }
  }
  // In the order of the file, which is the order someone fixing it reads in.
  std::stable_sort(problems.begin(), problems.end(),
                   [](const config_problem& a, const config_problem& b) { return a.line < b.line; });
  if (problems.empty()) {
    result.value = std::move(c);
  }
  return result;
}

config_result config_from_flags(const gateway_flags& flags) {
  config_result result;
  config c = defaults_of(flags.role);
  const auto names = names_of(flags.role);
  const auto& urls = flags.upstreams;
  if (flags.listen.empty()) {
    // the role's default
  } else if (auto addr = parse_listen_address(flags.listen)) {
    c.gateway.listen = *addr;
  } else {
    result.problems.push_back({"--listen", 0, 0, "must be \"host:port\""});
  }
  if (!flags.admin_listen.empty()) {
    if (auto addr = parse_listen_address(flags.admin_listen)) {
      c.admin.listen = *addr;
    } else {
      result.problems.push_back({"--admin-listen", 0, 0, "must be \"host:port\""});
    }
  }
  c.tls.cert_file = flags.tls_cert;
  c.tls.key_file = flags.tls_key;
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) {
    result.problems.push_back({c.tls.cert_file.empty() ? "--tls-cert" : "--tls-key", 0, 0,
                               c.tls.cert_file.empty() ? "is required with --tls-key"
                                                       : "is required with --tls-cert"});
  }
  c.auth.keys_file = flags.keys_file;
  if (flags.auth_mode == "keys") {
    c.auth.mode = auth_mode::keys;
  } else if (flags.auth_mode == "open") {
    c.auth.mode = auth_mode::open;
  } else if (!flags.auth_mode.empty()) {
    result.problems.push_back({"--auth", 0, 0, "must be \"keys\" or \"open\""});
  }
  for (std::size_t i = 0; i < urls.size(); ++i) {
    upstream_config u = link_defaults(names);
    u.name = fmt::format("{}-{}", names.link, i);
    u.url = urls[i];
    if (auto why = resolve_upstream_url(u); !why.empty()) {
      result.problems.push_back({fmt::format("--{}[{}]", names.link, i), 0, 0, why});
    }
    c.upstreams.push_back(std::move(u));
  }
  validate(c, result.problems);
  if (result.problems.empty()) {
    result.value = std::move(c);
  }
  return result;
}

}  // namespace nines::core
