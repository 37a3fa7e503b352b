// nines chaos with a real TCP client and a real TCP server on each side: every toxic delays, paces,
// slices, cuts, drops or resets the bytes as asked. Times are checked only from below (a toxic
// can never make bytes arrive earlier than it allows); nothing here is a performance assertion.

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <atomic>
#include <functional>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using error_code = boost::system::error_code;

// A TCP server on an ephemeral port that runs `behaviour` on each connection it accepts, one at a
// time, on its own thread.
class peer_server {
 public:
  explicit peer_server(std::function<void(tcp::socket&)> behaviour)
      : acceptor_(ctx_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        behaviour_(std::move(behaviour)) {
    thread_ = std::thread([this] {
      for (;;) {
        tcp::socket s(ctx_);
        error_code ec;
        acceptor_.accept(s, ec);
        if (ec || stopping_) {
          return;
        }
        current_ = s.native_handle();
        behaviour_(s);
        current_ = -1;
      }
    });
  }
  ~peer_server() {
    stopping_ = true;
    if (const int fd = current_; fd >= 0) {
      ::shutdown(fd, SHUT_RDWR);  // wakes a blocked read in the behaviour
    }
    asio::io_context c;
    tcp::socket poke(c);
    error_code ignored;
    poke.connect(acceptor_.local_endpoint(), ignored);
    thread_.join();
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }

 private:
  asio::io_context ctx_;
  tcp::acceptor acceptor_;
  std::function<void(tcp::socket&)> behaviour_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> current_{-1};
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>('a' + (i * 7919) % 26);
  }
  return s;
}

// Writes `data` on accept, then closes.
std::function<void(tcp::socket&)> send_and_close(std::string data) {
  return [data](tcp::socket& s) {
    error_code ec;
    asio::write(s, asio::buffer(data), ec);
    s.close(ec);
  };
}

// Echoes until the peer closes.
void echo(tcp::socket& s) {
  char buf[65536];
  for (;;) {
    error_code ec;
    const auto n = s.read_some(asio::buffer(buf), ec);
    if (ec) {
      return;
    }
    asio::write(s, asio::buffer(buf, n), ec);
    if (ec) {
      return;
    }
  }
}

struct read_result {
  std::string data;
  error_code ec;  // how reading ended: eof, connection_reset, or operation_aborted (deadline)
  int reads = 0;
  double first_ms = -1;  // time from the start of the read to the first byte
  double last_ms = -1;   // to the last byte
  double end_ms = -1;    // to the end (EOF, error or deadline)
  // From before the client connected to the first byte: what a delay counted from the bytes'
  // arrival at the proxy (which follows the connect) must reach, however late the read started.
  double first_since_connect_ms = -1;
};

// A client with reads bounded by a deadline.
class client {
 public:
  explicit client(unsigned short port) : socket_(ctx_), created_(steady::now()) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    socket_.set_option(tcp::no_delay(true));
  }
  void write(std::string_view data) { asio::write(socket_, asio::buffer(data.data(), data.size())); }
  void shutdown_send() { socket_.shutdown(tcp::socket::shutdown_send); }

  // Reads until `want` bytes, the end of the stream, an error, or `deadline`.
  read_result read(std::size_t want, std::chrono::milliseconds deadline) {
    read_result r;
    const auto start = steady::now();
    const auto since = [&] {
      return std::chrono::duration<double, std::milli>(steady::now() - start).count();
    };
    asio::steady_timer timer(ctx_, deadline);
    timer.async_wait([&](error_code ec) {
      if (!ec) {
        socket_.cancel();
      }
    });
    std::function<void()> next = [&] {
      socket_.async_read_some(asio::buffer(buf_), [&](error_code ec, std::size_t n) {
        if (n > 0) {
          r.data.append(buf_, n);
          ++r.reads;
          r.last_ms = since();
          if (r.first_ms < 0) {
            r.first_ms = r.last_ms;
            r.first_since_connect_ms =
                std::chrono::duration<double, std::milli>(steady::now() - created_).count();
          }
        }
        if (ec || r.data.size() >= want) {
          r.ec = ec;
          r.end_ms = since();
          timer.cancel();
          return;
        }
        next();
      });
    };
    next();
    ctx_.restart();
    ctx_.run();
    return r;
  }

 private:
  asio::io_context ctx_;
  tcp::socket socket_;
  steady::time_point created_;  // before the connect
  char buf_[65536];
};

