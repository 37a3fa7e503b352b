// Failure injection on the server session (net/http_server.cpp), in the manner of Beast's own
// tests: over a test stream whose n-th I/O operation fails (beast::test::fail_count), for every n
// until an exchange completes without a failure. Whatever step fails — a read of the head, of the
// body, the 100 Continue, a write of the answer, the lingering close after a refusal — the
// session ends cleanly: no exception escapes, nothing hangs, the handler sees only whole requests,
// and a client never receives a second answer after a failed first.
//
// No sockets and no clocks: the test stream is in memory and every deadline is ignored.

#include <boost/beast/_experimental/test/stream.hpp>
#include <gtest/gtest.h>

#include "net/http_server.hpp"
#include "net/spawn.hpp"

namespace nines::net {
namespace {

namespace test = beast::test;

// A client_transport over one end of a Beast test stream.
class test_transport final : public client_transport {
 public:
  explicit test_transport(test::stream& s) : s_(s) {}
  awaitable<io_result> read_some(asio::mutable_buffer buffer, time_point) override {
    auto [ec, n] = co_await s_.async_read_some(buffer, use_nothrow);
    co_return io_result{ec, n};
  }
  awaitable<io_result> write(std::span<const asio::const_buffer> buffers,
                             std::chrono::milliseconds) override {
    auto [ec, n] = co_await asio::async_write(s_, buffers, use_nothrow);
    co_return io_result{ec, n};
  }
  void watch_departure(std::function<void()>) override {}
  void stop_watching() override {}
  awaitable<void> end_sending(time_point) override {
    s_.close();
    co_return;
  }
  void abort(bool) override { s_.close(); }

