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

#include "core/retry_policy.hpp"
#include "core/stream_continuation.hpp"
#include "core/config_problem.hpp"

namespace nines::core {

using std::chrono::milliseconds;

struct listen_address {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
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
  std::string api_key;    // sent as "Authorization: Bearer ..." when set
  bool tls_verify = true; // verify chain and host name
  std::string ca_file;    // extra trust anchor (PEM) besides the system store
  resume_mode resume = resume_mode::continue_message;  // how a broken stream continues here
};

struct gateway_settings {
  listen_address listen{};
  unsigned workers = 0;  // 0: one per core
  milliseconds drain_timeout{30000};
  std::string access_log = "stdout";  // "stdout", "off", or a file path
};

struct limit_settings {
  std::size_t max_body_bytes = 32u << 20;
  std::size_t max_header_bytes = 64u << 10;
  std::size_t max_response_bytes = 64u << 20;
  std::size_t max_event_bytes = 1u << 20;
  std::size_t max_idle_per_upstream = 64;  // per worker
};

struct timeout_settings {
  milliseconds connect{5000};
  milliseconds first_byte{30000};
  milliseconds stream_idle{10000};
  milliseconds request{600000};
  milliseconds client_header{30000};
  milliseconds client_idle{60000};
  milliseconds upstream_idle{60000};
};

struct retry_settings {
  retry_policy policy{};
  milliseconds deadline{60000};  // for all attempts before the first byte reaches the client
  unsigned max_resumes = 3;      // continuations of one broken stream
};

// Which requests are journaled (see core/stream_journal.hpp): their generation survives the
// client's disconnect, and they can be resumed with Last-Event-ID or repeated with Idempotency-Key.
enum class journal_mode {
  off,    // none
  keyed,  // requests with an Idempotency-Key, an X-Request-Id or a Last-Event-ID
  all,    // every generation request
};

struct journal_settings_config {
  journal_mode mode = journal_mode::keyed;
  std::size_t max_bytes = 64u << 20;  // all journaled answers together
  milliseconds ttl{120000};           // kept after the end; a generation alone runs this long
};

struct config {
  gateway_settings gateway{};
  limit_settings limits{};
  timeout_settings timeouts{};
  retry_settings retry{};
  journal_settings_config journal{};
  std::vector<upstream_config> upstreams;
};

struct config_result {
  std::optional<config> value;  // set when problems is empty
  std::vector<config_problem> problems;
};

// Reads a TOML document. `source` names it in messages (a file path).
config_result parse_config(std::string_view toml_text, std::string_view source);

// Builds a config from flags: each URL an upstream named "upstream-N" in priority 0.
config_result config_from_flags(std::string_view listen, const std::vector<std::string>& urls);

// Checks relations between fields (unique names, at least one upstream, ...). Used by both readers.
void validate(const config& c, std::vector<config_problem>& problems);

// "host:port" or "[v6]:port".
std::optional<listen_address> parse_listen_address(std::string_view text);

// Fills tls/host/port/base_path from url; returns what is wrong, empty when fine.
std::string resolve_upstream_url(upstream_config& upstream);

}  // namespace nines::core
