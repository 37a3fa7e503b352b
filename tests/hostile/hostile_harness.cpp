#include "hostile_harness.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace nines::hostile {
namespace {

using steady = std::chrono::steady_clock;

std::string lower(std::string s) {
  for (auto& c : s) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.erase(0, 1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.pop_back();
  }
  return s;
}

// "Name: value" lines after the first line of `head` (without its final CRLF CRLF).
std::map<std::string, std::string> read_fields(const std::string& head) {
  std::map<std::string, std::string> out;
  std::size_t at = head.find("\r\n");
  while (at != std::string::npos && at + 2 < head.size()) {
    const auto next = head.find("\r\n", at + 2);
    const std::string line = head.substr(at + 2, next == std::string::npos ? std::string::npos
                                                                            : next - at - 2);
    at = next;
    const auto colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    const auto name = lower(line.substr(0, colon));
    const auto value = trim(line.substr(colon + 1));
    auto [it, fresh] = out.emplace(name, value);
    if (!fresh) {
      it->second += ", " + value;
    }
  }
  return out;
}

bool send_all(int fd, const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) {
        continue;
      }
      return false;
    }
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

scripted_upstream::scripted_upstream(script s) : script_(std::move(s)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 128) != 0) {
    throw std::runtime_error("scripted upstream: cannot listen");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

scripted_upstream::~scripted_upstream() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (const auto& [id, fd] : fds_) {
      ::shutdown(fd, SHUT_RDWR);  // wakes its handler
    }
  }
  ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
  acceptor_.join();
  ::close(listen_fd_);
  for (auto& t : handlers_) {
    t.join();
  }
}

void scripted_upstream::set_script(script s) {
  std::lock_guard lock(mutex_);
  script_ = std::move(s);
}

void scripted_upstream::accept_loop() {
  for (;;) {
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    std::lock_guard lock(mutex_);
    if (fd < 0 || stopping_) {
      if (fd >= 0) {
        ::close(fd);
      }
      if (stopping_ || (errno != EINTR && errno != ECONNABORTED)) {
        return;
      }
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const unsigned id = ++next_connection_;
    fds_[id] = fd;
    handlers_.emplace_back([this, fd, id] { serve(fd, id); });
    changed_.notify_all();
  }
}

void scripted_upstream::serve(int fd, unsigned connection) {
  std::string buf;
  char chunk[65536];
  const auto read_more = [&]() -> bool {
    const auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) {
      return false;
    }
    buf.append(chunk, static_cast<std::size_t>(n));
    return true;
  };
  bool open = true;
  while (open) {
    std::size_t end = std::string::npos;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!read_more()) {
        open = false;
        break;
      }
    }
    if (!open) {
      break;
    }
    seen_request r;
    r.connection = connection;
    r.head = buf.substr(0, end + 4);
    buf.erase(0, end + 4);
    const auto sp1 = r.head.find(' ');
    const auto sp2 = r.head.find(' ', sp1 + 1);
    r.method = r.head.substr(0, sp1);
    r.target = r.head.substr(sp1 + 1, sp2 - sp1 - 1);
    r.headers = read_fields(r.head.substr(0, r.head.size() - 2));
    std::size_t length = 0;
    if (auto it = r.headers.find("content-length"); it != r.headers.end()) {
      length = std::stoul(it->second);
    }
    while (buf.size() < length && read_more()) {
    }
    r.body = buf.substr(0, length);
    buf.erase(0, std::min(length, buf.size()));
    script s;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(r);
      s = script_;
      changed_.notify_all();
    }
    const auto reply = s ? s(r) : upstream_reply{ok_response("default")};
    if (!reply.bytes.empty() && !send_all(fd, reply.bytes)) {
      break;
    }
    if (reply.close) {
      ::shutdown(fd, SHUT_WR);
    }
    if (reply.hold || reply.close) {
      while (read_more()) {  // until the gateway closes (or sends more, which is kept)
      }
      break;
    }
  }
  std::lock_guard lock(mutex_);
  closed_at_[connection] = steady::now();
  fds_.erase(connection);
  ::close(fd);
  changed_.notify_all();
}

