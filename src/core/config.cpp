#include "core/config.hpp"

#include <boost/url/parse.hpp>
#include <charconv>
#include <fmt/format.h>
#include <set>

#include "core/toml_reader.hpp"

namespace nines::core {
namespace {

struct reader : toml_reader {
  using toml_reader::toml_reader;

  void read_gateway(const toml::table& t, gateway_settings& g) {
    const std::string p = "gateway.";
    unknown_keys(t, p, {"listen", "workers", "drain_timeout_ms", "access_log"});
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
    unknown_keys(t, p, {"max_body_bytes", "max_header_bytes", "max_response_bytes",
                        "max_event_bytes", "max_idle_per_upstream"});
    integer(t, p, "max_body_bytes", l.max_body_bytes, 1, 1LL << 32);
    integer(t, p, "max_header_bytes", l.max_header_bytes, 1024, 1 << 20);
    integer(t, p, "max_response_bytes", l.max_response_bytes, 1024, 1LL << 32);
    integer(t, p, "max_event_bytes", l.max_event_bytes, 1024, 1LL << 30);
    integer(t, p, "max_idle_per_upstream", l.max_idle_per_upstream, 0, 100000);
  }

  void read_timeouts(const toml::table& t, timeout_settings& s) {
    const std::string p = "timeouts.";
    unknown_keys(t, p, {"connect_ms", "first_byte_ms", "stream_idle_ms", "request_ms",
                        "client_header_ms", "client_idle_ms", "upstream_idle_ms"});
    duration(t, p, "connect_ms", s.connect);
    duration(t, p, "first_byte_ms", s.first_byte);
    duration(t, p, "stream_idle_ms", s.stream_idle);
    duration(t, p, "request_ms", s.request);
    duration(t, p, "client_header_ms", s.client_header);
    duration(t, p, "client_idle_ms", s.client_idle);
    duration(t, p, "upstream_idle_ms", s.upstream_idle);
  }

  void read_retry(const toml::table& t, retry_settings& r) {
    const std::string p = "retry.";
    unknown_keys(t, p, {"max_attempts", "backoff_base_ms", "backoff_cap_ms", "deadline_ms",
                        "retry_on_status", "honour_retry_after", "max_resumes"});
    integer(t, p, "max_resumes", r.max_resumes, 0, 20);
    integer(t, p, "max_attempts", r.policy.max_attempts, 1, 20);
    duration(t, p, "backoff_base_ms", r.policy.backoff.base, 0);
    duration(t, p, "backoff_cap_ms", r.policy.backoff.cap, 0);
    duration(t, p, "deadline_ms", r.deadline);
    boolean(t, p, "honour_retry_after", r.policy.honour_retry_after);
    if (const toml::node* node = t.get("retry_on_status")) {
      const toml::array* arr = node->as_array();
      if (arr == nullptr) {
        problem(p + "retry_on_status", node, "must be an array of HTTP status codes");
      } else {
        r.policy.retry_statuses.clear();
        for (std::size_t i = 0; i < arr->size(); ++i) {
          auto v = (*arr)[i].value_exact<std::int64_t>();
          if (!v || *v < 400 || *v > 599) {
            problem(fmt::format("{}retry_on_status[{}]", p, i), &(*arr)[i],
                    "must be a status code from 400 to 599");
          } else {
            r.policy.retry_statuses.push_back(static_cast<unsigned>(*v));
          }
        }
      }
    }
  }

  void read_journal(const toml::table& t, journal_settings_config& j) {
    const std::string p = "journal.";
    unknown_keys(t, p, {"mode", "max_bytes", "ttl_ms"});
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
  }

  void read_upstream(const toml::table& t, std::size_t index, upstream_config& u) {
    const std::string p = fmt::format("upstreams[{}].", index);
    unknown_keys(t, p, {"name", "url", "priority", "weight", "api_key", "tls_verify", "ca_file",
                        "resume"});
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
    string(t, p, "name", u.name);
    if (u.name.empty()) {
      u.name = fmt::format("upstream-{}", index);
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
    string(t, p, "api_key", u.api_key);
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

std::string resolve_upstream_url(upstream_config& u) {
  auto parsed = boost::urls::parse_absolute_uri(u.url);
  if (!parsed) {
    return "is not an absolute URL: " + parsed.error().message();
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

void validate(const config& c, std::vector<config_problem>& problems) {
  if (c.upstreams.empty()) {
    problems.push_back({"upstreams", 0, 0, "at least one upstream is required"});
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < c.upstreams.size(); ++i) {
    if (!names.insert(c.upstreams[i].name).second) {
      problems.push_back({fmt::format("upstreams[{}].name", i), 0, 0,
                          fmt::format("duplicate upstream name \"{}\"", c.upstreams[i].name)});
    }
  }
  if (c.retry.policy.backoff.cap < c.retry.policy.backoff.base) {
    problems.push_back({"retry.backoff_cap_ms", 0, 0, "must not be below retry.backoff_base_ms"});
  }
}

config_result parse_config(std::string_view toml_text, std::string_view source) {
  config_result result;
  auto& problems = result.problems;
  auto parsed = parse_toml(toml_text, source, problems);
  if (!parsed) {
    return result;
  }
  const toml::table& root = *parsed;
  config c;
  reader r(problems);
  std::vector<int> upstream_lines;
  r.unknown_keys(root, "", {"gateway", "limits", "timeouts", "retry", "journal", "upstreams"});
  if (const auto* t = r.section(root, "gateway")) {
    r.read_gateway(*t, c.gateway);
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
  if (const toml::node* node = root.get("upstreams")) {
    const toml::array* arr = node->as_array();
    if (arr == nullptr) {
      r.problem("upstreams", node, "must be an array of tables ([[upstreams]])");
    } else {
      for (std::size_t i = 0; i < arr->size(); ++i) {
        const toml::table* t = (*arr)[i].as_table();
        if (t == nullptr) {
          r.problem(fmt::format("upstreams[{}]", i), &(*arr)[i], "must be a table");
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
      if (problems[i].key.starts_with(fmt::format("upstreams[{}]", u))) {
        problems[i].line = upstream_lines[u];
      }
    }
  }
  if (problems.empty()) {
    result.value = std::move(c);
  }
  return result;
}

config_result config_from_flags(std::string_view listen, const std::vector<std::string>& urls) {
  config_result result;
  config c;
  if (auto addr = parse_listen_address(listen)) {
    c.gateway.listen = *addr;
  } else {
    result.problems.push_back({"--listen", 0, 0, "must be \"host:port\""});
  }
  for (std::size_t i = 0; i < urls.size(); ++i) {
    upstream_config u;
    u.name = fmt::format("upstream-{}", i);
    u.url = urls[i];
    if (auto why = resolve_upstream_url(u); !why.empty()) {
      result.problems.push_back({fmt::format("--upstream[{}]", i), 0, 0, why});
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
