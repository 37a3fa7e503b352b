#pragma once
// The Asio and Beast vocabulary shared by src/net, src/gateway and src/tools. Every asynchronous
// operation is awaited with `use_nothrow`: errors come back as values, never as exceptions, on the
// data path (../shared/STYLE.md, "Errors").

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace nines::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

template <class T>
using awaitable = asio::awaitable<T>;

inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

// What a read or a write ends with: its error, and how many bytes it moved.
using io_result = std::tuple<error_code, std::size_t>;

// Waits for `d` on the current executor; returns false when cancelled.
awaitable<bool> sleep_for(std::chrono::steady_clock::duration d);

}  // namespace nines::net