std::vector<seen_request> scripted_upstream::requests() {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::size_t scripted_upstream::request_count() {
  std::lock_guard lock(mutex_);
  return requests_.size();
}

unsigned scripted_upstream::connections() {
  std::lock_guard lock(mutex_);
  return next_connection_;
}

bool scripted_upstream::wait_requests(std::size_t n, milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

std::optional<milliseconds> scripted_upstream::wait_closed(unsigned connection,
                                                           steady::time_point since,
                                                           milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!changed_.wait_for(lock, timeout, [&] { return closed_at_.contains(connection); })) {
    return std::nullopt;
  }
  return std::chrono::duration_cast<milliseconds>(closed_at_[connection] - since);
}

void scripted_upstream::send_on(unsigned connection, const std::string& bytes) {
  std::lock_guard lock(mutex_);
  if (auto it = fds_.find(connection); it != fds_.end()) {
    send_all(it->second, bytes);
  }
}

std::string ok_response(const std::string& tag, bool keep_alive) {
  const std::string body = R"({"ok":")" + tag + R"("})";
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + (keep_alive ? "" : "\r\nConnection: close") + "\r\n\r\n" +
         body;
}

raw_client::raw_client(unsigned short port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error("raw client: cannot connect");
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

raw_client::~raw_client() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

bool raw_client::send(const std::string& bytes) { return send_all(fd_, bytes); }

bool raw_client::fill(steady::time_point deadline) {
  if (eof_) {
    return false;
  }
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now()).count();
  if (left <= 0) {
    return false;
  }
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left)) <= 0) {
    return false;
  }
  char chunk[65536];
  const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buffer_.append(chunk, static_cast<std::size_t>(n));
  return true;
}

std::optional<client_response> raw_client::read_response(bool head, milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(deadline)) {
      return std::nullopt;
    }
  }
  client_response r;
  r.head = buffer_.substr(0, end + 4);
  buffer_.erase(0, end + 4);
  if (r.head.size() >= 12 && r.head.starts_with("HTTP/1.")) {
    r.status = static_cast<unsigned>(std::stoi(r.head.substr(9, 3)));
  }
  r.headers = read_fields(r.head.substr(0, r.head.size() - 2));
  if (head || r.status / 100 == 1 || r.status == 204 || r.status == 304) {
    r.complete = true;
    return r;
  }
  if (auto te = r.headers.find("transfer-encoding");
      te != r.headers.end() && lower(te->second) == "chunked") {
    for (;;) {
      std::size_t line_end;
      while ((line_end = buffer_.find("\r\n")) == std::string::npos) {
        if (!fill(deadline)) {
          return r;
        }
      }
      const auto size = std::stoul(buffer_.substr(0, line_end), nullptr, 16);
      while (buffer_.size() < line_end + 2 + size + 2) {
        if (!fill(deadline)) {
          return r;
        }
      }
      r.body += buffer_.substr(line_end + 2, size);
      buffer_.erase(0, line_end + 2 + size + 2);
      if (size == 0) {
        r.complete = true;
        return r;
      }
    }
  }
  if (auto cl = r.headers.find("content-length"); cl != r.headers.end()) {
    const auto length = std::stoul(cl->second);
    while (buffer_.size() < length) {
      if (!fill(deadline)) {
        return r;
      }
    }
    r.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    r.complete = true;
    return r;
  }
  while (fill(deadline)) {
  }
  r.body = std::move(buffer_);
  buffer_.clear();
  r.complete = eof_;
  return r;
}

bool raw_client::read_until(const std::string& needle, milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  while (buffer_.find(needle) == std::string::npos) {
    if (!fill(deadline)) {
      return false;
    }
  }
  return true;
}

bool raw_client::wait_closed(milliseconds timeout) {
  const auto deadline = steady::now() + timeout;
  while (fill(deadline)) {
  }
  return eof_;
}

void raw_client::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

void raw_client::reset() {
  linger l{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd_);
  fd_ = -1;
}

std::optional<client_response> exchange(unsigned short port, const std::string& bytes, bool head) {
  raw_client c(port);
  c.send(bytes);
  return c.read_response(head);
}

std::string error_code_of(const std::string& body) {
  const auto at = body.find("\"code\":\"");
  if (at == std::string::npos) {
    return {};
  }
  const auto start = at + 8;
  return body.substr(start, body.find('"', start) - start);
}

}  // namespace nines::hostile
