#include "tools/fake_adb_server.hpp"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <list>
#include <mutex>
#include <optional>
#include <random>

#include "core/devices/adb_wire.hpp"
#include "net/asio.hpp"
#include "tools/io_thread.hpp"

namespace nines::tools {

using namespace net;

struct fake_adb_server::impl {
  struct device {
    mode m = mode::ok;
    bool listed = true;
  };
  struct connectable {
    bool reachable = false;
    mode m = mode::ok;
  };

  asio::io_context io{1};
  std::optional<tcp::acceptor> acceptor;
  std::uint16_t port = 0;
  std::optional<io_thread> runner;
  std::list<tcp::socket*> live;             // io thread only
  std::list<asio::steady_timer*> trackers;  // io thread only

  mutable std::mutex mutex;
  std::map<std::string, device> devices;
  std::map<std::string, connectable> connectables;
  std::optional<std::string> raw_list;
  std::uint64_t generation = 0;  // moves on with every change of the list
  std::map<std::string, int> counts;
  double loss = 0;          // a probe's chance of going unanswered (set_loss)
  std::string sync_answer;  // what sync: answers its first request with (set_sync_answer)
  std::mt19937_64 rng{1};

  // The long form (host:devices-l, host:track-devices-l) or the short one ("serial\tstate").
  std::string list_text(bool long_form = true) const {
    if (raw_list) {
      return *raw_list;
    }
    std::string out;
    int id = 1;
    for (const auto& [serial, d] : devices) {
      const char* state = d.m == mode::unauthorized ? "unauthorized"
                          : d.m == mode::offline    ? "offline"
                                                    : "device";
      out +=
          long_form
              ? fmt::format("{:<22} {} product:fake model:Fake_Phone device:fake transport_id:{}\n",
                            serial, state, id++)
              : fmt::format("{}\t{}\n", serial, state);
    }
    return out;
  }

  // Called with `mutex` held by whoever changed the list.
  void changed_locked() { ++generation; }
  void changed() {
    asio::post(io, [this] {
      for (auto* t : trackers) {
        t->cancel();
      }
    });
  }

  void count(const std::string& kind) {
    std::lock_guard lock(mutex);
    ++counts[kind];
  }

  static std::string block(std::string_view text) {
    return fmt::format("{:04x}", text.size()) + std::string(text);
  }
  static std::string okay_block(std::string_view text) { return "OKAY" + block(text); }
  static std::string fail(std::string_view text) { return "FAIL" + block(text); }

  // Callers pass named strings or literals (GCC 12 mishandles temporaries inside co_await).
  awaitable<bool> send(tcp::socket& s, std::string_view bytes) {
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(bytes), use_nothrow);
    co_return !ec;
  }

  // Reads one request: 4 hex digits and the service.
  awaitable<std::optional<std::string>> read_request(tcp::socket& s) {
    char head[4];
    auto [ec, n] = co_await asio::async_read(s, asio::buffer(head, 4), use_nothrow);
    if (ec) {
      co_return std::nullopt;
    }
    const auto length = core::parse_adb_length(std::string_view(head, 4));
    if (!length) {
      co_return std::nullopt;
    }
    std::string service(*length, '\0');
    std::tie(ec, n) = co_await asio::async_read(s, asio::buffer(service), use_nothrow);
    if (ec) {
      co_return std::nullopt;
    }
    co_return service;
  }

  // Holds the connection until the client closes it (a silent link, a hung command).
  awaitable<void> hold(tcp::socket& s) {
    char sink[256];
    for (;;) {
      auto [ec, n] = co_await s.async_read_some(asio::buffer(sink), use_nothrow);
      if (ec) {
        co_return;
      }
    }
  }

  awaitable<void> track(tcp::socket& s, bool long_form) {
    count("track");
    if (!co_await send(s, "OKAY")) {
      co_return;
    }
    asio::steady_timer wake(io, asio::steady_timer::time_point::max());
    trackers.push_back(&wake);
    std::string sent;
    bool first = true;
    for (;;) {
      std::string text;
      std::uint64_t at = 0;
      {
        std::lock_guard lock(mutex);
        text = list_text(long_form);
        at = generation;
      }
      if (first || text != sent) {
        first = false;
        sent = text;
        const std::string framed = block(text);
        if (!co_await send(s, framed)) {
          break;
        }
      }
      {
        // A change made while the list was being sent: its wake-up found nobody waiting.
        std::lock_guard lock(mutex);
        if (generation != at) {
          continue;
        }
      }
      wake.expires_at(asio::steady_timer::time_point::max());
      co_await wake.async_wait(use_nothrow);
      if (!s.is_open()) {
        break;
      }
    }
    trackers.remove(&wake);
  }

