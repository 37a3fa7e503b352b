#include "gateway/journal_answer.hpp"

#include "core/http/openai_error.hpp"
#include "gateway/forwarder.hpp"

namespace nines::gateway {

using namespace net;
using steady = std::chrono::steady_clock;

awaitable<error_code> begin_journaled_stream(const core::journal_head& head, response_sink& client,
                                             worker_state& worker, obs::request_record& record,
                                             std::optional<std::chrono::milliseconds> heartbeat,
                                             steady::time_point start) {
  http::response<http::empty_body> header{http::status::ok, client.version()};
  apply_journal_head(head, header);
  if (record.cache == "shared") {
    header.set("x-request-id", record.id);  // this request's, not the one it shares with
  }
  header.erase("x-nines-heartbeat-ms");
  if (heartbeat) {
    header.set("x-nines-heartbeat-ms", std::to_string(heartbeat->count()));
  }
  record.status = head.status;
  record.ttfb_ms = std::chrono::duration<double, std::milli>(steady::now() - start).count();
  const auto ec = co_await client.begin_stream(std::move(header));
  if (!ec && heartbeat) {
    client.beat_while_idle(worker.executor, *heartbeat, ":\n\n");  // SSE comment
  }
  co_return ec;
}

awaitable<void> send_journaled_whole(const core::journal_head& head, std::string body,
                                     response_sink& client, obs::request_record& record) {
  http::response<http::string_body> res{http::status::ok, client.version()};
  apply_journal_head(head, res);
  if (record.cache == "shared") {
    res.set("x-request-id", record.id);
  }
  res.body() = std::move(body);
  record.status = head.status;
  co_await client.send(std::move(res));
}

awaitable<void> end_unserved(response_sink& client, obs::request_record& record, bool begun,
                             http::status status, std::string_view type, std::string_view code,
                             std::string_view detail) {
  // Views of literals: no temporary with a destructor crosses the co_await (docs/architecture.md).
  record.outcome = "failed";
  record.detail = std::string(detail);
  if (!begun) {
    auto res = json_error_response(client.version(), status, type, record.detail, code);
    record.status = static_cast<unsigned>(status);
    co_await client.send(std::move(res));
  } else {
    std::string error = core::openai_error_event("stream_incomplete", record.detail, code);
    co_await client.finish_stream(error);
  }
}

void take_journal_summary(obs::request_record& record, const core::journal_summary& summary) {
  record.outcome = summary.outcome.empty() ? "ok" : obs::known_outcome(summary.outcome);
  record.attempts = summary.attempts;
  record.resumes = summary.resumes;
  record.upstreams = summary.upstreams;
  record.served_by = summary.served_by;
  record.resume_log = summary.resume_log;
  record.detail = summary.detail;
}

}  // namespace nines::gateway
