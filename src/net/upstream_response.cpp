#include "net/upstream_response.hpp"

#include <boost/asio/ssl/error.hpp>
#include <cstring>

namespace nines::net {
namespace {

constexpr unsigned max_interim_responses = 8;

class wire_category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "nines.upstream_wire"; }
  std::string message(int ev) const override {
    switch (static_cast<upstream_wire_error>(ev)) {
      case upstream_wire_error::bad_message: return "malformed response from upstream";
      case upstream_wire_error::partial_message:
        return "the upstream closed the connection before the end of its response";
    }
    return "upstream wire error";
  }
};

bool is_end_of_stream(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}

}  // namespace

const boost::system::error_category& upstream_wire_category() {
  static const wire_category category;
  return category;
}

upstream_response::upstream_response(upstream_connection& connection, bool to_head,
                                     std::size_t max_head_bytes, std::size_t max_meta_bytes)
    : connection_(connection), to_head_(to_head), max_head_bytes_(max_head_bytes) {
  chunked_.emplace(max_meta_bytes, ~std::uint64_t{0});
  connection_.mark_used();
}

error_code upstream_response::fail(std::string problem) {
  problem_ = std::move(problem);
  clean_end_ = false;
  return make_error_code(upstream_wire_error::bad_message);
}

awaitable<io_result> upstream_response::read_more() {
  auto& buf = connection_.buffer();
  const auto space = buf.space();
  if (space.size() == 0) {
    co_return io_result{make_error_code(upstream_wire_error::bad_message), 0};
  }
  auto [ec, n] = co_await connection_.read_some(space);
  buf.commit(n);
  co_return io_result{ec, n};
}

awaitable<io_result> upstream_response::read_into(char* out, std::size_t size) {
  co_return co_await connection_.read_some(asio::buffer(out, size));
}

awaitable<error_code> upstream_response::read_head() {
  auto& buf = connection_.buffer();
  for (unsigned interim = 0;; ++interim) {
    core::head_scanner scanner(max_head_bytes_);
    std::size_t size = 0;
    bool any = !buf.empty();
    for (;;) {
      core::head_problem problem = core::head_problem::none;
      size = buf.empty() ? 0 : scanner.scan(buf.data(), problem);
      if (size > 0) {
        break;
      }
      if (problem != core::head_problem::none) {
        co_return fail("response head: " + std::string(core::describe(problem)));
      }
      auto [ec, n] = co_await read_more();
      if (ec) {
        clean_end_ = false;
        if (is_end_of_stream(ec)) {
          co_return any ? make_error_code(upstream_wire_error::partial_message)
                        : error_code(asio::error::eof);
        }
        co_return ec;
      }
      any = true;
    }
    const auto p = core::parse_response_head(buf.data().substr(0, size), 100, parsed_);
    if (p != core::head_problem::none) {
      co_return fail("response head: " + std::string(core::describe(p)));
    }
    if (auto why = core::read_response_framing(parsed_, to_head_, framing_); !why.empty()) {
      co_return fail(std::move(why));
    }
    if (framing_.interim) {
      buf.consume(size);  // 100 Continue, 102, 103 Early Hints: never the answer
      if (interim + 1 > max_interim_responses) {
        co_return fail("more than 8 interim (1xx) responses");
      }
      continue;
    }
    head_ = http::response_header<>{};
    head_.version(parsed_.version);
    head_.result(parsed_.status);
    head_.reason(parsed_.reason);
    for (const auto& f : parsed_.fields) {
      head_.insert(f.name, f.value);
    }
    buf.consume(size);  // parsed_ points into it: not used below
    remaining_ = framing_.length;
    done_ = framing_.body == core::body_framing::none;
    co_return error_code{};
  }
}

awaitable<error_code> upstream_response::read_some(char* out, std::size_t size, std::size_t& got) {
  got = 0;
  auto& buf = connection_.buffer();
  if (done_ || size == 0) {
    co_return error_code{};
  }
  switch (framing_.body) {
    case core::body_framing::none:
      done_ = true;
      co_return error_code{};
    case core::body_framing::length: {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, size));
      if (!buf.empty()) {
        got = buf.take(out, want);
      } else {
        // Straight into the caller's buffer, and never past the framed end.
        auto [ec, n] = co_await read_into(out, want);
        if (ec) {
          clean_end_ = false;
          co_return is_end_of_stream(ec) ? make_error_code(upstream_wire_error::partial_message)
                                         : ec;
        }
        got = n;
      }
      remaining_ -= got;
      done_ = remaining_ == 0;
      co_return error_code{};
    }
    case core::body_framing::chunked:
      for (;;) {
        // Everything buffered that fits, across chunks: events that arrived together leave
        // together.
        while (!buf.empty() && got < size && !chunked_->done()) {
          const auto step = chunked_->next(buf.data().substr(0, size - got));
          if (!step.data.empty()) {
            std::memcpy(out + got, step.data.data(), step.data.size());
            got += step.data.size();
          }
          buf.consume(step.consumed);
          if (chunked_->failed()) {
            co_return fail("chunked body: " + std::string(core::describe(chunked_->problem())));
          }
          if (step.consumed == 0) {
            break;
          }
        }
        done_ = chunked_->done();
        if (got > 0 || done_) {
          co_return error_code{};
        }
        auto [ec, n] = co_await read_more();
        if (ec) {
          clean_end_ = false;
          co_return is_end_of_stream(ec) ? make_error_code(upstream_wire_error::partial_message)
                                         : ec;
        }
      }
    case core::body_framing::until_close: {
      if (!buf.empty()) {
        got = buf.take(out, size);
        co_return error_code{};
      }
      auto [ec, n] = co_await read_into(out, size);
      if (ec == asio::error::eof) {
        done_ = true;  // the end of the connection is the end of this body
        co_return error_code{};
      }
      if (ec == asio::ssl::error::stream_truncated) {
        // TLS closed without close_notify: whoever cut it may have cut the body too.
        clean_end_ = false;
        co_return make_error_code(upstream_wire_error::partial_message);
      }
      got = n;
      co_return ec;
    }
  }
  co_return error_code{};
}

awaitable<whole_response> read_whole_response(upstream_connection& connection, bool to_head,
                                              std::size_t max_body) {
  whole_response out;
  upstream_response response(connection, to_head, 64u << 10);
  out.error = co_await response.read_head();
  if (!out.error) {
    out.status = response.status();
    out.head = response.head();
    char buf[16384];
    while (!response.done() && !out.error) {
      std::size_t got = 0;
      out.error = co_await response.read_some(buf, sizeof buf, got);
      out.body.append(buf, got);
      if (out.body.size() > max_body) {
        out.error = make_error_code(upstream_wire_error::bad_message);
        out.problem = "response body over " + std::to_string(max_body) + " bytes";
        co_return out;
      }
    }
  }
  out.problem = response.problem();
  out.reusable = !out.error && response.reusable();
  co_return out;
}

bool upstream_response::reusable() const {
  return done_ && clean_end_ && framing_.keep_alive &&
         framing_.body != core::body_framing::until_close && connection_.buffer().empty();
}

}  // namespace nines::net
