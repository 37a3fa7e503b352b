// A hostile Redis behind the shared journal ([journal] store): a reconnect that this gateway's
// memory does not hold is read from Redis, and every byte Redis sends may be an attack or a lie.
// A scripted Redis (its own RESP reading, independent of src/core/redis) answers the gateway's
// commands; each case asserts what the client got: a defined refusal, or the stream with its
// explicit error event, never an injected header or a silently shortened stream.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/access/secret_digest.hpp"
#include "hostile_env.hpp"

namespace nines::hostile {
namespace {

using words = std::vector<std::string>;

// RESP replies, written out by hand.
std::string bulk(const std::string& s) {
  return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
}
std::string array(const std::vector<std::string>& parts) {
  std::string out = "*" + std::to_string(parts.size()) + "\r\n";
  for (const auto& p : parts) {
    out += p;
  }
  return out;
}
const std::string nil = "$-1\r\n";

std::string entry(const std::string& id, const std::string& field, const std::string& value) {
  return array({bulk(id), array({bulk(field), bulk(value)})});
}
std::string xread(const std::vector<std::string>& entries) {
  return array({array({bulk("events"), array(entries)})});
}
const std::string stream_head =
    R"({"status":200,"stream":true,"fields":[["content-type","text/event-stream"]]})";
const std::string end_record =
    R"({"outcome":"ok","attempts":1,"resumes":0,"upstreams":["u0"],"served_by":"u0","resume_log":"","detail":"","body":""})";

// A Redis that answers each command as its case says ("" = no answer at all).
class scripted_redis {
 public:
  using script = std::function<std::string(const words&)>;
  explicit scripted_redis(script s) : script_(std::move(s)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 64) != 0) {
      throw std::runtime_error("scripted redis: cannot listen");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~scripted_redis() {
    stopping_ = true;
    {
      std::lock_guard lock(mutex_);
      for (const int fd : fds_) {
        ::shutdown(fd, SHUT_RDWR);
      }
    }
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(listen_fd_);
    for (auto& t : handlers_) {
      t.join();
    }
  }
  unsigned short port() const { return port_; }
  std::vector<words> commands() {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  void accept_loop() {
    for (;;) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0 || stopping_) {
        if (fd >= 0) {
          ::close(fd);
        }
        return;
      }
      std::lock_guard lock(mutex_);
      fds_.push_back(fd);
      handlers_.emplace_back([this, fd] { serve(fd); });
    }
  }
  // One command (an array of bulk strings) from the front of `in`, if it holds a whole one.
  static std::optional<words> take_command(std::string& in) {
    std::size_t at = 0;
    const auto line = [&]() -> std::optional<std::string> {
      const auto end = in.find("\r\n", at);
      if (end == std::string::npos) {
        return std::nullopt;
      }
      auto l = in.substr(at, end - at);
      at = end + 2;
      return l;
    };
    const auto count = line();
    if (!count || count->empty() || (*count)[0] != '*') {
      return std::nullopt;
    }
    words out;
    for (long n = std::stol(count->substr(1)); n > 0; --n) {
      const auto size = line();
      if (!size || size->empty() || (*size)[0] != '$') {
        return std::nullopt;
      }
      const auto len = std::stoul(size->substr(1));
      if (in.size() < at + len + 2) {
        return std::nullopt;
      }
      out.push_back(in.substr(at, len));
      at += len + 2;
    }
    in.erase(0, at);
    return out;
  }
  void serve(int fd) {
    std::string in;
    char buf[65536];
    for (;;) {
      const auto n = ::read(fd, buf, sizeof buf);
      if (n <= 0) {
        break;
      }
      in.append(buf, static_cast<std::size_t>(n));
      while (auto command = take_command(in)) {
        std::string reply;
        {
          std::lock_guard lock(mutex_);
          seen_.push_back(*command);
          reply = script_(*command);
        }
        if (!reply.empty() && ::write(fd, reply.data(), reply.size()) < 0) {
          break;
        }
      }
    }
    ::close(fd);
  }

