#pragma once
// The operational log (start, stop, ejections, tier switches, reloads, alerts) as one JSON object
// per line, for log shippers: {"time": "...Z", "level": "warning", "logger": "nines", "message":
// "..."}. The access log has its own lines (access_log.hpp). `gateway.log_format = "json"`.

#include <memory>
#include <spdlog/formatter.h>

namespace nines::obs {

std::unique_ptr<spdlog::formatter> json_log_formatter();

}  // namespace nines::obs
