#pragma once
// Where the shared journal lives ([journal] store): one Redis server, or the primary that
// Sentinels name.
//
//   redis://HOST:PORT/DB                        e.g. "redis://10.0.0.5:6379/0"
//   redis-sentinel://HOST:PORT[,HOST:PORT]/NAME e.g.
//   "redis-sentinel://10.0.0.7:26379,10.0.0.8:26379/nines"
//
// Hosts are IP address literals ("[v6]" in brackets); the port is required; the DB is 0-15 and
// may be left out ("redis://10.0.0.5:6379"). A password in the address ("redis://:secret@...") is
// refused: config files are shown and logged, so the password comes from a file of its own
// (journal.store_password_file). Anything else (a query, a fragment, a name to resolve, a
// duplicate Sentinel) is refused with what is wrong, not guessed.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nines::core {

struct redis_server_address {
  std::string host;  // an IP address literal without brackets, or a DNS name (lower case)
  std::uint16_t port = 0;
  friend bool operator==(const redis_server_address&, const redis_server_address&) = default;
};

struct redis_store_address {
  enum class kind : std::uint8_t { server, sentinel };
  kind type = kind::server;
  std::vector<redis_server_address> nodes;  // the server, or the Sentinels in the order given
  unsigned db = 0;                          // server only (a Sentinel-found primary uses db 0)
  std::string master_name;                  // sentinel only
};

struct redis_store_parse {
  std::optional<redis_store_address> address;
  std::string problem;  // when !address: what is wrong, for the config's error list
};
redis_store_parse parse_redis_store_address(std::string_view text);

// The address without anything secret in it (there is none), as the logs and /status show it.
std::string describe_redis_store_address(const redis_store_address& a);

}  // namespace nines::core