class chaos : public ::testing::Test {
 protected:
  void SetUp() override { chaos_ = start_chaos({"--seed", "5"}); }
  unsigned short proxy_to(const peer_server& peer, const std::string& name = "link") {
    return add_chaos_proxy(chaos_, name, peer.port());
  }
  void toxic(const std::string& json_text, const std::string& proxy = "link") {
    const auto r = http_call(chaos_.port, "POST", "/proxies/" + proxy + "/toxics", json_text);
    ASSERT_EQ(r.status, 200U) << r.body;
  }
  server chaos_;
};

TEST_F(chaos, without_toxics_bytes_pass_unchanged_both_ways) {
  peer_server peer(echo);
  client c(proxy_to(peer));
  const auto data = pattern(300000);
  std::thread writer([&] { c.write(data); });
  const auto r = c.read(data.size(), std::chrono::milliseconds(20000));
  writer.join();
  EXPECT_EQ(r.data, data);
  const auto stats = json::parse(http_call(chaos_.port, "GET", "/proxies/link").body).as_object();
  EXPECT_EQ(stats.at("bytes").at("upstream").as_int64(), 300000);
  EXPECT_EQ(stats.at("bytes").at("downstream").as_int64(), 300000);
  EXPECT_EQ(stats.at("connections").at("total").as_int64(), 1);
}

TEST_F(chaos, latency_delays_every_chunk_by_at_least_its_value) {
  peer_server peer(send_and_close("hello"));
  auto port = proxy_to(peer);
  toxic(R"({"type":"latency","attributes":{"latency":250,"jitter":0}})");
  client c(port);
  const auto r = c.read(5, std::chrono::milliseconds(10000));
  EXPECT_EQ(r.data, "hello");
  EXPECT_GE(r.first_since_connect_ms, 250.0);
}

TEST_F(chaos, latency_on_the_upstream_direction_delays_what_the_client_sends) {
  peer_server peer(echo);
  auto port = proxy_to(peer);
  toxic(R"({"type":"latency","stream":"upstream","attributes":{"latency":200}})");
  client c(port);
  const auto start = steady::now();
  c.write("ping");
  const auto r = c.read(4, std::chrono::milliseconds(10000));
  EXPECT_EQ(r.data, "ping");
  const std::chrono::duration<double, std::milli> took = steady::now() - start;
  EXPECT_GE(took.count(), 200.0);
}

TEST_F(chaos, bandwidth_paces_the_bytes) {
  const auto data = pattern(50000);
  peer_server peer(send_and_close(data));
  auto port = proxy_to(peer);
  toxic(R"({"type":"bandwidth","attributes":{"rate":100}})");  // 100 KB/s: 50 KB need 500 ms
  client c(port);
  const auto r = c.read(data.size(), std::chrono::milliseconds(10000));
  EXPECT_EQ(r.data, data);
  EXPECT_GE(r.last_ms, 450.0);  // the first chunk may leave with little of its pause counted
}

TEST_F(chaos, slicer_delivers_small_delayed_slices) {
  const auto data = pattern(1000);
  peer_server peer(send_and_close(data));
  auto port = proxy_to(peer);
  // ~100 slices of 6 to 14 bytes, 3 ms apart.
  toxic(R"({"type":"slicer","attributes":{"average_size":10,"size_variation":4,"delay":3000}})");
  client c(port);
  const auto r = c.read(data.size(), std::chrono::milliseconds(10000));
  EXPECT_EQ(r.data, data);
  EXPECT_GE(r.reads, 20);  // one write of 1,000 bytes arrived in many pieces
  EXPECT_GE(r.last_ms - r.first_ms, (1000.0 / 14 - 1) * 3.0);
}