 private:
  test::stream& s_;
};

struct outcome {
  bool ran = false;         // the io_context ran out of work: the session ended
  unsigned handled = 0;     // requests the handler saw
  std::string client_got;   // everything the client received
};

// Serves the bytes `wire` over a stream failing at its `fail_at`-th operation (read size `read_size` so
// that a request takes several reads), with `handler` answering.
outcome run_session(const std::string& wire, std::size_t fail_at, std::size_t read_size,
                    const std::function<awaitable<void>(request&, downstream&)>& answer,
                    std::vector<std::string>* bodies = nullptr) {
  asio::io_context ioc;
  test::fail_count fc(fail_at);
  test::stream server(ioc, fc);
  test::stream client(ioc);
  server.connect(client);
  server.read_size(read_size);
  server.append(wire);     // what the client sent
  server.close_remote();   // and then it was done: the server reads an end after it
  outcome out;
  idle_connections idle;
  server_limits limits;
  limits.max_body_bytes = 1 << 16;
  const auto escaped_before = escaped_exceptions().load();
  request_handler handler = [&](request& req, downstream& down) -> awaitable<void> {
    ++out.handled;
    if (bodies != nullptr) {
      bodies->push_back(req.body());
    }
    co_await answer(req, down);
  };
  spawn(ioc.get_executor(),
        serve_connection(std::make_unique<test_transport>(server), handler, limits, idle),
        "test session");
  ioc.run_for(std::chrono::seconds(10));  // a bound, not a wait: it returns at once when done
  out.ran = ioc.stopped();
  out.client_got = std::string(client.str());
  EXPECT_EQ(escaped_exceptions().load(), escaped_before);
  return out;
}

awaitable<void> whole_answer(request& req, downstream& down) {
  http::response<http::string_body> res{http::status::ok, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = R"({"got":")" + req.body() + R"("})";
  co_await down.send(std::move(res));
}

awaitable<void> streamed_answer(request&, downstream& down) {
  http::response<http::empty_body> head{http::status::ok, 11};
  head.set(http::field::content_type, "text/event-stream");
  if (co_await down.begin_stream(std::move(head))) {
    co_return;
  }
  for (const char* e : {"data: a\n\n", "data: b\n\n"}) {
    if (co_await down.write_chunk(e)) {
      co_return;
    }
  }
  co_await down.finish_stream("data: [DONE]\n\n");
}

// Runs the exchange failing at step 0, 1, 2, ... until a run meets no failure; checks each run.
template <class Check>
void for_every_failing_step(const std::string& wire, std::size_t read_size,
                            const std::function<awaitable<void>(request&, downstream&)>& answer,
                            Check check) {
  std::size_t steps = 0;
  for (std::size_t fail_at = 0; fail_at < 500; ++fail_at) {
    std::vector<std::string> bodies;
    const auto out = run_session(wire, fail_at, read_size, answer, &bodies);
    ASSERT_TRUE(out.ran) << "the session hung when step " << fail_at << " failed";
    const bool clean = check(out, bodies, fail_at);
    ++steps;
    if (clean) {
      break;
    }
  }
  EXPECT_GT(steps, 3U) << "the exchange has several I/O steps to fail";
  EXPECT_LT(steps, 500U) << "an exchange completed without a failure";
}

const std::string body = "0123456789abcdefghij";

TEST(server_session_failures, a_request_with_a_length_and_a_whole_answer) {
  const std::string request = "POST /v1/x HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\n" + body;
  for_every_failing_step(request, 9, whole_answer,
                         [](const outcome& out, const std::vector<std::string>& bodies, std::size_t) {
                           // The handler saw the whole body or nothing.
                           for (const auto& b : bodies) {
                             EXPECT_EQ(b, body);
                           }
                           EXPECT_LE(out.handled, 1U);
                           const bool answered = out.client_got.find("\r\n\r\n{\"got\":\"" + body) !=
                                                 std::string::npos;
                           return out.handled == 1 && answered;
                         });
}

TEST(server_session_failures, a_chunked_request_expecting_100_continue_and_a_streamed_answer) {
  const std::string request =
      "POST /v1/x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
      "7;ext=1\r\n0123456\r\nd\r\n789abcdefghij\r\n0\r\nX-Trailer: t\r\n\r\n";
  for_every_failing_step(
      request, 11, streamed_answer,
      [](const outcome& out, const std::vector<std::string>& bodies, std::size_t) {
        for (const auto& b : bodies) {
          EXPECT_EQ(b, body);
        }
        // A streamed answer is one answer: never a second status line after it started.
        const auto first = out.client_got.find("HTTP/1.1 200");
        if (first != std::string::npos) {
          EXPECT_EQ(out.client_got.find("HTTP/1.1 ", first + 1), std::string::npos);
        }
        return out.client_got.ends_with("data: [DONE]\n\n\r\n0\r\n\r\n");
      });
}

TEST(server_session_failures, a_refused_request_and_its_lingering_close) {
  const std::string request =
      "POST /v1/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n" + std::string(200, 'z');
  for_every_failing_step(request, 13, whole_answer,
                         [](const outcome& out, const std::vector<std::string>&, std::size_t) {
                           EXPECT_EQ(out.handled, 0U);  // a refused request never reaches it
                           return out.client_got.starts_with("HTTP/1.1 400") &&
                                  out.client_got.find("bad_transfer_encoding") != std::string::npos;
                         });
}

TEST(server_session_failures, pipelined_requests_are_answered_in_order_or_not_at_all) {
  const std::string one = "POST /v1/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\none";
  const std::string two = "POST /v1/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\ntwo";
  for_every_failing_step(one + two, 16, whole_answer,
                         [](const outcome& out, const std::vector<std::string>& bodies, std::size_t) {
                           if (!bodies.empty()) {
                             EXPECT_EQ(bodies[0], "one");
                           }
                           if (bodies.size() > 1) {
                             EXPECT_EQ(bodies[1], "two");
                           }
                           const auto a = out.client_got.find(R"({"got":"one"})");
                           const auto b = out.client_got.find(R"({"got":"two"})");
                           if (b != std::string::npos) {
                             EXPECT_NE(a, std::string::npos);
                             EXPECT_LT(a, b);
                           }
                           return b != std::string::npos;
                         });
}

}  // namespace
}  // namespace nines::net