  script script_;
  int listen_fd_ = -1;
  unsigned short port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::vector<int> fds_;
  std::vector<words> seen_;
  std::thread acceptor_;
  std::vector<std::thread> handlers_;
};

// What the writer needs to call Redis up; `meta` and `follow` answer HMGET and XREAD, `takeover`
// the takeover script (EVAL; else an integer, which no takeover is).
scripted_redis::script redis_that(std::string meta, std::function<std::string()> follow,
                                  std::string takeover = {}) {
  return [meta = std::move(meta), follow = std::move(follow),
          takeover = std::move(takeover)](const words& w) -> std::string {
    const auto& name = w.empty() ? std::string() : w[0];
    if (name == "SCRIPT") {
      return bulk(std::string(40, 'a'));
    }
    if (name == "PING") {
      return "+PONG\r\n";
    }
    if (name == "HMGET") {
      return meta;
    }
    if (name == "XREAD") {
      return follow();
    }
    if (name == "EVAL" && !takeover.empty()) {
      return takeover;
    }
    return ":1\r\n";
  };
}

struct redis_case {
  std::string name;
  std::string meta;                  // the answer to HMGET (head, broken, owner)
  std::vector<std::string> follows;  // the answers to the XREADs, in turn (then nil)
  unsigned status = 0;               // what the client gets
  std::string code;                  // its error code, in the JSON body or the last event
  std::string must_not_contain;      // in the client's bytes
  std::string takeover = {};         // the answer to the takeover script
};

std::vector<redis_case> cases() {
  const auto head_with = [](const std::string& fields) {
    return array(
        {bulk(R"({"status":200,"stream":true,"fields":)" + fields + "}"), nil, bulk("gw-other")});
  };
  const auto good = head_with(R"([["content-type","text/event-stream"]])");
  return {
      // A head field that would end its line and start another: refused whole.
      {"header_injection",
       head_with(R"([["x-a","b\r\nset-cookie: s=1"]])"),
       {},
       502,
       "journal_store_malformed",
       "set-cookie"},
      {"header_name_with_space",
       head_with(R"([["x a","b"]])"),
       {},
       502,
       "journal_store_malformed",
       ""},
      {"meta_is_an_error", "-WRONGTYPE not a hash\r\n", {}, 502, "journal_store_malformed", ""},
      {"meta_of_odd_shape", array({bulk("x")}), {}, 502, "journal_store_malformed", ""},
      // Marked incomplete by its writer.
      {"marked_broken",
       array({bulk(stream_head), bulk("1"), bulk("gw-other")}),
       {},
       410,
       "journal_incomplete",
       ""},
      // The events jump: what came is sent, then the explicit end.
      {"ids_jump",
       good,
       {xread({entry("0-3", "d", "data: {\"x\":3}\n\n"), entry("0-5", "d", "x")})},
       200,
       "journal_incomplete",
       ""},
      {"gap_mark", good, {xread({entry("0-3", "g", "1")})}, 200, "journal_incomplete", ""},
      {"an_unknown_field",
       good,
       {xread({entry("0-3", "q", "x")})},
       200,
       "journal_store_malformed",
       ""},
      {"an_end_that_lies",
       good,
       {xread({entry("0-3", "x", "{\"outcome\":1}")})},
       200,
       "journal_store_malformed",
       ""},
      {"ids_go_back", good, {xread({entry("0-2", "d", "x")})}, 200, "journal_store_malformed", ""},
      {"not_a_stream_reply", good, {"+OK\r\n"}, 200, "journal_store_malformed", ""},
      // 93 GB announced and nothing after: the read given up at its deadline, then the explicit
      // end (a bulk that does come is refused at the bound: redis_connection_test).
      {"a_huge_bulk", good, {"*1\r\n*2\r\n$99999999999\r\n"}, 200, "journal_store_lost", ""},
      {"a_deep_array", good, {"*1\r\n*2\r\n*2147483647\r\n"}, 200, "journal_store_lost", ""},
      // The stream stands still and Redis says it is this replica's now, after 99 events it then
      // does not have: nobody continues it (the copy is marked), and the client hears why.
      {"a_takeover_that_lies",
       good,
       {},
       200,
       "journal_incomplete",
       "",
       array({bulk("ours"), bulk("gw-x/1"), bulk("99")})},
      // An answer that is not the script's takes nothing over: the reader reads on.
      {"a_takeover_answer_of_odd_shape",
       good,
       {nil, xread({entry("0-3", "d", "data: {\"x\":3}\n\n"), entry("0-4", "x", end_record)})},
       200,
       "",
       "",
       array({bulk("ours"), bulk("gw-x/1")})},
      // The control: a well-formed copy is served as it is.
      {"well_formed",
       good,
       {xread({entry("0-3", "d", "data: {\"x\":3}\n\n"), entry("0-4", "x", end_record)})},
       200,
       "",
       ""},
  };
}

class hostile_redis : public ::testing::TestWithParam<redis_case> {};

TEST_P(hostile_redis, a_reconnect_gets_a_defined_answer_whatever_redis_sends) {
  const auto& c = GetParam();
  std::atomic<std::size_t> turn{0};
  scripted_redis redis(redis_that(
      c.meta,
      [&c, &turn]() -> std::string {
        const auto i = turn++;
        return i < c.follows.size() ? c.follows[i] : nil;
      },
      c.takeover));
  hostile_env env("[journal]\nmode = \"keyed\"\nstore = \"redis://127.0.0.1:" +
                  std::to_string(redis.port()) + "/0\"\n");
  ASSERT_TRUE(test::eventually(
      [&] { return test::metric_value(env.admin_port(), "nines_redis_up") == 1; }));
  const std::string body =
      R"({"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]})";
  raw_client client(env.port());
  ASSERT_TRUE(client.send(post("/v1/chat/completions", body, "Last-Event-ID: s-1:2\r\n")));
  const auto res = client.read_response();
  ASSERT_TRUE(res) << c.name;
  EXPECT_EQ(res->status, c.status) << c.name << ": " << res->body;
  EXPECT_TRUE(res->complete) << c.name;
  if (!c.code.empty()) {
    EXPECT_NE(res->body.find("\"" + c.code + "\""), std::string::npos)
        << c.name << ": " << res->body;
  } else {
    EXPECT_EQ(res->body, "data: {\"x\":3}\n\n") << c.name;
  }
  if (!c.must_not_contain.empty()) {
    EXPECT_EQ(res->head.find(c.must_not_contain), std::string::npos) << res->head;
  }
  // The upstream was never asked: a reconnect starts no generation.
  EXPECT_EQ(env.upstream.request_count(), 0U);
}

