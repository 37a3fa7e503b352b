#pragma once
// Where a connection to `host:port` may go: the address itself when `host` is an IP literal,
// else every address the name resolves to (a Kubernetes Service, say), to be tried in turn. Shared
// by the upstream pools and the Redis client.

#include <cstdint>
#include <string>
#include <vector>

#include "net/asio.hpp"

namespace nines::net {

// Empty with `ec` set when the name does not resolve (host_not_found when it resolves to nothing).
awaitable<std::vector<tcp::endpoint>> endpoints_of(const std::string& host, std::uint16_t port,
                                                   error_code& ec);

}  // namespace nines::net
