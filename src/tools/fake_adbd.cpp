#include "tools/fake_adbd.hpp"

#include <fmt/format.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <random>

#include "core/devices/adb_transport_wire.hpp"
#include "net/asio.hpp"
#include "tools/io_thread.hpp"

namespace nines::tools {

using namespace net;

namespace {

constexpr std::uint32_t own_max_payload = 256 * 1024;
constexpr std::size_t max_connections = 64;
constexpr std::size_t max_streams = 64;  // per connection
constexpr std::size_t max_files = 16;
constexpr std::size_t max_taps = 4096;
constexpr std::size_t max_sync_path = 1024;
constexpr std::string_view banner =
    "device::ro.product.name=fake;ro.product.model=Fake_Phone;ro.product.device=fake;features=";

// The words of a command as sh would split them: adb quotes what it passes ('-p'), so quotes
// and backslashes are taken out; at most 16 words.
std::vector<std::string> words_of(std::string_view command) {
  std::vector<std::string> out;
  std::string w;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < command.size() && out.size() < 16; ++i) {
    const char c = command[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        w.push_back(c);
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < command.size()) {
      w.push_back(command[++i]);
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) {
        out.push_back(std::move(w));
        w.clear();
        in_word = false;
      }
    } else {
      w.push_back(c);
      in_word = true;
    }
  }
  if (in_word && out.size() < 16) {
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace

struct fake_adbd::impl {
  struct stream {
    std::uint32_t host_id = 0;
    bool sync = false;
    bool hung = false;
    bool awaiting_okay = false;  // a WRTE of ours not yet acknowledged
    bool close_after = false;    // close once `out` is all sent
    bool crash_after = false;    // the phone dies once `out` is all acknowledged
    std::string in;              // sync requests not yet whole
    std::string out;             // what is still to be sent
  };
  struct connection {
    tcp::socket& socket;
    std::uint32_t max_payload = 4096;  // until the server's CNXN says more
    std::map<std::uint32_t, stream> streams;
    std::uint32_t next_id = 1;
  };

  asio::io_context io{1};
  std::string address;
  std::uint16_t port = 0;
  std::size_t screenshot_bytes = 0;
  std::optional<tcp::acceptor> acceptor;
  std::optional<io_thread> runner;
  std::list<tcp::socket*> live;  // io thread only
  std::atomic<mode> current{mode::ok};
  std::atomic<std::size_t> cut_after{0};  // cut_next_pull's bytes (0: none armed)
  double loss = 0;                        // set_loss; under `mutex`
  std::mt19937_64 rng{1};                 // under `mutex`

  mutable std::mutex mutex;
  std::map<std::string, int> counts;
  std::deque<std::string> taps;
  std::function<void(const std::string&)> tap_listener;
  std::map<std::string, std::shared_ptr<const std::string>> files;
  std::uint64_t captures = 0;

  void count(const std::string& kind) {
    std::lock_guard lock(mutex);
    ++counts[kind];
  }

  std::string screenshot(std::uint64_t n) const {
    std::string out = "\x89PNG\r\n\x1a\n";
    out.reserve(screenshot_bytes);
    std::uint64_t x = n * 0x9e3779b97f4a7c15ULL;  // splitmix64 over the capture's number
    while (out.size() < screenshot_bytes) {
      x += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      z ^= z >> 31;
      for (int i = 0; i < 8 && out.size() < screenshot_bytes; ++i) {
        out.push_back(static_cast<char>((z >> (8 * i)) & 0xffU));
      }
    }
    out.resize(screenshot_bytes);
    return out;
  }

  // What a shell command prints.
  std::string run(std::string_view command) {
    const auto w = words_of(command);
    if (w.empty()) {
      return {};
    }
    count("shell:" + w[0].substr(0, 32));
    if (w[0] == "echo") {
      std::string out;
      for (std::size_t i = 1; i < w.size(); ++i) {
        out += (i > 1 ? " " : "") + w[i];
      }
      return out + "\n";
    }
    if (w[0] == "screencap" && w.size() >= 2 && w[1] == "-p") {
      std::uint64_t n = 0;
      {
        std::lock_guard lock(mutex);
        n = ++captures;
      }
      auto shot = std::make_shared<const std::string>(screenshot(n));
      if (w.size() < 3) {
        return *shot;
      }
      std::lock_guard lock(mutex);
      if (!files.contains(w[2]) && files.size() >= max_files) {
        return "screencap: No space left on device\n";
      }
      files[w[2]] = std::move(shot);
      return {};
    }
    if (w[0] == "input" && w.size() == 4 && w[1] == "tap") {
      std::function<void(const std::string&)> listener;
      std::string tap = w[2] + " " + w[3];
      {
        std::lock_guard lock(mutex);
        taps.push_back(tap);
        if (taps.size() > max_taps) {
          taps.pop_front();
        }
        ++counts["tap"];
        listener = tap_listener;
      }
      if (listener) {
        listener(tap);
      }
      return {};
    }
    if (w[0] == "rm" && w.size() >= 2) {
      std::lock_guard lock(mutex);
      files.erase(w.back());
      return {};
    }
    return fmt::format("/system/bin/sh: {}: not found\n", w[0].substr(0, 64));
  }

  // The answers to the sync requests whole in `s.in`; false when the stream must be closed.
  bool run_sync(stream& s) {
    for (;;) {
      core::adb_sync_request r;
      const auto parsed = core::parse_adb_sync_request(s.in, max_sync_path, r);
      if (parsed == core::adb_sync_parse::more) {
        return true;
      }
      if (parsed == core::adb_sync_parse::bad) {
        return false;
      }
      s.in.erase(0, r.consumed);
      std::shared_ptr<const std::string> file;
      {
        std::lock_guard lock(mutex);
        if (auto it = files.find(r.path); it != files.end()) {
          file = it->second;
        }
      }
      if (r.id == "STAT") {
        s.out += file ? core::adb_sync_stat(0100644, static_cast<std::uint32_t>(file->size()),
                                            1700000000)
                      : core::adb_sync_stat(0, 0, 0);
      } else if (r.id == "RECV") {
        if (!file) {
          s.out += core::adb_sync_fail("No such file or directory");
          continue;
        }
        std::string answer;
        for (std::size_t at = 0; at < file->size(); at += core::adb_sync_max_data) {
          answer +=
              core::adb_sync_data(std::string_view(*file).substr(at, core::adb_sync_max_data));
        }
        answer += core::adb_sync_done(1700000000);
        if (const auto cut = cut_after.exchange(0); cut > 0) {
          answer.resize(std::min(cut, answer.size() - 1));  // never the whole answer
          s.out += answer;
          s.crash_after = true;
          count("pull_cut");
          return true;  // nothing after it: the phone dies with this answer
        }
        s.out += answer;
        count("pull");
      } else if (r.id == "QUIT") {
        s.close_after = true;
        return true;
      } else {
        s.out += core::adb_sync_fail("unsupported");
      }
    }
  }

  awaitable<bool> send(connection& c, std::uint32_t command, std::uint32_t arg0, std::uint32_t arg1,
                       std::string_view payload = {}) {
    const std::string message = core::encode_adb_message(command, arg0, arg1, payload);
    auto [ec, n] = co_await asio::async_write(c.socket, asio::buffer(message), use_nothrow);
    co_return !ec;
  }

  // Sends the next piece of a stream's output, or its close once all of it was acknowledged.
  awaitable<bool> flush(connection& c, std::uint32_t id) {
    auto it = c.streams.find(id);
    if (it == c.streams.end() || it->second.awaiting_okay) {
      co_return true;
    }
    stream& s = it->second;
    if (s.out.empty()) {
      if (s.crash_after) {
        crash_now();
        co_return false;
      }
      if (s.close_after) {
        const std::uint32_t host = s.host_id;
        c.streams.erase(it);
        co_return co_await send(c, core::adb_cmd::clse, id, host);
      }
      co_return true;
    }
    const std::size_t n = std::min<std::size_t>(s.out.size(), c.max_payload);
    const std::string piece = s.out.substr(0, n);
    s.out.erase(0, n);
    s.awaiting_okay = true;
    co_return co_await send(c, core::adb_cmd::wrte, id, s.host_id, piece);
  }

  awaitable<bool> open(connection& c, const core::adb_message_head& h, std::string destination) {
    count("open");
    if (const auto nul = destination.find('\0'); nul != std::string::npos) {
      destination.resize(nul);
    }
    const bool shell = destination.rfind("shell:", 0) == 0 || destination.rfind("exec:", 0) == 0;
    const bool sync = destination == "sync:";
    if ((!shell && !sync) || c.streams.size() >= max_streams || h.arg0 == 0) {
      co_return co_await send(c, core::adb_cmd::clse, 0, h.arg0);
    }
    if (shell) {
      bool lost = false;
      {
        std::lock_guard lock(mutex);
        lost = loss > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < loss;
      }
      if (lost) {
        count("lost");
        co_return true;  // never answered: neither confirmed nor refused
      }
    }
    const std::uint32_t id = c.next_id++;
    stream& s = c.streams[id];
    s.host_id = h.arg0;
    s.sync = sync;
    if (!co_await send(c, core::adb_cmd::okay, id, h.arg0)) {
      co_return false;
    }
    if (current.load() == mode::hang) {
      s.hung = true;  // confirmed, never finished
      co_return true;
    }
    if (shell) {
      s.out = run(destination.substr(destination.find(':') + 1));
      s.close_after = true;
      co_return co_await flush(c, id);
    }
    co_return true;
  }

  awaitable<bool> handle(connection& c, const core::adb_message_head& h, std::string payload) {
    const mode m = current.load();
    if (m == mode::silent) {
      co_return true;  // read, never answered
    }
    switch (h.command) {
      case core::adb_cmd::cnxn:
        c.max_payload = std::clamp<std::uint32_t>(h.arg1, 4096, own_max_payload);
        if (m == mode::unauthorized) {
          const std::string token(20, '\x5a');
          co_return co_await send(c, core::adb_cmd::auth, core::adb_auth_token, 0, token);
        }
        count("connect");
        co_return co_await send(c, core::adb_cmd::cnxn, core::adb_transport_version,
                                own_max_payload, banner);
      case core::adb_cmd::auth:
        count("auth");
        if (m == mode::unauthorized && h.arg0 == core::adb_auth_signature) {
          const std::string token(20, '\x5a');  // refused: ask again (then comes the key)
          co_return co_await send(c, core::adb_cmd::auth, core::adb_auth_token, 0, token);
        }
        co_return true;  // a public key: the prompt nobody answers
      case core::adb_cmd::open:
        co_return co_await open(c, h, std::move(payload));
      case core::adb_cmd::okay: {
        auto it = c.streams.find(h.arg1);
        if (it != c.streams.end()) {
          it->second.awaiting_okay = false;
          co_return co_await flush(c, h.arg1);
        }
        co_return true;
      }
      case core::adb_cmd::wrte: {
        auto it = c.streams.find(h.arg1);
        if (it == c.streams.end() || it->second.hung) {
          co_return true;
        }
        if (!co_await send(c, core::adb_cmd::okay, h.arg1, it->second.host_id)) {
          co_return false;
        }
        it = c.streams.find(h.arg1);
        if (it == c.streams.end() || !it->second.sync) {
          co_return true;  // what is written to a shell is not read
        }
        it->second.in += payload;
        if (!run_sync(it->second)) {
          const std::uint32_t host = it->second.host_id;
          c.streams.erase(it);
          co_return co_await send(c, core::adb_cmd::clse, h.arg1, host);
        }
        co_return co_await flush(c, h.arg1);
      }
      case core::adb_cmd::clse:
        c.streams.erase(h.arg1);
        co_return true;
      default:
        co_return true;  // SYNC, STLS: not spoken by this adbd
    }
  }

  awaitable<void> serve(tcp::socket s) {
    live.push_back(&s);
    // A stream's OKAY, WRTE and CLSE leave at once, as adbd writes them (Nagle would hold a WRTE
    // until the OKAY before it is acknowledged: a window no phone has).
    error_code nodelay_ec;
    s.set_option(tcp::no_delay(true), nodelay_ec);
    connection c{s};
    for (;;) {
      char head[core::adb_transport_head_bytes];
      auto [ec, n] = co_await asio::async_read(s, asio::buffer(head), use_nothrow);
      if (ec) {
        break;
      }
      const auto h = core::decode_adb_head(std::string_view(head, sizeof head), own_max_payload);
      if (!h) {
        break;  // protocol.txt: an invalid head closes the connection
      }
      std::string payload(h->length, '\0');
      std::tie(ec, n) = co_await asio::async_read(s, asio::buffer(payload), use_nothrow);
      if (ec || !co_await handle(c, *h, std::move(payload))) {
        break;
      }
    }
    live.remove(&s);
    error_code ignored;
    s.close(ignored);
  }

  awaitable<void> accept_loop() {
    while (acceptor && acceptor->is_open()) {
      tcp::socket s(io);
      auto [ec] = co_await acceptor->async_accept(s, use_nothrow);
      if (ec) {
        break;
      }
      if (live.size() >= max_connections) {
        continue;  // closed as it goes
      }
      asio::co_spawn(io, serve(std::move(s)), asio::detached);
    }
  }

  // The phone dies: every connection and the listener closed at once (io thread).
  void crash_now() {
    error_code ignored;
    acceptor->close(ignored);
    for (auto* s : live) {
      s->close(ignored);
    }
  }

  void listen() {
    acceptor.emplace(io);
    const tcp::endpoint at(asio::ip::make_address(address), port);
    acceptor->open(at.protocol());
    acceptor->set_option(asio::socket_base::reuse_address(true));
    acceptor->bind(at);
    acceptor->listen();
    port = acceptor->local_endpoint().port();
    asio::co_spawn(io, accept_loop(), asio::detached);
  }
};

fake_adbd::fake_adbd(const std::string& address, std::uint16_t port, std::size_t screenshot_bytes)
    : impl_(std::make_unique<impl>()) {
  impl_->address = address;
  impl_->port = port;
  impl_->screenshot_bytes = std::max<std::size_t>(screenshot_bytes, 8);
  impl_->listen();
  impl_->runner.emplace(impl_->io);
}

fake_adbd::~fake_adbd() {
  impl_->runner.reset();
}

std::uint16_t fake_adbd::port() const {
  return impl_->port;
}

void fake_adbd::set_mode(mode m) {
  impl_->current.store(m);
}

std::string fake_adbd::screenshot(std::uint64_t n) const {
  return impl_->screenshot(n);
}

int fake_adbd::count(const std::string& kind) const {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->counts.find(kind);
  return it == impl_->counts.end() ? 0 : it->second;
}

void fake_adbd::on_tap(std::function<void(const std::string&)> listener) {
  std::lock_guard lock(impl_->mutex);
  impl_->tap_listener = std::move(listener);
}

std::vector<std::string> fake_adbd::taps() const {
  std::lock_guard lock(impl_->mutex);
  return {impl_->taps.begin(), impl_->taps.end()};
}

void fake_adbd::crash() {
  impl_->runner->on_io([this] { impl_->crash_now(); });
}

void fake_adbd::set_loss(double probability, std::uint64_t seed) {
  std::lock_guard lock(impl_->mutex);
  impl_->loss = probability;
  impl_->rng.seed(seed);
}

void fake_adbd::cut_next_pull(std::size_t after_bytes) {
  impl_->cut_after.store(std::max<std::size_t>(after_bytes, 1));
}

void fake_adbd::reboot() {
  impl_->runner->on_io([this] { impl_->listen(); });
}

}  // namespace nines::tools
