#pragma once
// A gateway (one worker, no probes, no outlier ejection, one attempt per request) in front of a
// scripted upstream, for the hostile suite. Each case talks to the gateway over raw sockets and
// then looks at what the upstream received.

#include <memory>
#include <string>

#include "hostile_harness.hpp"

namespace nines::hostile {

// The upstream's default answer: 200, naming the path it was asked for.
inline upstream_reply echo_target(const seen_request& r) { return {ok_response(r.target)}; }

struct hostile_env {
  // `extra_toml`: more sections (not [health], [outlier], [routes]); `retry`: the [retry] keys;
  // `upstream_keys`: more keys of the upstream's table.
  explicit hostile_env(const std::string& extra_toml = {},
                       scripted_upstream::script script = echo_target,
                       const std::string& retry = "max_attempts = 1\n",
                       const std::string& upstream_keys = {})
      : upstream(std::move(script)),
        gateway(test::start_gateway(
            "[health]\nenabled = false\n[outlier]\nenabled = false\n[retry]\n" + retry +
                "[routes]\npassthrough = [\"POST /v1/tokenize\"]\n" + extra_toml +
                "\n[[upstreams]]\nname = \"u0\"\nurl = \"" + upstream.url() + "/v1\"\n" +
                upstream_keys,
            {"--workers", "1", "--access-log", "off"})) {}

  unsigned short port() const { return gateway.port; }
  unsigned short admin_port() const { return gateway.admin_port; }

  scripted_upstream upstream;
  test::server gateway;
};

// "POST <target> HTTP/1.1" with Host, the given extra header lines (each ending in CRLF) and a
// Content-Length body.
inline std::string post(const std::string& target, const std::string& body,
                        const std::string& extra_headers = {}) {
  return "POST " + target + " HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n" +
         extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

inline std::string get(const std::string& target, const std::string& extra_headers = {}) {
  return "GET " + target + " HTTP/1.1\r\nHost: gw\r\n" + extra_headers + "\r\n";
}

inline const std::string json_body = R"({"model":"m","input":"x"})";

}  // namespace nines::hostile
