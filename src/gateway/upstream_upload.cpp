// An attempt's body sent as a tus upload before its request (edge/upload_sender.hpp): on an
// uplink whose upload_threshold_bytes the body passes, the request then names the upload.

#include <algorithm>

#include "edge/upload_sender.hpp"
#include "gateway/request_forwarder.hpp"
#include "net/http_wire.hpp"

namespace nines::gateway {

using namespace net;
using std::chrono::milliseconds;

bool request_forwarder::wants_upload(std::size_t upstream) const {
  const auto threshold = cfg_.upstreams[upstream].upload_threshold;
  return threshold > 0 && body_.size() > threshold && !continuing_ && kind_.openai_json &&
         req_.method() == http::verb::post && !upload_.busy &&
         gen_->live[upstream].no_uploads_until.load(std::memory_order_relaxed) <=
             steady::now().time_since_epoch().count();
}

awaitable<request_forwarder::upload_step> request_forwarder::upload_body_first(
    upstream_connection& conn, std::size_t upstream, const std::string* secret,
    bool may_reconnect, std::string& head) {
  const auto& u = cfg_.upstreams[upstream];
  std::string host(u.host);
  if (u.port != (u.tls ? 443 : 80)) {
    host.push_back(':');
    append_decimal(host, u.port);
  }
  // Each exchange within the first-byte time, and within what is left of the request's deadline.
  const auto left = std::chrono::duration_cast<milliseconds>(deadline_ - steady::now());
  edge::upload_exchange how{upstream, u.base_path, host, secret, record_.id,
                            std::clamp(left, milliseconds(1),
                                       std::max(milliseconds(1), cfg_.timeouts.first_byte))};
  // Silence while the body goes out: four missed heartbeats (1 s at the edge's 250 ms).
  how.stall = u.heartbeat.count() > 0 ? std::max(milliseconds(1000), 4 * u.heartbeat)
                                      : milliseconds(5000);
  upload_.busy = true;
  const auto up = co_await edge::send_as_upload(conn, how, upload_, body_);
  upload_.busy = false;
  const std::string_view how_it_went = up.result == edge::upload_result::failed        ? "failed"
                                       : up.result == edge::upload_result::inline_body ? "inline"
                                       : up.resumed                                    ? "resumed"
                                                                                       : "ready";
  worker_.probe.edge_upload(how_it_went, up.bytes_sent, up.bytes_resent);
  upload_step step;
  if (up.result == edge::upload_result::failed) {
    const bool gone = up.error == asio::error::eof || up.error == asio::error::connection_reset ||
                      up.error == asio::error::broken_pipe;
    if (may_reconnect && gone && up.bytes_sent == 0) {
      step.next = upload_step::then::reconnect;
      co_return step;
    }
    step.next = upload_step::then::fail;
    step.failure = up.error == beast::error::timeout ? core::attempt_failure::first_byte_timeout
                                                      : core::attempt_failure::reset;
    step.detail = up.detail;
    co_return step;
  }
  if (up.result == edge::upload_result::inline_body) {
    if (up.remember_refusal) {  // it takes no uploads: bodies go inline for a while
      gen_->live[upstream].no_uploads_until.store(
          (steady::now() + std::chrono::minutes(5)).time_since_epoch().count(),
          std::memory_order_relaxed);
    }
    co_return step;  // send_body
  }
  head.clear();
  append_upstream_request_head(head, upstream, secret, upload_.reference());
  step.next = upload_step::then::send_named;
  co_return step;
}

}  // namespace nines::gateway
