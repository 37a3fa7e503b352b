#pragma once
// The gateway's configuration: typed structs whose member initialisers are the defaults (the one
// place they are written), a TOML reader that reports every problem with its key path and line, and
// the same model built from command-line flags. Documented field by field in docs/config.md.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/devices/device_alerts.hpp"
#include "core/obs/alert_rules.hpp"
#include "core/redis/redis_store_address.hpp"
#include "core/config/config_problem.hpp"
#include "core/devices/device_lifecycle.hpp"
#include "core/http/api_routes.hpp"
#include "core/routing/hedge_policy.hpp"
#include "core/health/link_quality.hpp"
#include "core/health/outlier_detector.hpp"
#include "core/routing/retry_budget.hpp"
#include "core/routing/retry_policy.hpp"
#include "core/stream/stream_continuation.hpp"
#include "core/routing/tier_selector.hpp"

namespace nines::core {

using std::chrono::milliseconds;

struct listen_address {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
};

// An OAuth2 client-credentials grant (RFC 6749 §4.4) that issues an upstream's bearer tokens.
struct oauth_client_settings {
  std::string token_url;  // http:// only on loopback: the client secret travels to it
  std::string client_id;
  std::string client_secret_file;
  std::string scope;
  bool enabled() const { return !token_url.empty(); }
};

struct upstream_config {
  std::string name;
  std::string url;        // as configured: the server's OpenAI base URL
  bool tls = false;       // https
  std::string host;       // from url
  std::uint16_t port = 0; // from url (default 80 / 443)
  std::string base_path;  // from url, without trailing '/'; "/v1" when the url has no path
  int priority = 0;       // lower is preferred
  unsigned weight = 1;
  // The upstream's credential, at most one source of the four: sent as "Authorization: Bearer".
  std::string api_key;                // one fixed key
  std::vector<std::string> api_keys;  // several, used in turn; a rejected one cools down
  std::string api_key_file;           // a file holding the key, re-read when it changes
  oauth_client_settings oauth;        // OAuth2 client credentials (token_url set)
  bool tls_verify = true; // verify chain and host name
  std::string ca_file;    // extra trust anchor (PEM) besides the system store
  resume_mode resume = resume_mode::continue_message;  // how a broken stream continues here
  // How a thought that reached the client is carried into a continuation (core/stream).
  reasoning_resume resume_reasoning = reasoning_resume::think_tags;
  // A Responses stream continues here through chat completions (responses_resume = "chat").
  bool resume_responses = true;
  unsigned max_requests = 0;      // attempts in flight at once, all workers; 0: unlimited
  unsigned max_connections = 0;   // open connections per worker; 0: unlimited
  unsigned max_pending = 64;      // requests per worker waiting for a connection at the limit
  std::string health_path;        // probe path for this upstream; empty: [health] probe_path
  // The path out: connections leave from this source address and/or through this interface
  // (SO_BINDTODEVICE), so that WiFi and cellular can be two uplinks. Empty: as routed.
  std::string bind_address;    // an IP address literal of this host
  std::string bind_interface;  // an interface name, e.g. "wlan0"
  // Asked of the upstream (x-nines-heartbeat-ms; a nines gateway honours it): an SSE comment on
  // a stream's silences. When the upstream says it beats, silence longer than three beats breaks
  // the stream (then resumed elsewhere), instead of timeouts.stream_idle. 0: not asked.
  milliseconds heartbeat{0};
  // A request body larger than this goes to the upstream as a tus upload first (a nines gateway
  // with [uploads]), resumed from the stored offset after a cut, and the request then names it
  // (Nines-Upload). 0: bodies go inline (the gateway's default; the edge's is 256 KiB).
  std::size_t upload_threshold = 0;
};

struct gateway_settings {
  listen_address listen{};
  unsigned workers = 0;  // 0: one per core
  milliseconds drain_timeout{30000};
  std::string access_log = "stdout";  // "stdout", "off", or a file path
  std::string log_format = "text";    // the operational log on stderr: "text" or "json"
};

struct limit_settings {
  std::size_t max_body_bytes = 32u << 20;
  std::size_t max_header_bytes = 64u << 10;
  std::size_t max_header_count = 100;      // header fields per request (431 past it)
  std::size_t max_chunk_meta_bytes = 4096;  // chunk extensions and trailers of one body
  unsigned max_client_connections = 0;             // all workers; 0: from the descriptor limit
  unsigned max_client_connections_per_worker = 0;  // 0: no cap of its own
  std::size_t max_response_bytes = 64u << 20;
  std::size_t max_event_bytes = 1u << 20;
  std::size_t max_idle_per_upstream = 64;  // per worker
  std::size_t min_idle_per_upstream = 0;   // per worker, kept warm
  milliseconds max_connection_lifetime{600000};  // a pooled connection older than this closes
};

struct timeout_settings {
  milliseconds connect{5000};
  milliseconds first_byte{30000};
  milliseconds stream_idle{10000};
  milliseconds request{600000};
  milliseconds client_header{30000};
  milliseconds client_idle{60000};
  milliseconds tls_handshake{10000};  // a client's TLS handshake, from its accept
  milliseconds upstream_idle{60000};
};

struct retry_settings {
  retry_policy policy{};
  milliseconds deadline{60000};  // for all attempts before the first byte reaches the client
  unsigned max_resumes = 3;      // continuations of one broken stream
  retry_budget_settings budget{};
};

// Active probes of every upstream (core/health/link_quality.hpp).
struct health_settings {
  bool enabled = true;
  milliseconds interval{3000};
  milliseconds jitter{300};   // each wait is interval ± jitter, uniform
  milliseconds timeout{1000};
  std::string path = "/health";
  active_health_settings thresholds{};
  std::size_t window = 20;    // probes kept for loss, jitter and p99 (and the score)
  link_thresholds alerts{};
};

struct routing_settings {
  tier_settings tiers{};
  double panic_threshold = 0.5;  // a tier with a smaller share of usable upstreams panics
  // A connect not done after this is raced by an attempt on the next upstream (Happy Eyeballs,
  // RFC 8305's 250 ms); the first to connect carries the request. 0: no racing.
  milliseconds connect_race{0};
};

// The SLA objective and the built-in alerting (core/obs/alert_rules.hpp).
struct alerting_config {
  alert_settings rules{};
  std::vector<std::string> webhooks;  // http(s) URLs notified as JSON (Alertmanager's format)
  milliseconds evaluation_interval{1000};
  milliseconds repeat_interval{4 * 3600 * 1000};  // a firing alert is sent again this often
  unsigned webhook_attempts = 5;                    // per notification, with backoff
  milliseconds webhook_timeout{5000};
};

struct hedge_config {
  std::vector<std::string> routes;  // "chat", "completions", "embeddings": hedged by default
  bool allow_client_header = false;  // honour a client's x-nines-hedge (it multiplies upstream work)
  hedge_settings delays{};
};

// Which requests may reach an upstream beyond the built-in OpenAI routes (core/http/api_routes).
struct route_settings {
  std::vector<route_pattern> passthrough;  // "METHOD /v1/path" patterns
};

// Which requests are journaled (see core/stream/stream_journal.hpp): their generation survives the
// client's disconnect, and they can be resumed with Last-Event-ID or repeated with Idempotency-Key.
// Off by default: a journaled generation outlives its client, so a header that starts one lets a
// client leave work running; an operator turns it on knowingly.
enum class journal_mode {
  off,    // none
  keyed,  // requests with an Idempotency-Key, an X-Request-Id or a Last-Event-ID
  all,    // every generation request
};

struct journal_settings_config {
  journal_mode mode = journal_mode::off;
  std::size_t max_bytes = 64u << 20;  // all journaled answers together
  milliseconds ttl{120000};           // kept after the end; a generation alone runs this long
  // The shared journal (gateway/journal_store.hpp): every journaled stream is also written to
  // Redis, so that a reconnect with Last-Event-ID to another replica reads it there. Unset: this
  // process's memory only.
  std::optional<redis_store_address> store;
  std::string store_password_file;          // the Redis password, alone in a file; empty: none
  std::size_t store_queue_bytes = 16u << 20;  // writes waiting for Redis; past it a stream's
                                              // copy is marked incomplete, never blocked on
  unsigned store_max_readers = 1024;  // reconnects read from Redis at once (each a connection)
  // A running answer's owner holds it this long past its last write (renewed a third of it
  // before); then a reconnect elsewhere takes it over and continues the generation.
  milliseconds store_lease{3000};
  // A write to Redis counts as kept once this many replicas have it (WAIT); until then it is sent
  // again, so that a failover loses none of it. Unset: 1 with Sentinels, else 0.
  std::optional<unsigned> store_wait_replicas;
  unsigned wait_replicas() const {
    return store_wait_replicas.value_or(
        store && store->type == redis_store_address::kind::sentinel ? 1 : 0);
  }
};

// tus uploads at /v1/uploads (gateway/upload_endpoint.hpp), for client keys only. Off while dir is
// empty.
struct upload_settings {
  std::string dir;                             // made 0700 if missing; owned by the gateway
  std::uint64_t max_bytes = 1u << 30;          // every live upload's declared length together
  std::uint64_t max_upload_bytes = 32u << 20;  // one upload (at most limits.max_body_bytes)
  std::size_t max_uploads = 4096;
  milliseconds ttl{600000};                    // after the upload's last change
  bool enabled() const { return !dir.empty(); }
};

// The answer cache (core/cache/answer_cache.hpp, gateway/answer_cache_relay.hpp): answers to
// identical requests at temperature 0, kept in memory. Off while max_bytes is 0.
struct cache_settings {
  std::size_t max_bytes = 0;                // every kept answer together
  std::size_t max_entry_bytes = 8u << 20;   // one answer (at most max_bytes; unset: that or less)
  milliseconds ttl{300000};                 // after the answer was stored
  bool enabled() const { return max_bytes > 0; }
};

// Who may use the API listener (core/access/client_keys.hpp). Beyond loopback nobody gets in
// without a key, unless the operator says `mode = "open"` in so many words.
enum class auth_mode { keys, open };

// Client keys' per-minute limits across replicas (auth.shared_limits): off (each replica counts
// its own), or counted in journal.store's Redis, with what to do while it is away.
enum class shared_limits_mode { off, open, closed, local_share };

struct auth_settings {
  std::optional<auth_mode> mode;  // unset: keys when keys_file is set, else open (loopback only)
  std::string keys_file;          // TOML [[keys]] (docs/config.md); reloaded with the config
  std::uint64_t default_token_reservation = 1024;  // for tokens_per_minute, without max_tokens
  shared_limits_mode shared_limits = shared_limits_mode::off;
};

// The admin listener: /metrics, /status, /dashboard, /healthz, /readyz. Never on the API port.
struct admin_settings {
  listen_address listen{"127.0.0.1", 9901};
  std::string key_hash;  // "sha256:<hex>" of the admin secret; required beyond loopback
};

// TLS on the API listener (net/tls_server_identity.hpp). Off while cert_file is empty.
struct tls_sni_certificate {
  std::string server_name;  // "api.example.com" or "*.example.com" (one label), case-insensitive
  std::string cert_file;    // PEM: the leaf, then its chain
  std::string key_file;
};

enum class tls_min_version { tls1_2, tls1_3 };

struct tls_listener_settings {
  std::string cert_file;  // PEM: the leaf, then its chain; served when no SNI entry matches
  std::string key_file;
  // Unset: gateway.listen speaks TLS. Set: TLS is served here and gateway.listen stays plain.
  std::optional<listen_address> listen;
  std::string client_ca_file;  // set: clients must present a certificate this CA issued (mTLS)
  tls_min_version min_version = tls_min_version::tls1_2;
  std::vector<tls_sni_certificate> sni;
  bool enabled() const { return !cert_file.empty(); }
};

// Which role reads the configuration. The edge (beside the agents, in front of uplinks) takes the
// same file as the gateway with `[edge]` for `[gateway]` and `[[uplinks]]` for `[[upstreams]]`,
// and its own defaults (edge_defaults).
enum class config_role { gateway, edge };

// The device keeper's settings: `nines devices`, and `[devices]` in an edge's file
// (core/config/devices_config.hpp reads them; docs/config.md).
struct devices_settings {
  std::string adb_server;  // "host:port"; empty: ANDROID_ADB_SERVER_SOCKET, then 127.0.0.1:5037
  detector_policy policy;
  std::size_t max_devices = 1024;
  bool per_device_metrics = true;
  std::vector<std::string> network;       // "host:port" of phones reconnected forever
  std::string adb_proxy;                  // "127.0.0.1:PORT" of the ADB proxy; empty: none
  std::chrono::milliseconds hold{10000};  // how long the proxy holds a command for a phone away
  device_alert_settings alerts;           // NinesDeviceOffline, NinesFleetOnlineLow
};

// The names a role's file and messages use.
struct role_names {
  std::string_view role;   // "gateway", "edge": the listener's table, and the command
  std::string_view links;  // "upstreams", "uplinks": the array of tables
  std::string_view link;   // "upstream", "uplink"
};
role_names names_of(config_role role);

struct config {
  config_role role = config_role::gateway;
  gateway_settings gateway{};
  tls_listener_settings tls{};
  auth_settings auth{};
  admin_settings admin{};
  limit_settings limits{};
  timeout_settings timeouts{};
  retry_settings retry{};
  journal_settings_config journal{};
  upload_settings uploads{};
  cache_settings cache{};
  // The device keeper inside the edge ([devices]); none without the table.
  std::optional<devices_settings> devices;
  health_settings health{};
  outlier_settings outlier{};
  routing_settings routing{};
  hedge_config hedge{};
  route_settings routes{};
  alerting_config alerting{};
  std::vector<upstream_config> upstreams;
};

struct config_result {
  std::optional<config> value;  // set when problems is empty
  std::vector<config_problem> problems;
};

// The defaults of a role: the gateway's are the member initialisers; the edge listens on
// 127.0.0.1:8081 (admin 127.0.0.1:9902), probes its uplinks' /readyz (a nines gateway's readiness
// on its API port) and races a slow connect after 250 ms.
config defaults_of(config_role role);
// An upstream's defaults in a role (the edge asks its uplinks for heartbeats every 250 ms).
upstream_config link_defaults(role_names names);

// Reads a TOML document. `source` names it in messages (a file path).
config_result parse_config(std::string_view toml_text, std::string_view source,
                           config_role role = config_role::gateway);

// What `nines gateway` (and `nines edge`) takes as flags without a config file.
struct gateway_flags {
  config_role role = config_role::gateway;
  std::string listen;        // "" : the role's default