TEST_F(chaos, limit_data_cuts_the_connection_after_that_many_bytes) {
  peer_server peer(send_and_close(pattern(5000)));
  auto port = proxy_to(peer);
  toxic(R"({"type":"limit_data","attributes":{"bytes":1234}})");
  client c(port);
  const auto r = c.read(5000, std::chrono::milliseconds(10000));
  EXPECT_EQ(r.data, pattern(5000).substr(0, 1234));
  EXPECT_EQ(r.ec, asio::error::eof);
}

TEST_F(chaos, reset_peer_resets_the_connection_after_its_timeout) {
  peer_server peer(echo);
  auto port = proxy_to(peer);
  toxic(R"({"type":"reset_peer","attributes":{"timeout":150}})");
  client c(port);
  c.write("still there?");
  const auto r = c.read(1 << 20, std::chrono::milliseconds(10000));
  EXPECT_EQ(r.data, "still there?");  // bytes flow until the reset
  EXPECT_EQ(r.ec, asio::error::connection_reset);
  EXPECT_GE(r.end_ms, 100.0);
}

TEST_F(chaos, timeout_blackholes_data_until_removed_or_closes_after_its_timeout) {
  peer_server peer(echo);
  auto port = proxy_to(peer);
  toxic(R"({"type":"timeout","name":"hole","attributes":{"timeout":0}})");
  client c(port);
  c.write("lost");
  // Nothing comes back while the hole is there (the read ends at its deadline).
  auto r = c.read(1, std::chrono::milliseconds(300));
  EXPECT_EQ(r.data, "");
  EXPECT_EQ(r.ec, asio::error::operation_aborted);
  ASSERT_EQ(http_call(chaos_.port, "DELETE", "/proxies/link/toxics/hole").status, 204U);
  c.write("found");
  r = c.read(5, std::chrono::milliseconds(10000));
  EXPECT_EQ(r.data, "found");  // "lost" was dropped, not held

  toxic(R"({"type":"timeout","name":"closing","attributes":{"timeout":200}})");
  client d(port);
  d.write("x");
  r = d.read(1, std::chrono::milliseconds(10000));
  EXPECT_EQ(r.data, "");
  EXPECT_EQ(r.ec, asio::error::eof);
  EXPECT_GE(r.end_ms, 150.0);
}

TEST_F(chaos, slow_close_holds_the_close_back) {
  peer_server peer(send_and_close("bye"));
  auto port = proxy_to(peer);
  toxic(R"({"type":"slow_close","attributes":{"delay":300}})");
  client c(port);
  const auto r = c.read(1 << 20, std::chrono::milliseconds(10000));
  EXPECT_EQ(r.data, "bye");
  EXPECT_EQ(r.ec, asio::error::eof);
  EXPECT_GE(r.end_ms - r.last_ms, 250.0);
}

TEST_F(chaos, toxicity_decides_per_connection) {
  peer_server peer(send_and_close("x"));
  auto port = proxy_to(peer);
  toxic(R"({"type":"limit_data","toxicity":0.5,"attributes":{"bytes":0}})");
  int cut = 0;
  for (int i = 0; i < 40; ++i) {
    client c(port);
    cut += c.read(1, std::chrono::milliseconds(10000)).data.empty() ? 1 : 0;
  }
  EXPECT_GT(cut, 5);
  EXPECT_LT(cut, 35);
}

TEST_F(chaos, a_toxic_added_later_acts_on_open_connections) {
  peer_server peer(echo);
  auto port = proxy_to(peer);
  client c(port);
  c.write("a");
  EXPECT_EQ(c.read(1, std::chrono::milliseconds(10000)).data, "a");
  toxic(R"({"type":"limit_data","attributes":{"bytes":3}})");
  c.write("bcdef");  // 1 byte already came down; 2 more pass
  const auto r = c.read(10, std::chrono::milliseconds(10000));
  EXPECT_EQ(r.data, "bc");
  EXPECT_EQ(r.ec, asio::error::eof);
}

