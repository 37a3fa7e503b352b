#include "tls_check_run.hpp"

#include "harness.hpp"

namespace nines::test {

tls_check_run run_tls_check(unsigned short port, const std::vector<std::string>& args, bool json) {
  std::vector<std::string> argv{NINES_BINARY, "tls-check", "127.0.0.1:" + std::to_string(port)};
  argv.insert(argv.end(), args.begin(), args.end());
  if (json) {
    argv.push_back("--json");
  }
  process p(argv);
  tls_check_run run;
  run.code = p.wait_exit(milliseconds(30000)).value_or(-1);
  run.output = p.output();
  if (json) {
    boost::system::error_code ec;
    auto value = boost::json::parse(run.output, ec);
    if (!ec && value.is_object()) {
      run.report = std::move(value.as_object());
    }
  }
  return run;
}

std::set<std::string> problem_codes(const tls_check_run& run) {
  std::set<std::string> codes;
  if (const auto* problems = run.report.if_contains("problems"); problems && problems->is_array()) {
    for (const auto& p : problems->as_array()) {
      codes.insert(std::string(p.at("code").as_string()));
    }
  }
  return codes;
}

std::string problem_detail(const tls_check_run& run, const std::string& code) {
  if (const auto* problems = run.report.if_contains("problems"); problems && problems->is_array()) {
    for (const auto& p : problems->as_array()) {
      if (p.at("code").as_string() == code) {
        return std::string(p.at("detail").as_string());
      }
    }
  }
  return {};
}

}  // namespace nines::test