  std::vector<std::string> upstreams;
  std::string keys_file;     // --keys
  std::string auth_mode;     // --auth: "keys" or "open" ("" : by the keys file and the address)
  std::string admin_listen;  // --admin-listen ("" : the default)
  std::string tls_cert;      // --tls-cert
  std::string tls_key;       // --tls-key
};

// Builds a config from flags: each URL an upstream named "upstream-N" (an uplink "uplink-N") in
// priority 0.
config_result config_from_flags(const gateway_flags& flags);
inline config_result config_from_flags(std::string_view listen,
                                       const std::vector<std::string>& urls) {
  gateway_flags f;
  f.listen = std::string(listen);
  f.upstreams = urls;
  return config_from_flags(f);
}

// Checks relations between fields (unique names, at least one upstream, ...). Used by both readers.
void validate(const config& c, std::vector<config_problem>& problems);

// An IPv4 or IPv6 address literal ("192.168.1.20", "fe80::1"): a bind_address.
bool is_ip_literal(std::string_view text);
// A Linux network interface name (below IFNAMSIZ, visible ASCII without '/' or ':').
bool is_interface_name(std::string_view name);

// "host:port" or "[v6]:port".
std::optional<listen_address> parse_listen_address(std::string_view text);

// 127.0.0.0/8 or ::1 (what only this machine can reach).
bool is_loopback(const listen_address& a);

// The API listeners in effect: the plain one (unless TLS took its place) and the TLS one.
struct api_listeners {
  std::optional<listen_address> plain;
  std::optional<listen_address> tls;
};
api_listeners api_listeners_of(const config& c);

// The auth mode in effect: as configured, else keys when a keys file is named, else open.
auth_mode effective_auth_mode(const auth_settings& a);

// Fills tls/host/port/base_path from url; returns what is wrong, empty when fine.
std::string resolve_upstream_url(upstream_config& upstream);

}  // namespace nines::core