TEST_F(chaos, a_disabled_proxy_refuses_and_an_enabled_one_serves_again) {
  peer_server peer(send_and_close("up"));
  auto port = proxy_to(peer);
  ASSERT_EQ(http_call(chaos_.port, "POST", "/proxies/link", R"({"enabled":false})").status, 200U);
  asio::io_context ctx;
  tcp::socket s(ctx);
  error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  EXPECT_EQ(ec, asio::error::connection_refused);
  ASSERT_EQ(http_call(chaos_.port, "POST", "/proxies/link", R"({"enabled":true})").status, 200U);
  client c(port);
  EXPECT_EQ(c.read(2, std::chrono::milliseconds(10000)).data, "up");
}

TEST_F(chaos, api_answers_bad_requests_clearly) {
  peer_server peer(echo);
  proxy_to(peer);
  EXPECT_EQ(http_call(chaos_.port, "GET", "/proxies/nope").status, 404U);
  auto r = http_call(chaos_.port, "POST", "/proxies/link/toxics", R"({"type":"lag"})");
  EXPECT_EQ(r.status, 400U);
  EXPECT_NE(r.body.find("type must be one of"), std::string::npos);
  EXPECT_EQ(http_call(chaos_.port, "POST", "/proxies/link/toxics", "{not json").status, 400U);
  toxic(R"({"type":"latency","name":"l"})");
  EXPECT_EQ(http_call(chaos_.port, "POST", "/proxies/link/toxics", R"({"type":"latency","name":"l"})")
                .status,
            409U);
  r = http_call(chaos_.port, "POST", "/proxies/link/toxics/l", R"({"attributes":{"latency":42}})");
  EXPECT_EQ(r.status, 200U);
  EXPECT_EQ(json::parse(r.body).at("attributes").at("latency").as_int64(), 42);
  EXPECT_EQ(http_call(chaos_.port, "POST", "/proxies",
                      R"({"name":"link","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"})")
                .status,
            409U);
  EXPECT_EQ(http_call(chaos_.port, "POST", "/reset").status, 204U);
  EXPECT_EQ(json::parse(http_call(chaos_.port, "GET", "/proxies/link/toxics").body).as_array().size(),
            0U);
}

TEST_F(chaos, chaos_ctl_drives_the_api_from_the_command_line) {
  peer_server peer(send_and_close("hello"));
  const auto port = proxy_to(peer);
  const std::string api = "http://127.0.0.1:" + std::to_string(chaos_.port);
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{NINES_BINARY, "chaos-ctl", "--api", api};
    argv.insert(argv.end(), args.begin(), args.end());
    process p(argv);
    return p.wait_exit().value_or(-1);
  };
  EXPECT_EQ(run({"add-toxic", "proxy=link,type=latency,latency=200,name=slow"}), 0);
  client c(port);
  EXPECT_GE(c.read(5, std::chrono::milliseconds(10000)).first_since_connect_ms, 200.0);
  EXPECT_EQ(run({"update-toxic", "proxy=link,name=slow,latency=0"}), 0);
  EXPECT_EQ(run({"remove-toxic", "link", "slow"}), 0);
  EXPECT_EQ(run({"remove-toxic", "link", "slow"}), 1);   // the API says 404
  EXPECT_EQ(run({"add-toxic", "type=latency"}), 2);       // no proxy named
  EXPECT_EQ(run({"disable", "link"}), 0);
  EXPECT_EQ(run({"list"}), 0);
}

TEST(chaos_startup, bad_command_line_specs_exit_2_with_the_reason) {
  process p({NINES_BINARY, "chaos", "--api", "127.0.0.1:0", "--proxy", "name=a,listen=nowhere"});
  EXPECT_EQ(p.wait_exit(), 2);
  EXPECT_NE(p.output().find("listen and upstream must be"), std::string::npos);
  process q({NINES_BINARY, "chaos", "--api", "127.0.0.1:0", "--proxy",
             "name=a,listen=127.0.0.1:0,upstream=127.0.0.1:9", "--toxic", "proxy=b,type=latency"});
  EXPECT_EQ(q.wait_exit(), 2);
  EXPECT_NE(q.output().find("no proxy \"b\""), std::string::npos);
}

}  // namespace
}  // namespace nines::test
