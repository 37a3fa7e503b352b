#pragma once
// An io_context run by a thread of its own, for the stand-in servers of the tests (the fake adb
// server, the fake adbd): started with the object, stopped and joined with it; on_io() runs a
// function on that thread and waits for it.

#include <boost/asio/post.hpp>
#include <future>
#include <thread>

#include "net/asio.hpp"

namespace nines::tools {

class io_thread {
 public:
  explicit io_thread(net::asio::io_context& io)
      : io_(io), thread_([this] {
          auto guard = net::asio::make_work_guard(io_);
          io_.run();
        }) {}
  ~io_thread() {
    io_.stop();
    thread_.join();
  }
  io_thread(const io_thread&) = delete;
  io_thread& operator=(const io_thread&) = delete;

  template <class F>
  void on_io(F f) {
    std::promise<void> done;
    net::asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }

 private:
  net::asio::io_context& io_;
  std::thread thread_;
};

}  // namespace nines::tools
