#include "net/endpoints_of.hpp"

namespace nines::net {

awaitable<std::vector<tcp::endpoint>> endpoints_of(const std::string& host, std::uint16_t port,
                                                   error_code& ec) {
  std::vector<tcp::endpoint> out;
  ec = {};
  if (const auto address = asio::ip::make_address(host, ec); !ec) {
    out.emplace_back(address, port);
    co_return out;
  }
  ec = {};
  tcp::resolver resolver(co_await asio::this_coro::executor);
  auto [rec, results] = co_await resolver.async_resolve(host, std::to_string(port), use_nothrow);
  ec = rec;
  for (const auto& r : results) {
    out.push_back(r.endpoint());
  }
  if (!ec && out.empty()) {
    ec = asio::error::host_not_found;
  }
  co_return out;
}

}  // namespace nines::net
