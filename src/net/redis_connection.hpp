#pragma once
// One connection to a Redis server (or a Sentinel), owned by the worker that opened it: commands
// are sent as one pipelined write and their replies read in order, everything within a deadline.
// The bytes are hiredis's (core/redis/redis_reply.hpp: its formatter and reader, bounded); the
// socket, the deadlines and the decisions are ours.
//
// A connection that broke, timed out or was sent something its reader refused is closed for
// good (what follows on it would be out of step): its owner opens a new one (with backoff).
//
// Threading: used from the thread that runs its io_context; one exec() at a time (the owner
// batches commands into a pipeline instead of overlapping calls; an overlapping call is refused).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/redis/redis_reply.hpp"
#include "net/asio.hpp"
#include "net/deadline_sweep.hpp"

namespace nines::net {

struct redis_endpoint {
  std::string host;  // an IP address, or a name (resolved at each connect; every address tried)
  std::uint16_t port = 6379;
  unsigned db = 0;
  std::string password;  // AUTH after connecting when set; never logged
};

class redis_connection {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  // Connects, then AUTH and SELECT as `to` asks, all by `deadline`. nullptr and `why` when it
  // cannot (the words never include the password).
  static awaitable<std::unique_ptr<redis_connection>> open(redis_endpoint to, time_point deadline,
                                                           std::string& why,
                                                           core::redis_reader_limits limits = {});
  ~redis_connection();
  redis_connection(const redis_connection&) = delete;
  redis_connection& operator=(const redis_connection&) = delete;

  // Sends `wire` (`count` commands, framed by core::append_redis_command) and reads `count`
  // replies, by `deadline`. An error reply is a reply like any other. nullopt when the connection
  // broke, timed out, or its reader refused the server's bytes: problem() says which, and the
  // connection is closed.
  awaitable<std::optional<std::vector<core::redis_reply>>> exec(std::string wire, std::size_t count,
                                                                time_point deadline);
  // One command, its one reply.
  awaitable<std::optional<core::redis_reply>> call(std::vector<std::string> words,
                                                   time_point deadline);

  bool usable() const { return problem_.empty() && socket_.is_open(); }
  const std::string& problem() const { return problem_; }
  bool timed_out() const { return timed_out_; }
  void close();

 private:
  redis_connection(tcp::socket socket, core::redis_reader_limits limits);
  void fail(std::string why);

  tcp::socket socket_;
  deadline reading_;
  deadline writing_;
  core::redis_reply_reader reader_;
  bool busy_ = false;
  bool timed_out_ = false;
  std::string problem_;
};

}  // namespace nines::net
