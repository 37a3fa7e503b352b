#pragma once
// `nines status URL`: the gateway's GET /status as a table (the same JSON the dashboard reads).
// Exit code 0 when the gateway is ready, 1 when it is not or cannot be reached, 2 on bad usage.

#include <string>

namespace nines::tools {

int run_status(const std::string& url, bool json);

}  // namespace nines::tools
