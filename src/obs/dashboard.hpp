#pragma once
// The SLA dashboard page (GET /dashboard): one self-contained HTML document, built into the
// binary from src/obs/dashboard/ and uPlot by cmake/embed_dashboard.cmake. It reads /status.

#include <string_view>

namespace nines::obs {

std::string_view dashboard_page();

}  // namespace nines::obs
