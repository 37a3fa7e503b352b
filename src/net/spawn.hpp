#pragma once
// Starts a coroutine that nobody awaits. Whatever escapes it (a bug: the data path returns errors
// as values) is logged with `what` and ends only that coroutine, never the process
// (../shared/STYLE.md, "Errors").

#include <atomic>
#include <cstdint>
#include <exception>
#include <spdlog/spdlog.h>
#include <utility>

#include "net/asio.hpp"

namespace nines::net {

// How many coroutines an exception has ended in this process (nines_escaped_exceptions_total).
inline std::atomic<std::uint64_t>& escaped_exceptions() {
  static std::atomic<std::uint64_t> count{0};
  return count;
}

template <class Executor>
void spawn(const Executor& executor, awaitable<void> work, const char* what) {
  asio::co_spawn(executor, std::move(work), [what](const std::exception_ptr& escaped) {
    if (!escaped) {
      return;
    }
    escaped_exceptions().fetch_add(1, std::memory_order_relaxed);
    try {
      std::rethrow_exception(escaped);
    } catch (const std::exception& e) {
      spdlog::error("{} ended by an unexpected exception: {}", what, e.what());
    } catch (...) {
      spdlog::error("{} ended by an unexpected exception", what);
    }
  });
}

}  // namespace nines::net
