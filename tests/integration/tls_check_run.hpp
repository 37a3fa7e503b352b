#pragma once
// Runs `nines tls-check 127.0.0.1:PORT` and reads what it printed.

#include <boost/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace nines::test {

struct tls_check_run {
  int code = -1;
  std::string output;          // stdout and stderr
  boost::json::object report;  // the --json object; empty when the output is not one
};

tls_check_run run_tls_check(unsigned short port, const std::vector<std::string>& args,
                            bool json = true);

std::set<std::string> problem_codes(const tls_check_run& run);
// The detail of the problem `code`; "" when it is absent.
std::string problem_detail(const tls_check_run& run, const std::string& code);

}  // namespace nines::test
