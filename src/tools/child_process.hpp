#pragma once
// A child process whose stdout and stderr are captured, for the tools that orchestrate other
// processes (the scenario runner) and for the integration tests. Waiting is on events (output
// appeared, the process exited), never on sleeps.
//
// Threading: one reader thread per captured stream; every method may be called from any thread.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace nines::tools {

class child_process {
 public:
  using milliseconds = std::chrono::milliseconds;

  // Starts args[0] (a path) with args; throws when it cannot be started. With `capture` false
  // the child's output goes to /dev/null (a long-running load's access log, say).
  explicit child_process(std::vector<std::string> args, bool capture = true);
  // Kills the child (SIGKILL) if it is still running and reaps it.
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  // Waits until `text` has appeared in stdout or stderr; returns the line containing it, or nullopt
  // on timeout or once the child has closed its output (exited) without printing it.
  std::optional<std::string> wait_for_output(const std::string& text,
                                             milliseconds timeout = milliseconds(15000));
  std::string output();  // both streams so far (a bounded tail for chatty children)
  void signal(int signo);
  // Waits for the exit, then for its last output to be read; returns the exit code (128+signal
  // when killed), or nullopt on timeout.
  std::optional<int> wait_exit(milliseconds timeout = milliseconds(15000));
  int pid() const { return pid_; }

 private:
  void reader(int fd);
  int pid_ = -1;
  std::vector<std::thread> readers_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string output_;
  std::size_t readers_done_ = 0;  // readers that saw the end of their stream
  std::optional<int> exit_code_;
};

}  // namespace nines::tools
