#include "devices/sync_relay.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/write.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/devices/adb_transport_wire.hpp"
#include "core/devices/resumable_pull.hpp"
#include "net/deadline_sweep.hpp"

namespace nines::devices {

namespace asio = net::asio;
using net::error_code;
using net::tcp;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::size_t max_sync_path = 1024;  // adb's own limit
// Breaks one request may be mended through: a phone whose link keeps failing in the middle of
// the same pull gets its refusal after this many.
constexpr unsigned max_mends = 8;

// The size of the answer to a sync request answered in one piece of a fixed size.
std::optional<std::size_t> fixed_answer_size(std::string_view id) {
  if (id == "STAT") {
    return 16;  // "STAT", mode, size, mtime
  }
  if (id == "STA2" || id == "LST2") {
    return 72;  // the id, error, dev, ino, mode, nlink, uid, gid, size, atime, mtime, ctime
  }
  return std::nullopt;
}

using step = core::resumable_pull::step;

// The answer at the front of `from_adb` to a request answered in one piece of `size` bytes that
// starts with the request's `id` (STAT, STA2, LST2), or by adb's FAIL: moved to `out` whole.
// Anything else is refused (a FAIL of the proxy's own in `out`).
step take_fixed_answer(std::string& from_adb, std::string_view id, std::size_t size,
                       std::string& out) {
  if (from_adb.size() < 8) {
    return step::more;
  }
  std::size_t whole = size;
  if (from_adb.compare(0, 4, "FAIL") == 0) {
    core::adb_sync_reply r;
    const auto parsed = core::parse_adb_sync_reply(from_adb, 0xffff, r);
    if (parsed == core::adb_sync_parse::more) {
      return step::more;
    }
    whole = parsed == core::adb_sync_parse::done ? r.consumed : 0;
  } else if (from_adb.compare(0, 4, id) != 0) {
    whole = 0;
  }
  if (whole == 0) {
    out += core::adb_sync_fail(
        "nines adb proxy: the answer to a sync request is not the sync "
        "protocol");
    return step::refused;
  }
  if (from_adb.size() < whole) {
    return step::more;
  }
  out.append(from_adb, 0, whole);
  from_adb.erase(0, whole);
  return step::done;
}

struct relay {
  tcp::socket& client;
  tcp::socket& upstream;
  reopen_sync reopen;
  devices_snapshot::proxy_counts& counts;
  milliseconds stall;
  std::string from_agent;  // the agent's requests not yet taken
  std::string from_adb;    // adb's answer not yet passed on

  // More of adb's answer, within `stall`; false when the stream broke.
  net::awaitable<bool> read_more() {
    char buf[16384];
    net::deadline reading(upstream);
    reading.arm(steady::now() + stall);
    auto [ec, n] = co_await upstream.async_read_some(asio::buffer(buf), net::use_nothrow);
    from_adb.append(buf, n);
    co_return n > 0;
  }

  net::awaitable<bool> to_adb(std::string_view bytes) {
    net::deadline writing(upstream);
    writing.arm(steady::now() + stall);
    auto [ec, n] = co_await asio::async_write(upstream, asio::buffer(bytes), net::use_nothrow);
    co_return !ec;
  }

  // An agent that stops reading holds the phone's stream: it gets `stall` to take each answer.
  net::awaitable<bool> to_agent(std::string_view bytes) {
    if (bytes.empty()) {
      co_return true;
    }
    net::deadline writing(client);
    writing.arm(steady::now() + stall);
    auto [ec, n] = co_await asio::async_write(client, asio::buffer(bytes), net::use_nothrow);
    co_return !ec;
  }

  // Ends the agent's pull with a refusal of the proxy's own.
  net::awaitable<void> refuse(std::string_view message) {
    const std::string fail = core::adb_sync_fail(message);
    co_await to_agent(fail);
  }

  // The stream broke in the middle of an answer: a new one, or the agent told why not.
  net::awaitable<bool> mend(unsigned& mends) {
    from_adb.clear();
    error_code ignored;
    upstream.close(ignored);
    auto result = reopen_result::gave_up;
    if (++mends <= max_mends) {
      result = co_await reopen();
    }
    if (result == reopen_result::open) {
      ++counts.sync_resumed;
      co_return true;
    }
    if (result == reopen_result::agent_left) {
      ++counts.sync_abandoned;  // nobody to tell
      co_return false;
    }
    ++counts.sync_lost;
    if (mends > max_mends) {
      co_await refuse("nines adb proxy: the phone's link broke 8 times during one transfer");
    } else {
      co_await refuse(
          "nines adb proxy: the phone's link broke during the transfer and it did not come back "
          "in time");
    }
    co_return false;
  }