  awaitable<void> transport(tcp::socket& s, std::string serial) {
    count("probe:" + serial);
    std::optional<device> d;
    {
      std::lock_guard lock(mutex);
      if (auto it = devices.find(serial); it != devices.end()) {
        d = it->second;
      }
    }
    if (!d) {
      const std::string said = fail(fmt::format("device '{}' not found", serial));
      co_await send(s, said);
      co_return;
    }
    if (d->m == mode::unauthorized) {
      const std::string said =
          fail("device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set");
      co_await send(s, said);
      co_return;
    }
    if (d->m == mode::offline) {
      const std::string said = fail("device offline");
      co_await send(s, said);
      co_return;
    }
    if (!co_await send(s, "OKAY")) {
      co_return;
    }
    auto service = co_await read_request(s);
    if (!service) {
      co_return;
    }
    bool lost = false;
    {
      std::lock_guard lock(mutex);
      lost = loss > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < loss;
    }
    if (d->m == mode::silent || lost) {
      co_await hold(s);  // the phone never confirms the command
      co_return;
    }
    std::string sync_raw;
    {
      std::lock_guard lock(mutex);
      sync_raw = sync_answer;
    }
    if (*service == "sync:" && !sync_raw.empty()) {
      if (!co_await send(s, "OKAY")) {
        co_return;
      }
      char head[8];
      auto [ec, n] = co_await asio::async_read(s, asio::buffer(head), use_nothrow);
      const std::uint32_t length =
          static_cast<unsigned char>(head[4]) | static_cast<unsigned char>(head[5]) << 8 |
          static_cast<unsigned char>(head[6]) << 16 | static_cast<unsigned char>(head[7]) << 24;
      if (ec || length > 1024) {
        co_return;
      }
      std::string path(length, '\0');
      std::tie(ec, n) = co_await asio::async_read(s, asio::buffer(path), use_nothrow);
      count("sync:" + std::string(head, 4));
      if (ec) {
        co_return;
      }
      const bool sent = co_await send(s, sync_raw);
      if (sent) {
        co_await hold(s);
      }
      co_return;
    }
    if (service->rfind("shell:", 0) != 0) {
      const std::string said = fail("closed");
      co_await send(s, said);
      co_return;
    }
    if (!co_await send(s, "OKAY")) {
      co_return;
    }
    if (d->m == mode::hang) {
      co_await hold(s);  // accepted, never finished
      co_return;
    }
    if (d->m == mode::slow) {
      asio::steady_timer late(io, std::chrono::milliseconds(300));
      co_await late.async_wait(use_nothrow);
    }
    const auto command = service->substr(6);
    std::string output = command.rfind("echo ", 0) == 0 ? command.substr(5) + "\n" : "";
    co_await send(s, output);
  }

  awaitable<void> connect(tcp::socket& s, std::string address) {
    count("connect:" + address);
    bool ok = false;
    bool already = false;
    {
      std::lock_guard lock(mutex);
      if (auto it = connectables.find(address); it != connectables.end() && it->second.reachable) {
        ok = true;
        already = devices.contains(address);
        devices[address] = device{it->second.m, true};
        changed_locked();
      }
    }
    if (ok) {
      changed();
    }
    const std::string said =
        okay_block(ok ? (already ? "already connected to " : "connected to ") + address
                      : fmt::format("failed to connect to '{}': Connection refused", address));
    co_await send(s, said);
  }

  awaitable<void> disconnect(tcp::socket& s, std::string address) {
    count("disconnect:" + address);
    bool had = false;
    {
      std::lock_guard lock(mutex);
      had = devices.erase(address) > 0;
      changed_locked();
    }
    if (had) {
      changed();
    }
    const std::string said =
        okay_block(had ? "disconnected " + address : fmt::format("no such device '{}'", address));
    co_await send(s, said);
  }

