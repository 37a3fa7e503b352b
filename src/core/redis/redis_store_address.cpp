#include "core/redis/redis_store_address.hpp"

#include <fmt/format.h>

#include <charconv>

#include "core/config/config.hpp"

namespace nines::core {
namespace {

constexpr std::size_t max_sentinels = 16;

redis_store_parse refuse(std::string why) {
  return redis_store_parse{std::nullopt, std::move(why)};
}

// "HOST:PORT" or "[V6]:PORT", HOST an IP literal, PORT 1-65535.
std::optional<redis_server_address> server_address(std::string_view text, std::string& why) {
  const auto at = parse_listen_address(text);
  if (!at || at->port == 0) {
    why = fmt::format("\"{}\" is not HOST:PORT with a port from 1 to 65535", text);
    return std::nullopt;
  }
  if (!is_ip_literal(at->host)) {
    why = fmt::format("\"{}\" is not an IP address (names are not resolved: give the address)",
                      at->host);
    return std::nullopt;
  }
  return redis_server_address{at->host, at->port};
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