  // Sends `request` and passes on what `take` makes of adb's answer until it says the answer is
  // over; a break in the middle is mended, `restart` told, and the request sent again. False when
  // the session must end.
  net::awaitable<bool> ask(std::string_view request, const std::function<step(std::string&)>& take,
                           const std::function<void()>& restart) {
    unsigned mends = 0;
    bool asked = co_await to_adb(request);
    for (;;) {
      if (asked) {
        std::string out;
        const auto taken = take(out);
        const bool passed = co_await to_agent(out);
        if (!passed) {
          co_return false;
        }
        if (taken != step::more) {
          co_return taken == step::done;
        }
        const bool more = co_await read_more();
        if (more) {
          continue;
        }
      }
      const bool mended = co_await mend(mends);
      if (!mended) {
        co_return false;
      }
      restart();
      asked = co_await to_adb(request);
    }
  }

  // A RECV (or an uncompressed RCV2): adb's answer passed on, resumed after a break.
  net::awaitable<bool> pull(std::string_view request) {
    core::resumable_pull file;
    const std::function<step(std::string&)> take = [&](std::string& out) {
      return file.take(from_adb, out);
    };
    const std::function<void()> restart = [&] { file.restart(); };
    const bool goes_on = co_await ask(request, take, restart);
    co_return goes_on;
  }

  // A request answered in one piece of `size` bytes, asked again after a break.
  net::awaitable<bool> fixed(std::string_view request, std::size_t size) {
    const std::string id(request.substr(0, 4));
    const std::function<step(std::string&)> take = [&](std::string& out) {
      return take_fixed_answer(from_adb, id, size, out);
    };
    const std::function<void()> restart = [] {};
    const bool goes_on = co_await ask(request, take, restart);
    co_return goes_on;
  }

  net::awaitable<void> run() {
    for (;;) {
      core::adb_sync_request r;
      const auto parsed = core::parse_adb_sync_request(from_agent, max_sync_path, r);
      // RCV2 comes in two packets: the path, then "RCV2" and its flags (4 bytes each).
      const bool v2 = parsed == core::adb_sync_parse::done && r.id == "RCV2";
      const std::size_t whole = r.consumed + (v2 ? 8 : 0);
      if (parsed == core::adb_sync_parse::more || (v2 && from_agent.size() < whole)) {
        char buf[4096];
        auto [ec, n] = co_await client.async_read_some(asio::buffer(buf), net::use_nothrow);
        if (n == 0) {
          co_return;  // the agent left (or ended its session without QUIT)
        }
        from_agent.append(buf, n);
        continue;
      }
      if (!from_adb.empty()) {
        // adb said something nobody asked for: whatever it is, it is no answer to relay.
        co_await refuse("nines adb proxy: the adb server sent bytes no request asked for");
        co_return;
      }
      const bool done = parsed == core::adb_sync_parse::done;
      const bool plain_v2 =
          v2 && from_agent.compare(r.consumed, 8, std::string_view("RCV2\0\0\0\0", 8)) == 0;
      const auto size = done ? fixed_answer_size(r.id) : std::nullopt;
      if (!done || (r.id != "RECV" && !plain_v2 && !size)) {
        // QUIT, SEND, LIST, a compressed RCV2, SND2, or a path adb itself will refuse: passed
        // on as it is from here.
        const bool passed = co_await to_adb(from_agent);
        if (passed) {
          co_await splice(client, upstream);
        }
        co_return;
      }
      const std::string request = from_agent.substr(0, whole);
      from_agent.erase(0, whole);
      bool goes_on = false;
      if (size) {
        goes_on = co_await fixed(request, *size);
      } else {
        goes_on = co_await pull(request);
      }
      if (!goes_on) {
        co_return;
      }
    }
  }
};

}  // namespace

net::awaitable<void> pump(tcp::socket& from, tcp::socket& to) {
  char buf[16384];
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), net::use_nothrow);
    if (n > 0) {
      auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf, n), net::use_nothrow);
      if (wec) {
        error_code ignored;
        from.close(ignored);
        co_return;
      }
    }
    if (ec) {
      error_code ignored;
      if (ec == asio::error::eof) {
        to.shutdown(tcp::socket::shutdown_send, ignored);
      } else {
        to.close(ignored);
      }
      co_return;
    }
  }
}

net::awaitable<void> splice(tcp::socket& client, tcp::socket& upstream) {
  using namespace asio::experimental::awaitable_operators;
  auto to_server = pump(client, upstream);  // named: GCC 12 and temporaries in co_await
  auto to_agent = pump(upstream, client);
  co_await (std::move(to_server) && std::move(to_agent));
}

net::awaitable<void> relay_sync(tcp::socket& client, tcp::socket& upstream, reopen_sync reopen,
                                devices_snapshot::proxy_counts& counts, milliseconds stall) {
  relay r{client, upstream, std::move(reopen), counts, stall, {}, {}};
  co_await r.run();
  error_code ignored;
  upstream.close(ignored);
  client.close(ignored);
}

}  // namespace nines::devices
