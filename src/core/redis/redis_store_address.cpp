#include "core/redis/redis_store_address.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>

#include "core/config/config.hpp"

namespace nines::core {
namespace {

constexpr std::size_t max_sentinels = 16;

redis_store_parse refuse(std::string why) {
  return redis_store_parse{std::nullopt, std::move(why)};
}

// A host name as RFC 1123 has it: labels of letters, digits and hyphens (1 to 63, no hyphen at
// either end), at most 253 bytes, the last label not all digits (so that what looks like a broken
// IP address is not taken for a name).
bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) {
    return false;
  }
  if (name.back() == '.') {
    name.remove_suffix(1);  // the root
  }
  std::string_view label;
  while (!name.empty()) {
    const auto dot = name.find('.');
    label = name.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (const unsigned char c : label) {
      if (!std::isalnum(c) && c != '-') {
        return false;
      }
    }
    name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
  }
  return label.find_first_not_of("0123456789") != std::string_view::npos;
}

// "HOST:PORT" or "[V6]:PORT", HOST an IP literal or a DNS name, PORT 1-65535.
std::optional<redis_server_address> server_address(std::string_view text, std::string& why) {
  const auto at = parse_listen_address(text);
  if (!at || at->port == 0) {
    why = fmt::format("\"{}\" is not HOST:PORT with a port from 1 to 65535", text);
    return std::nullopt;
  }
  if (is_ip_literal(at->host)) {
    return redis_server_address{at->host, at->port};
  }
  if (text.front() == '[' || !is_dns_name(at->host)) {
    why = fmt::format("\"{}\" is neither an IP address nor a DNS name", at->host);
    return std::nullopt;
  }
  std::string host = at->host;
  for (auto& c : host) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return redis_server_address{std::move(host), at->port};
}

bool printable(std::string_view text) {
  for (const unsigned char c : text) {
    if (c <= 0x20 || c >= 0x7f) {
      return false;
    }
  }
  return true;
}

}  // namespace

redis_store_parse parse_redis_store_address(std::string_view text) {
  if (!printable(text)) {
    return refuse("must be printable ASCII without spaces");
  }
  redis_store_address out;
  std::string_view rest;
  if (text.starts_with("redis://")) {
    rest = text.substr(8);
  } else if (text.starts_with("redis-sentinel://")) {
    out.type = redis_store_address::kind::sentinel;
    rest = text.substr(17);
  } else {
    return refuse("must start with redis:// or redis-sentinel://");
  }
  if (rest.find('@') != std::string_view::npos) {
    return refuse(
        "must not hold a user or password (give the password in "
        "journal.store_password_file)");
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return refuse("must not have a query or fragment");
  }
  const auto slash = rest.find('/');
  const std::string_view nodes = rest.substr(0, slash);
  const std::string_view path =
      slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  std::string why;
  if (out.type == redis_store_address::kind::server) {
    if (nodes.find(',') != std::string_view::npos) {
      return refuse("redis:// takes one server (Sentinels: redis-sentinel://)");
    }
    auto server = server_address(nodes, why);
    if (!server) {
      return refuse(why);
    }
    out.nodes.push_back(*server);
    if (slash != std::string_view::npos) {
      unsigned db = 0;
      const auto [ptr, ec] = std::from_chars(path.data(), path.data() + path.size(), db);
      if (path.empty() || ec != std::errc() || ptr != path.data() + path.size() || db > 15 ||
          (path.size() > 1 && path.front() == '0')) {
        return refuse(fmt::format("the database \"{}\" is not a number from 0 to 15", path));
      }
      out.db = db;
    }
    return redis_store_parse{std::move(out), {}};
  }
  std::string_view list = nodes;
  while (true) {
    const auto comma = list.find(',');
    auto node = server_address(list.substr(0, comma), why);
    if (!node) {
      return refuse(why);
    }
    for (const auto& seen : out.nodes) {
      if (seen == *node) {
        return refuse(fmt::format("the Sentinel {}:{} is listed twice", node->host, node->port));
      }
    }
    out.nodes.push_back(*node);
    if (out.nodes.size() > max_sentinels) {
      return refuse(fmt::format("lists more than {} Sentinels", max_sentinels));
    }
    if (comma == std::string_view::npos) {
      break;
    }
    list.remove_prefix(comma + 1);
  }
  // Sentinel's own rule for a master name: no spaces, no control bytes (checked above), and we
  // keep it short and free of '/'.
  if (path.empty() || path.size() > 128 || path.find('/') != std::string_view::npos) {
    return refuse("redis-sentinel:// must end with /MASTER-NAME (1-128 bytes, no '/')");
  }
  out.master_name = std::string(path);
  return redis_store_parse{std::move(out), {}};
}

std::string describe_redis_store_address(const redis_store_address& a) {
  std::string out = a.type == redis_store_address::kind::server ? "redis://" : "redis-sentinel://";
  for (std::size_t i = 0; i < a.nodes.size(); ++i) {
    const bool v6 = a.nodes[i].host.find(':') != std::string::npos;
    out += fmt::format("{}{}{}{}:{}", i > 0 ? "," : "", v6 ? "[" : "", a.nodes[i].host,
                       v6 ? "]" : "", a.nodes[i].port);
  }
  out +=
      a.type == redis_store_address::kind::server ? fmt::format("/{}", a.db) : "/" + a.master_name;
  return out;
}

}  // namespace nines::core
