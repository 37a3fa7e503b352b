// A streamed answer on its way to the client: events are parsed as they arrive (WHATWG SSE rules,
// bounded), checked by the route's dialect (core/stream/stream_dialect.hpp: chat chunks and
// [DONE]; typed Responses and messages events and their final event; a passthrough stream's bytes
// as they come), given our own ids, and written to the client one read at a time, each write
// awaited before the next read (backpressure). Tool-call parts and Responses function calls are
// held back until the call is complete. A continued Responses stream arrives as chat chunks and
// leaves as events of the client's response (core/stream/responses_stream.hpp). A break is
// reported to the attempt loop, which resumes the stream elsewhere or ends it explicitly.

#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/json/json_text.hpp"
#include "core/http/sse_parser.hpp"
#include "core/stream/stream_journal.hpp"
#include "gateway/http_headers.hpp"
#include "core/cache/cache_control.hpp"
#include "gateway/request_forwarder.hpp"

namespace nines::gateway {

using namespace net;
using core::attempt_failure;
using std::chrono::milliseconds;
namespace json = boost::json;

namespace {

// What one read hands the relay: events are a few hundred bytes, and what arrived beyond this
// stays in the connection's buffer for the next round (no syscall). Kept small: it lives in the
// coroutine frame of every running stream.
constexpr std::size_t read_chunk_bytes = 4 * 1024;

template <class Rep, class Period>
milliseconds clamp_ms(std::chrono::duration<Rep, Period> d) {
  return std::max(milliseconds(1), std::chrono::duration_cast<milliseconds>(d));
}

double ms_between(steady::time_point from, steady::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

}  // namespace

void request_forwarder::append_event(std::string& out, core::sse_event& event,
                                     stream_state& st) const {
  event.id = core::format_event_id(stream_key_, ++st.events_sent);
  core::append_sse_event(out, event);
}

void request_forwarder::append_data_event(std::string& out, std::string data,
                                          stream_state& st) const {
  core::sse_event e;
  e.data = std::move(data);
  append_event(out, e, st);
}

void request_forwarder::append_events(std::string& out, std::vector<core::sse_event>& events,
                                      stream_state& st) const {
  for (auto& e : events) {
    append_event(out, e, st);
  }
  events.clear();
}

void request_forwarder::release_held(std::string& out, stream_state& st) const {
  const bool responses = kind_.dialect == core::stream_dialect::responses;
  for (auto& data : st.held) {
    if (responses) {
      // A Responses event: recorded as the client now receives it, under its own event type.
      json::error_code ec;
      auto parsed = json::parse(data, ec);
      core::sse_event e;
      if (const auto* obj = ec ? nullptr : parsed.if_object()) {
        st.responses.record(*obj, &st.progress);
        if (const auto* t = obj->if_contains("type"); t && t->is_string()) {
          e.type = std::string(t->get_string());
        }
      }
      e.data = std::move(data);
      append_event(out, e, st);
      continue;
    }
    append_data_event(out, std::move(data), st);
  }
  if (!st.held.empty() && !st.progress.unsupported) {
    st.progress.unsupported = true;  // the client has tool-call parts now
    st.progress.unsupported_why = "tool-call parts reached the client";
  }
  st.held.clear();
  st.held_bytes = 0;
}

void request_forwarder::note_response_usage(const json::object& final_event) {
  // The Responses API's usage, on its final event: for the access log and the key's token limit.
  const auto* response = final_event.if_contains("response");
  const auto* usage = response && response->is_object() ? response->get_object().if_contains("usage")
                                                        : nullptr;
  const auto* total = usage && usage->is_object() ? usage->get_object().if_contains("total_tokens")
                                                  : nullptr;
  json::error_code ec;
  const auto tokens = total ? total->to_number<std::uint64_t>(ec) : 0;
  if (total == nullptr || ec || tokens >= (std::uint64_t{1} << 40)) {
    return;
  }
  record_.usage_tokens = tokens;
  if (kind_.ticket != nullptr) {
    kind_.ticket->settle_tokens(tokens, steady::now());
  }
}

bool request_forwarder::seed_from_journal(const stream_takeover& t) {
  auto& st = committed_;
  const auto refuse = [&](std::string why) {
    if (!st.progress.unsupported) {
      st.progress.unsupported = true;
      st.progress.unsupported_why = std::move(why);
    }
  };
  core::sse_parser sse(cfg_.limits.max_event_bytes);
  std::vector<core::sse_event> events;
  if (sse.feed(t.events, events) != core::sse_error::none) {
    refuse("a journaled event could not be read back");
  }
  const auto dialect = kind_.dialect;
  bool whole = false;
  for (auto& e : events) {
    if (dialect == core::stream_dialect::openai_chunks) {
      if (e.data == "[DONE]") {
        whole = true;
        continue;
      }
      const auto chunk = core::read_stream_chunk(e.data);
      if (!chunk.valid || chunk.is_error) {
        refuse("a journaled event that is not a chunk");
        continue;
      }
      st.progress.record(chunk);
    } else if (dialect == core::stream_dialect::responses) {
      json::error_code ec;
      auto parsed = json::parse(e.data, ec);
      const auto* obj = ec ? nullptr : parsed.if_object();
      if (obj == nullptr) {
        refuse("a journaled event that is not a Responses event");
        continue;
      }
      st.responses.record(*obj, &st.progress);
      whole = whole || core::is_terminal_event(dialect, core::read_typed_event(e.data).type);
    }
  }
  st.events_sent = t.last;
  client_committed_ = true;
  record_.status = t.status;
  last_client_write_ = steady::now();
  return !whole;
}

awaitable<attempt_result> request_forwarder::relay_stream(upstream_connection& conn,
                                                          upstream_response& response,
                                                          std::size_t upstream, bool& reusable,
                                                          attempt_context& ctx) {
  attempt_result result;
  auto& st = ctx.st;
  core::sse_parser sse(cfg_.limits.max_event_bytes);
  std::vector<core::sse_event> events;
  std::string out;
  char buf[read_chunk_bytes];
  phase state = phase::awaiting_first_byte;
  bool saw_done = false;
  attempt_failure broke = attempt_failure::none;
  core::stream_break cause = core::stream_break::reset;
  std::string why;
  const auto request_end = start_ + cfg_.timeouts.request;
  const auto dialect = kind_.dialect;
  // A Responses stream is continued through chat (core/stream/responses_stream.hpp): the
  // continuation's chunks become Responses events of the client's response.
  const bool synthesize = continuing_ && dialect == core::stream_dialect::responses;
  const bool chunks = dialect == core::stream_dialect::openai_chunks || synthesize;
  const bool typed = !synthesize && (dialect == core::stream_dialect::responses ||
                                     dialect == core::stream_dialect::messages);
  const bool responses = !synthesize && dialect == core::stream_dialect::responses;
  const bool verbatim = dialect == core::stream_dialect::opaque;
  // An uplink that is a nines gateway beats on an idle stream when asked (and says so in its
  // head): then silence longer than three beats is a silent cut, not a slow model.
  const auto& link = cfg_.upstreams[upstream];
  const bool beating = link.heartbeat.count() > 0 &&
                       response.head()["x-nines-heartbeat-ms"] ==
                           std::to_string(link.heartbeat.count());
  const auto stream_idle = beating ? std::min<steady::duration>(cfg_.timeouts.stream_idle,
                                                                3 * link.heartbeat)
                                   : steady::duration(cfg_.timeouts.stream_idle);
  std::vector<core::sse_event> made;  // Responses events made from one chat chunk
  // The continuation went where the client's response cannot follow: what it made is not sent,
  // and the stream ends explicitly (begin_resume sees the response as not continuable).
  const auto cannot_follow = [&] {
    if (!st.responses.unsupported()) {
      return false;
    }
    made.clear();
    broke = attempt_failure::bad_response;
    cause = core::stream_break::malformed;
    why = "the continuation cannot be written into the response: " +
          st.responses.unsupported_why();
    return true;
  };

  while (state == phase::awaiting_first_byte || state == phase::relaying) {
    const auto now = steady::now();
    const auto limit = state == phase::awaiting_first_byte
                           ? std::min<steady::duration>(cfg_.timeouts.first_byte, deadline_ - now)
                           : std::min<steady::duration>(stream_idle, request_end - now);
    conn.expires_after(clamp_ms(limit));
    std::size_t got = 0;
    error_code ec;
    if (!response.done()) {
      ec = co_await response.read_some(buf, sizeof buf, got);
    }
    if (ctx.cancelled()) {
      stop_cancelled(result, ctx);
      co_return result;
    }
    if (verbatim) {
      // A protocol nines does not know: its bytes as they came; only the transport can break it.
      out.append(buf, got);
      // An empty body is no answer: a failed attempt, as a stream without events is.
      saw_done = !ec && response.done() && (client_committed_ || !out.empty());
    } else if (got > 0 &&
               sse.feed(std::string_view(buf, got), events) != core::sse_error::none) {
      broke = attempt_failure::bad_response;
      cause = core::stream_break::too_large;
      why = "an event exceeded the limit of " + std::to_string(cfg_.limits.max_event_bytes) +
            " bytes";
    }
    for (auto& event : events) {
      if (saw_done || broke != attempt_failure::none) {
        break;
      }
      if (chunks && event.data == "[DONE]") {
        saw_done = true;
        if (synthesize) {
          st.responses.complete(st.progress, made);  // the client's response.completed
          if (cannot_follow()) {
            saw_done = false;
            break;
          }
          append_events(out, made, st);
          continue;
        }
        release_held(out, st);
        append_event(out, event, st);
        continue;
      }
      if (typed) {
        const auto typed_event = core::read_typed_event(event.data);
        if (!typed_event.valid) {
          broke = attempt_failure::bad_response;
          cause = core::stream_break::malformed;
          why = "malformed event from upstream";
          break;
        }
        if (typed_event.type == "error") {
          broke = attempt_failure::bad_response;
          cause = core::stream_break::error_event;
          why = "upstream sent an error event: " +
                std::string(core::utf8_prefix(event.data, 512));
          break;
        }
        saw_done = core::is_terminal_event(dialect, typed_event.type);
        if (responses) {
          // Followed as the client receives it, so that a break can be continued; a function
          // call is held back until it is complete.
          json::error_code json_ec;
          auto parsed = json::parse(event.data, json_ec);
          const auto* obj = json_ec ? nullptr : parsed.if_object();
          if (obj == nullptr) {
            broke = attempt_failure::bad_response;
            cause = core::stream_break::malformed;
            why = "malformed event from upstream";
            break;
          }
          if (!saw_done && st.responses.hold(*obj)) {
            st.held_bytes += event.data.size();
            if (st.held_bytes <= cfg_.limits.max_event_bytes) {
              st.held.push_back(std::move(event.data));
              continue;
            }
            st.responses.forget_held_call();  // too large to hold: passed on as it comes
          }
          release_held(out, st);
          st.responses.record(*obj, &st.progress);
          if (saw_done) {
            note_response_usage(*obj);
          }
        }
      }
      if (chunks) {
        auto chunk = core::read_stream_chunk(event.data);
        if (!chunk.valid) {
          broke = attempt_failure::bad_response;
          cause = core::stream_break::malformed;
          why = "malformed event from upstream";
          break;
        }
        if (chunk.total_tokens) {
          record_.usage_tokens = chunk.total_tokens;  // the usage chunk (stream_options)
          if (kind_.ticket != nullptr) {
            kind_.ticket->settle_tokens(*chunk.total_tokens, steady::now());
          }
        }
        if (chunk.is_error) {
          broke = attempt_failure::bad_response;
          cause = core::stream_break::error_event;
          why = "upstream sent an error event: " +
                std::string(core::utf8_prefix(event.data, 512));
          break;
        }
        if (continuing_) {
          auto rewritten = core::rewrite_continuation_chunk(event.data, st.progress);
          if (!rewritten) {
            continue;  // the continuation's own role chunk: the client had one already
          }
          event.data = std::move(*rewritten);
          chunk = core::read_stream_chunk(event.data);  // as the client will read it
        }
        if (synthesize) {
          // Tool calls are kept whole in st.responses and become items at the end.
          auto text_only = chunk;
          text_only.tool_calls = false;
          st.progress.record(text_only);
          st.responses.continue_with(event.data, chunk, made);
          if (cannot_follow()) {
            break;
          }
          append_events(out, made, st);
          continue;
        }
        if (chunk.tool_calls && !chunk.finish_reason) {
          st.held_bytes += event.data.size();
          if (st.held_bytes <= cfg_.limits.max_event_bytes) {
            st.held.push_back(std::move(event.data));
            continue;
          }
          // Too large to hold back: pass it on; from here a break cannot be continued.
        }
        release_held(out, st);
        st.progress.record(chunk);
      }
      append_event(out, event, st);  // our id: the upstream's means nothing to our client
    }
    events.clear();
    if (!out.empty()) {
      if (state == phase::awaiting_first_byte && !ctx.claim()) {
        stop_cancelled(result, ctx);  // a hedge: the other attempt has the client
        co_return result;
      }
      note_delivery(upstream, ctx);
      if (!client_committed_) {
        http::response<http::empty_body> header{response.head().result(), 11};
        copy_response_headers(response.head(), header.base());
        // An event stream is never stored by a client's cache; an upstream's no-store stays said
        // (an answer cache in front of the client reads it).
        const bool no_store = core::says_no_store(response.head()[http::field::cache_control]);
        header.set(http::field::cache_control, no_store ? "no-cache, no-store" : "no-cache");
        header.set("x-request-id", record_.id);
        // Promised only where it can be kept (a journaled stream's reader beats for its client).
        const bool beats = kind_.heartbeat && !verbatim && client_.can_beat();
        if (beats) {
          header.set("x-nines-heartbeat-ms", std::to_string(kind_.heartbeat->count()));
        }
        record_.status = response.status();
        client_committed_ = true;
        if (co_await client_.begin_stream(std::move(header))) {
          state = phase::failed;
          break;
        }
        if (beats) {
          client_.beat_while_idle(worker_.executor, *kind_.heartbeat, ":\n\n");  // SSE comment
        }
      }
      const auto written_at = steady::now();
      if (state == phase::relaying) {
        // Between two writes of one attempt; the gap across a resume is measured below.
        inter_token().observe(worker_.probe.worker(),
                              std::chrono::duration<double>(written_at - last_client_write_).count());
      }
      state = phase::relaying;
      if (gap_pending_) {
        // The first event of a continuation: the client waited this long across the resume.
        gap_pending_ = false;
        const double gap_ms = ms_between(last_client_write_, written_at);
        record_.resume_log += fmt::format(",\"to\":\"{}\",\"gap_ms\":{:.3f}}}",
                                          cfg_.upstreams[upstream].name, gap_ms);
        worker_.probe.stream_resumed(pending_cause_, pending_from_, cfg_.upstreams[upstream].name,
                                     st.progress.carried_tokens, gap_ms / 1000.0);
        worker_.shared->resumes.fetch_add(1, std::memory_order_relaxed);
      }
      last_client_write_ = written_at;
      if (saw_done && response.done()) {
        // The usual end: the last events, [DONE] and the upstream's last chunk came together.
        state = co_await client_.finish_stream(out) ? phase::failed : phase::finished;
        break;
      }
      if (co_await client_.write_chunk(out)) {
        state = phase::failed;
        break;
      }
      out.clear();
    }
    if (saw_done) {
      state = phase::finished;
      break;
    }
    if (broke == attempt_failure::none) {
      if (ec == beast::error::timeout) {
        broke = state == phase::awaiting_first_byte ? attempt_failure::first_byte_timeout
                                                    : attempt_failure::reset;
        cause = core::stream_break::stall;
        why = state == phase::awaiting_first_byte
                  ? "no event in time"
                  : fmt::format("stalled: no data for {} ms",
                                std::chrono::duration_cast<milliseconds>(stream_idle).count());
      } else if (ec == upstream_wire_error::bad_message) {
        broke = attempt_failure::bad_response;
        cause = core::stream_break::malformed;
        why = "malformed response body: " + response.problem();
      } else if (ec) {
        broke = attempt_failure::reset;
        cause = core::stream_break::reset;
        why = "connection broke: " + ec.message();
      } else if (response.done()) {
        broke = attempt_failure::reset;
        cause = core::stream_break::closed;
        why = chunks ? "stream ended without [DONE]" : "stream ended without its final event";
      }
    }
    if (broke != attempt_failure::none) {
      break;
    }
  }

  if (client_.failed()) {
    // The client went away: stop the upstream generation by closing its connection.
    reusable = false;
    record_.outcome = "client_closed";
    result.end = phase::failed;
    co_return result;
  }
  if (state == phase::finished) {
    result.end = phase::finished;
    if (client_.finished()) {
      co_return result;
    }
    // Read the end of the upstream body (normally already there) so the connection can be reused.
    conn.expires_after(milliseconds(1000));
    while (!response.done()) {
      std::size_t got = 0;
      if (co_await response.read_some(buf, sizeof buf, got)) {
        reusable = false;
        break;
      }
    }
    co_await client_.end_stream();
    co_return result;
  }
  // Broken. Before this upstream sent anything, it is a failed attempt like any other; after,
  // the caller resumes the stream elsewhere or ends it explicitly.
  reusable = false;
  result.end = state;
  result.failure = broke;
  result.cause = cause;
  result.detail = fmt::format("{}: {}", cfg_.upstreams[upstream].name, why);
  co_return result;
}

}  // namespace nines::gateway
