#pragma once
// What a Redis server answers, read with hiredis's own reader (no hand-written RESP parser), and
// the commands sent to it, framed with hiredis's formatter. Pure: bytes in, replies out; the
// socket is src/net/redis_connection's.
//
// The reader builds its own reply tree through hiredis's object callbacks, so that it can bound
// what a server makes it hold: a hostile or broken server could announce a bulk string of 2^63
// bytes (hiredis would buffer until it came) or an array of 2^31 elements (its default callbacks
// allocate that many pointers at once). Here a reply may hold at most `max_bytes` in all (counting
// the bytes still buffered for it) and `max_elements` array elements in all; past either, or at a
// protocol error, the reader is broken for good: the connection is to be closed, never reused,
// since what comes after is out of step.
//
// Thread-safety: one reader per connection, used by one thread at a time.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nines::core {

struct redis_reply {
  enum class kind : std::uint8_t { string, array, integer, nil, status, error };
  kind type = kind::nil;
  std::string text;  // string, status, error
  long long integer = 0;
  std::vector<redis_reply> elements;  // array

  bool is_error() const { return type == kind::error; }
  // A status reply saying exactly `word` ("OK", "PONG").
  bool is_status(std::string_view word) const { return type == kind::status && text == word; }
};

struct redis_reader_limits {
  std::size_t max_bytes = 64u << 20;
  std::size_t max_elements = 1u << 20;
};

class redis_reply_reader {
 public:
  explicit redis_reply_reader(redis_reader_limits limits = {});
  ~redis_reply_reader();
  redis_reply_reader(const redis_reply_reader&) = delete;
  redis_reply_reader& operator=(const redis_reply_reader&) = delete;

  // Hands over bytes read from the server. False when the reader is (now) broken.
  bool feed(std::string_view bytes);
  // The next whole reply, if the bytes fed so far hold one. nullopt when more bytes are needed or
  // the reader is broken (tell them apart with broken()).
  std::optional<redis_reply> next();
  bool broken() const { return !problem_.empty(); }
  // Why it broke: hiredis's words, or the bound that was passed.
  const std::string& problem() const { return problem_; }

  struct budget;  // redis_reply.cpp

 private:
  void break_with(std::string why);

  redis_reader_limits limits_;
  struct hiredis_reader;
  std::unique_ptr<hiredis_reader> reader_;
  std::unique_ptr<budget> budget_;  // what the reply being built may still take
  std::string problem_;
};

// Appends one command (its words, binary-safe) to `wire`, framed as Redis reads it; several in a
// row are a pipeline. False (and `wire` unchanged) when there is no word or hiredis cannot frame
// it (a command of 2 GiB or more).
bool append_redis_command(std::string& wire, std::span<const std::string_view> words);
bool append_redis_command(std::string& wire, std::initializer_list<std::string_view> words);

// ROLE's first word ("master", "slave", "sentinel"), or "" when the reply is not ROLE's.
std::string redis_role(const redis_reply& role_reply);
// The address in a Sentinel's answer to `SENTINEL get-master-addr-by-name`: [host, port]. nullopt
// for a nil (the Sentinel does not know the name) or anything else (refused, not guessed).
struct redis_host_port {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<redis_host_port> redis_master_address(const redis_reply& reply);

// A reply in one line for logs and errors, printable and cut at `most` characters.
std::string describe_redis_reply(const redis_reply& r, std::size_t most = 200);

}  // namespace nines::core