  awaitable<void> serve(tcp::socket s) {
    live.push_back(&s);
    auto service = co_await read_request(s);
    if (service) {
      const std::string& v = *service;
      count("service:" + v.substr(0, 64));
      if (v == "host:track-devices-l" || v == "host:track-devices") {
        co_await track(s, v == "host:track-devices-l");
      } else if (v == "host:devices-l" || v == "host:devices") {
        std::string text;
        {
          std::lock_guard lock(mutex);
          text = list_text();
        }
        const std::string said = okay_block(text);
        co_await send(s, said);
      } else if (v.rfind("host:transport:", 0) == 0) {
        std::string serial = v.substr(15);  // named: GCC 12 and temporaries in co_await
        co_await transport(s, serial);
      } else if (v.rfind("host:connect:", 0) == 0) {
        std::string address = v.substr(13);
        co_await connect(s, address);
      } else if (v.rfind("host:disconnect:", 0) == 0) {
        std::string address = v.substr(16);
        co_await disconnect(s, address);
      } else if (v == "host:version") {
        const std::string said = okay_block("0029");
        co_await send(s, said);
      } else {
        const std::string said = fail("unknown host service");
        co_await send(s, said);
      }
    }
    live.remove(&s);
    error_code ignored;
    s.close(ignored);
  }

  awaitable<void> accept_loop() {
    while (acceptor && acceptor->is_open()) {
      auto [ec, s] = co_await acceptor->async_accept(use_nothrow);
      if (ec) {
        break;
      }
      asio::co_spawn(io, serve(std::move(s)), asio::detached);
    }
  }

  void listen() {
    acceptor.emplace(io);
    const tcp::endpoint at(asio::ip::make_address("127.0.0.1"), port);
    acceptor->open(at.protocol());
    acceptor->set_option(asio::socket_base::reuse_address(true));
    acceptor->bind(at);
    acceptor->listen();
    port = acceptor->local_endpoint().port();
    asio::co_spawn(io, accept_loop(), asio::detached);
  }
};

fake_adb_server::fake_adb_server(std::uint16_t port) : impl_(std::make_unique<impl>()) {
  impl_->port = port;
  impl_->listen();
  impl_->runner.emplace(impl_->io);
}

fake_adb_server::~fake_adb_server() {
  impl_->runner.reset();
}

std::uint16_t fake_adb_server::port() const {
  return impl_->port;
}

void fake_adb_server::set_device(const std::string& serial, mode m) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->devices[serial] = impl::device{m, true};
    impl_->raw_list.reset();
    impl_->changed_locked();
  }
  impl_->changed();
}

void fake_adb_server::remove_device(const std::string& serial) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->devices.erase(serial);
    impl_->raw_list.reset();
    impl_->changed_locked();
  }
  impl_->changed();
}

void fake_adb_server::set_connectable(const std::string& address, bool reachable, mode m) {
  std::lock_guard lock(impl_->mutex);
  impl_->connectables[address] = impl::connectable{reachable, m};
}

void fake_adb_server::set_sync_answer(const std::string& raw) {
  std::lock_guard lock(impl_->mutex);
  impl_->sync_answer = raw;
}

void fake_adb_server::set_loss(double probability, std::uint64_t seed) {
  std::lock_guard lock(impl_->mutex);
  impl_->loss = probability;
  impl_->rng.seed(seed);
}

void fake_adb_server::set_raw_list(const std::string& text) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->raw_list = text;
    impl_->changed_locked();
  }
  impl_->changed();
}

int fake_adb_server::count(const std::string& kind) const {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->counts.find(kind);
  return it == impl_->counts.end() ? 0 : it->second;
}

int fake_adb_server::requests() const {
  std::lock_guard lock(impl_->mutex);
  int n = 0;
  for (const auto& [kind, count] : impl_->counts) {
    n += count;
  }
  return n;
}

void fake_adb_server::pause() {
  impl_->runner->on_io([this] {
    error_code ignored;
    impl_->acceptor->close(ignored);
    for (auto* s : impl_->live) {
      s->close(ignored);
    }
    for (auto* t : impl_->trackers) {
      t->cancel();
    }
  });
}

void fake_adb_server::resume() {
  impl_->runner->on_io([this] { impl_->listen(); });
}

}  // namespace nines::tools
