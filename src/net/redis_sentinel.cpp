#include "net/redis_sentinel.hpp"

namespace nines::net {

namespace {

std::string address_of(const std::string& host, std::uint16_t port) {
  return host + ":" + std::to_string(port);
}

// One Sentinel asked, and the server it names checked. Straight-line, one co_await per step
// (GCC 12 mishandles objects declared in a coroutine's loop body across suspensions).
awaitable<redis_primary> ask_sentinel(redis_endpoint sentinel, std::string master_name,
                                      redis_endpoint primary,
                                      std::chrono::steady_clock::time_point deadline) {
  redis_primary out;
  const std::string who = "Sentinel " + address_of(sentinel.host, sentinel.port) + ": ";
  std::string why;
  std::unique_ptr<redis_connection> asking =
      co_await redis_connection::open(std::move(sentinel), deadline, why);
  if (!asking) {
    out.why = who + why;
    co_return out;
  }
  std::vector<std::string> ask{"SENTINEL", "get-master-addr-by-name", master_name};
  std::optional<core::redis_reply> said = co_await asking->call(std::move(ask), deadline);
  if (!said) {
    out.why = who + asking->problem();
    co_return out;
  }
  const auto address = core::redis_master_address(*said);
  if (!address) {
    out.why =
        who + (said->type == core::redis_reply::kind::nil
                   ? "does not know " + master_name
                   : "an answer that is not an address: " + core::describe_redis_reply(*said));
    co_return out;
  }
  const std::string named = who + "names " + address_of(address->host, address->port) + ", ";
  primary.host = address->host;
  primary.port = address->port;
  redis_endpoint at = primary;
  std::unique_ptr<redis_connection> conn =
      co_await redis_connection::open(std::move(primary), deadline, why);
  if (!conn) {
    out.why = named + why;
    co_return out;
  }
  std::vector<std::string> role_words{"ROLE"};
  std::optional<core::redis_reply> role = co_await conn->call(std::move(role_words), deadline);
  if (!role) {
    out.why = named + "whose ROLE went unanswered: " + conn->problem();
    co_return out;
  }
  const auto word = core::redis_role(*role);
  if (word != "master") {
    out.why = named + "which says it is " + (word.empty() ? std::string("no role") : word);
    co_return out;
  }
  out.at = std::move(at);
  out.conn = std::move(conn);
  co_return out;
}

}  // namespace

awaitable<redis_primary> find_redis_primary(std::vector<redis_endpoint> sentinels,
                                            std::string master_name, redis_endpoint primary,
                                            std::chrono::steady_clock::time_point deadline) {
  redis_primary out;
  for (std::size_t i = 0; i < sentinels.size(); ++i) {
    redis_primary one = co_await ask_sentinel(sentinels[i], master_name, primary, deadline);
    if (one.conn) {
      co_return one;
    }
    out.why += (out.why.empty() ? std::string() : std::string("; ")) + one.why;
  }
  if (sentinels.empty()) {
    out.why = "no Sentinel to ask";
  }
  co_return out;
}

}  // namespace nines::net
