#pragma once
// Finding the Redis primary through Sentinel: each Sentinel is asked in turn
// (`SENTINEL get-master-addr-by-name NAME`), and the server it names is asked `ROLE` before it is
// trusted: during a failover a Sentinel can still name the old primary, now a replica (or one
// that is back from the dead and about to be demoted). The first answer that checks out wins; a
// Sentinel that is down, slow, or names a server that is not a master is passed over, and why is
// kept for the error.
//
// Threading: as redis_connection (the thread of the current io_context).

#include <memory>
#include <string>
#include <vector>

#include "net/redis_connection.hpp"

namespace nines::net {

struct redis_primary {
  redis_endpoint at;                       // where it was found (with the db and password asked)
  std::unique_ptr<redis_connection> conn;  // open to it, ROLE checked; nullptr when not found
  std::string why;                         // when not found: what each Sentinel said, in order
};

// `sentinels`' password (if any) is theirs; `primary` gives the db and password for the server
// found (its host and port are ignored).
awaitable<redis_primary> find_redis_primary(std::vector<redis_endpoint> sentinels,
                                            std::string master_name, redis_endpoint primary,
                                            std::chrono::steady_clock::time_point deadline);

}  // namespace nines::net
