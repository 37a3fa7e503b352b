#pragma once
// A small blocking HTTP/1.1 client for the command-line tools (chaos-ctl, status, the scenario
// runner) and the integration tests: one request, one answer, on a fresh connection. Never
// throws: a connection failure is a result with status 0 and `error` set.

#include <chrono>
#include <map>
#include <string>

namespace nines::tools {

struct http_result {
  unsigned status = 0;                         // 0: no answer (see error)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool complete = false;  // the message framing completed
  std::string error;
};

http_result http_call(const std::string& host, unsigned short port, const std::string& method,
                      const std::string& target, const std::string& body = {},
                      const std::map<std::string, std::string>& headers = {},
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(60000));

// The same, from a base URL "http://host:port" and a path.
http_result http_call_url(const std::string& base_url, const std::string& method,
                          const std::string& path, const std::string& body = {});

}  // namespace nines::tools