// A store given by name (a Kubernetes Service): resolved at each connect, each address tried in
// turn ("localhost" may be ::1 first, where nothing listens).
TEST(hostile_redis_names, a_store_named_by_dns_is_resolved_and_reached) {
  scripted_redis redis(redis_that(array({nil, nil, nil}), [] { return nil; }));
  hostile_env env("[journal]\nmode = \"keyed\"\nstore = \"redis://localhost:" +
                  std::to_string(redis.port()) + "/0\"\n");
  EXPECT_TRUE(test::eventually(
      [&] { return test::metric_value(env.admin_port(), "nines_redis_up") == 1; }));
}

// The shared limits (auth.shared_limits = "closed") before a Redis whose answers to the take
// script lie or make no sense: no answer is a grant it does not fit, so each is Redis away (503),
// never an admission, and the upstream is never asked; the control, a true grant, is admitted.
TEST(hostile_redis_limits, a_take_answer_that_does_not_fit_admits_nothing) {
  const std::string secret = "nk-hostile-limits";
  const auto keys = test::temp_path(".toml");
  std::ofstream(keys) << "[[keys]]\nid = \"k\"\nhash = \""
                      << core::format_secret_digest(core::sha256_of(secret))
                      << "\"\nmodels = [\"*\"]\nrequests_per_minute = 600\n";
  const auto ints = [](std::vector<long long> v) {
    std::string out = "*" + std::to_string(v.size()) + "\r\n";
    for (auto i : v) {
      out += ":" + std::to_string(i) + "\r\n";
    }
    return out;
  };
  struct limit_case {
    std::string name;
    std::string answer;
    unsigned status;
  };
  const std::vector<limit_case> answers = {
      {"grants a thousand for one asked", ints({1, 1764800000, 1000, 0, 0, 0}), 503},
      {"refused by a limit not asked about", ints({0, 1764800000, 2, 1000, 599, 0}), 503},
      {"more left than the limit", ints({1, 1764800000, 1, 0, 100000, 0}), 503},
      {"an error", "-ERR no script\r\n", 503},
      {"a bulk string", bulk("OK"), 503},
      {"a true grant", ints({1, 1764800000, 1, 0, 599, 0}), 200},
  };
  for (const auto& c : answers) {
    scripted_redis redis(redis_that(
        array({nil, nil, nil}), [] { return nil; }, c.answer));
    hostile_env env("[auth]\nkeys_file = \"" + keys + "\"\nshared_limits = \"closed\"\n" +
                    "[journal]\nmode = \"keyed\"\nstore = \"redis://127.0.0.1:" +
                    std::to_string(redis.port()) + "/0\"\n");
    // The replica's beat reached this Redis: its limits' connection is up, so what follows is
    // the answer's doing, not Redis being away.
    const auto asked_for = [&redis](const std::string& key) {
      for (const auto& w : redis.commands()) {
        if (w.size() > 3 && w[0] == "EVAL" && w[3] == key) {
          return true;
        }
      }
      return false;
    };
    ASSERT_TRUE(test::eventually([&] { return asked_for("nines:l:replicas"); })) << c.name;
    raw_client client(env.port());
    ASSERT_TRUE(client.send(post("/v1/chat/completions",
                                 R"({"model":"m","messages":[{"role":"user","content":"x"}]})",
                                 "Authorization: Bearer " + secret + "\r\n")));
    const auto res = client.read_response();
    ASSERT_TRUE(res) << c.name;
    EXPECT_EQ(res->status, c.status) << c.name << ": " << res->body;
    EXPECT_TRUE(asked_for("nines:l:{k}:r")) << c.name;  // the take was asked and answered
    if (c.status == 503) {
      EXPECT_NE(res->body.find("rate_limit_store_unavailable"), std::string::npos) << res->body;
      EXPECT_EQ(env.upstream.request_count(), 0U) << c.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(hostile, hostile_redis, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace nines::hostile
