#include "tools/child_process.hpp"

#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace nines::tools {

child_process::child_process(std::vector<std::string> args, bool capture) {
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (capture) {
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe failed");
    }
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  } else {
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  }
  // Nothing but the three streams crosses over: a listening socket of the parent's (Asio opens
  // sockets without close-on-exec) would otherwise stay open in the child, and keep accepting
  // connections after the parent closed it.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const int failed = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (capture) {
    ::close(out[1]);
    ::close(err[1]);
  }
  if (failed != 0) {
    if (capture) {
      ::close(out[0]);
      ::close(err[0]);
    }
    throw std::runtime_error("cannot start " + args[0]);
  }
  if (capture) {
    readers_.emplace_back([this, fd = out[0]] { reader(fd); });
    readers_.emplace_back([this, fd = err[0]] { reader(fd); });
  }
}

child_process::~child_process() {
  if (!exit_code_) {
    ::kill(pid_, SIGKILL);
    wait_exit(milliseconds(10000));
  }
  for (auto& t : readers_) {
    t.join();
  }
}

void child_process::reader(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    std::lock_guard lock(mutex_);
    // Keep a bounded tail: a gateway's access log under load is long.
    output_.append(buf, static_cast<std::size_t>(n));
    if (output_.size() > (8u << 20)) {
      output_.erase(0, output_.size() - (4u << 20));
    }
    changed_.notify_all();
  }
  ::close(fd);
  std::lock_guard lock(mutex_);
  ++readers_done_;
  changed_.notify_all();
}

std::optional<std::string> child_process::wait_for_output(const std::string& text,
                                                          milliseconds timeout) {
  std::unique_lock lock(mutex_);
  std::optional<std::string> line;
  changed_.wait_for(lock, timeout, [&] {
    const auto at = output_.find(text);
    if (at == std::string::npos) {
      // Both streams ended (the child exited or closed them): the text will never come.
      return readers_done_ == readers_.size();
    }
    const auto begin = output_.rfind('\n', at);
    const auto first = begin == std::string::npos ? 0 : begin + 1;
    const auto end = output_.find('\n', at);
    line = output_.substr(first, end == std::string::npos ? std::string::npos : end - first);
    return true;
  });
  return line;
}

std::string child_process::output() {
  std::lock_guard lock(mutex_);
  return output_;
}

void child_process::signal(int signo) {
  if (!exit_code_) {
    ::kill(pid_, signo);
  }
}

std::optional<int> child_process::wait_exit(milliseconds timeout) {
  if (exit_code_) {
    return exit_code_;
  }
  // A pidfd becomes readable when the child exits: an event to wait on, not a polling loop.
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (fd >= 0) {
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
    ::close(fd);
    if (ready <= 0) {
      return std::nullopt;
    }
  }
  int status = 0;
  if (::waitpid(pid_, &status, 0) != pid_) {
    return std::nullopt;
  }
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  // What the child wrote last may still be in the pipes: let the readers reach the end (bounded,
  // in case a grandchild holds the pipes open).
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, std::chrono::seconds(2), [&] { return readers_done_ == readers_.size(); });
  return exit_code_;
}

}  // namespace nines::tools
