#pragma once
// Writing a journaled answer to its client, as the two readers of a journal do: this replica's
// (gateway/journal_relay.cpp) and the shared one in Redis (gateway/journal_store_relay.cpp).

#include <chrono>
#include <optional>
#include <string_view>

#include "core/stream/stream_journal.hpp"
#include "gateway/worker.hpp"
#include "net/http_server.hpp"
#include "obs/access_log.hpp"

namespace nines::gateway {

template <class Body>
void apply_journal_head(const core::journal_head& head, net::http::response<Body>& res) {
  res.result(head.status);
  for (const auto& [name, value] : head.fields) {
    res.insert(name, value);
  }
}

// Starts the client's stream with a journaled head, with this reader's own heartbeats (whatever
// the request that started the generation asked). The error of begin_stream.
net::awaitable<net::error_code> begin_journaled_stream(
    const core::journal_head& head, net::response_sink& client, worker_state& worker,
    obs::request_record& record, std::optional<std::chrono::milliseconds> heartbeat,
    std::chrono::steady_clock::time_point start);

// Sends a whole journaled answer.
net::awaitable<void> send_journaled_whole(const core::journal_head& head, std::string body,
                                          net::response_sink& client, obs::request_record& record);

// Ends a journaled answer that cannot be completed: an OpenAI-shaped error response when nothing
// was sent yet (`begun` false), else the stream's explicit error event. `type`, `code` and
// `detail` must outlive the call (literals).
net::awaitable<void> end_unserved(net::response_sink& client, obs::request_record& record, bool begun,
                                  net::http::status status, std::string_view type,
                                  std::string_view code, std::string_view detail);

// What the generation did, for this client's access-log line (when it read to the end).
void take_journal_summary(obs::request_record& record, const core::journal_summary& summary);

}  // namespace nines::gateway
