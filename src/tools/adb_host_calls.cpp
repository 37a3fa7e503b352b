#include "tools/adb_host_calls.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "core/devices/adb_transport_wire.hpp"
#include "core/devices/adb_wire.hpp"
#include "devices/adb_client.hpp"

namespace nines::tools {

namespace {

using clock = std::chrono::steady_clock;
constexpr std::size_t max_fail_words = 4096;

// One connection to the server, every operation bounded by the call's deadline.
class host_connection {
 public:
  host_connection(std::uint16_t port, clock::time_point deadline) : deadline_(deadline) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      error_ = fmt::format("socket: {}", std::strerror(errno));
      return;
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 &&
        errno != EINPROGRESS) {
      fail(fmt::format("cannot connect to the adb server on port {}: {}", port,
                       std::strerror(errno)));
      return;
    }
    if (!await(POLLOUT)) {
      return;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      fail(
          fmt::format("cannot connect to the adb server on port {}: {}", port, std::strerror(err)));
    }
  }
  ~host_connection() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  host_connection(const host_connection&) = delete;
  host_connection& operator=(const host_connection&) = delete;

  bool good() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  bool write(std::string_view bytes) {
    while (good() && !bytes.empty()) {
      const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n > 0) {
        bytes.remove_prefix(static_cast<std::size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        await(POLLOUT);
      } else {
        fail(fmt::format("writing to the adb server: {}", std::strerror(errno)));
      }
    }
    return good();
  }

  // Exactly `n` more bytes into `buffered` (beyond what it holds); false at the end or on error.
  bool fill(std::size_t n) {
    while (good() && buffered_.size() < n) {
      if (read_some() == 0 && good()) {
        fail("the adb server closed the connection");
      }
    }
    return good();
  }
  // Bytes until the server closes; false when more than `max` came or it broke.
  bool read_to_end(std::size_t max) {
    while (good()) {
      if (read_some() == 0) {
        return good();
      }
      if (buffered_.size() > max) {
        fail(fmt::format("more than {} bytes of output", max));
      }
    }
    return false;
  }
  std::string& buffered() { return buffered_; }

  // A request and its OKAY; false with the server's FAIL words (or what broke) in error().
  bool request(std::string_view service) {
    const auto r = core::adb_request(service);
    if (!r) {
      fail("a request the host protocol cannot carry");
      return false;
    }
    if (!write(*r) || !fill(4)) {
      return false;
    }
    const auto status = core::parse_adb_status(std::string_view(buffered_).substr(0, 4));
    if (status == core::adb_status::okay) {
      buffered_.erase(0, 4);
      return true;
    }
    if (status == core::adb_status::fail && fill(8)) {
      const auto n = core::parse_adb_length(std::string_view(buffered_).substr(4, 4));
      if (n && *n <= max_fail_words && fill(8 + *n)) {
        fail(devices::printable_words(std::string_view(buffered_).substr(8, *n)));
        return false;
      }
    }
    if (good()) {
      fail("the adb server's answer is not OKAY or FAIL");
    }
    return false;
  }

 private:
  void fail(std::string why) {
    if (error_.empty()) {
      error_ = std::move(why);
    }
  }
  bool await(short events) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - clock::now());
    if (left.count() <= 0) {
      fail("timed out");
      return false;
    }
    pollfd p{fd_, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n == 0) {
      fail("timed out");
    } else if (n < 0 && errno != EINTR) {
      fail(fmt::format("poll: {}", std::strerror(errno)));
    }
    return good();
  }
  // One read; its byte count (0: the server closed).
  std::size_t read_some() {
    char chunk[64 * 1024];
    for (;;) {
      const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        buffered_.append(chunk, static_cast<std::size_t>(n));
        return static_cast<std::size_t>(n);
      }
      if (n == 0) {
        return 0;
      }
      if (errno != EAGAIN && errno != EINTR) {
        fail(fmt::format("reading from the adb server: {}", std::strerror(errno)));
        return 0;
      }
      if (!await(POLLIN)) {
        return 0;
      }
    }
  }

  int fd_ = -1;
  clock::time_point deadline_;
  std::string buffered_;
  std::string error_;
};

adb_call_result failed(std::string why) {
  adb_call_result r;
  r.error = std::move(why);
  return r;
}

}  // namespace

adb_call_result adb_shell(std::uint16_t port, const std::string& serial, const std::string& command,
                          std::chrono::milliseconds timeout, std::size_t max_output) {
  host_connection c(port, clock::now() + timeout);
  if (!c.good() || !c.request("host:transport:" + serial) || !c.request("shell:" + command) ||
      !c.read_to_end(max_output)) {
    return failed(c.error());
  }
  adb_call_result r;
  r.ok = true;
  r.output = std::move(c.buffered());
  return r;
}

adb_call_result adb_pull(std::uint16_t port, const std::string& serial, const std::string& path,
                         std::chrono::milliseconds timeout, std::size_t max_bytes) {
  host_connection c(port, clock::now() + timeout);
  if (!c.good() || !c.request("host:transport:" + serial) || !c.request("sync:") ||
      !c.write(core::adb_sync_request_bytes("RECV", path))) {
    return failed(c.error());
  }
  adb_call_result r;
  for (;;) {
    core::adb_sync_reply reply;
    const auto parsed = core::parse_adb_sync_reply(c.buffered(), max_fail_words, reply);
    if (parsed == core::adb_sync_parse::bad) {
      return failed("the adb server's sync answer is not DATA, DONE or FAIL");
    }
    if (parsed == core::adb_sync_parse::more) {
      if (!c.fill(c.buffered().size() + 1)) {
        return failed(c.error());
      }
      continue;
    }
    if (reply.what == core::adb_sync_reply::kind::fail) {
      return failed(devices::printable_words(reply.payload));
    }
    if (reply.what == core::adb_sync_reply::kind::done) {
      break;
    }
    if (r.output.size() + reply.payload.size() > max_bytes) {
      return failed(fmt::format("the file is larger than {} bytes", max_bytes));
    }
    r.output.append(reply.payload);
    c.buffered().erase(0, reply.consumed);
  }
  c.write(core::adb_sync_request_bytes("QUIT", ""));
  r.ok = true;
  return r;
}

}  // namespace nines::tools
