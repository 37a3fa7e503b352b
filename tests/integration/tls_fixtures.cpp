#include "tls_fixtures.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace nines::test {

std::string tls_fixture_dir() {
  static const std::string dir = [] {
    static const std::string d = "/tmp/nines-tlsfx-" + std::to_string(::getpid());
    std::atexit([] { std::filesystem::remove_all(d); });
    process gen(
        {"/bin/bash", std::string(NINES_SOURCE_DIR) + "/tests/integration/tls_fixtures.sh", d});
    const auto code = gen.wait_exit(milliseconds(60000));
    if (code != 0) {
      throw std::runtime_error("tls_fixtures.sh failed: " + gen.output());
    }
    return d;
  }();
  return dir;
}

std::string tls_fixture(const std::string& name) {
  return tls_fixture_dir() + "/" + name;
}

openssl_server start_openssl_server(const std::string& cert, const std::string& key,
                                    const std::string& chain,
                                    const std::vector<std::string>& extra) {
  std::vector<std::string> args{"/usr/bin/openssl", "s_server", "-accept",
                                "127.0.0.1:0",      "-www",     "-cert",
                                tls_fixture(cert),  "-key",     tls_fixture(key)};
  if (!chain.empty()) {
    args.insert(args.end(), {"-cert_chain", tls_fixture(chain)});
  }
  args.insert(args.end(), extra.begin(), extra.end());
  openssl_server s;
  s.proc = std::make_unique<process>(args);
  const auto line = s.proc->wait_for_output("ACCEPT 127.0.0.1:");
  if (!line) {
    throw std::runtime_error("openssl s_server did not start: " + s.proc->output());
  }
  s.port = static_cast<unsigned short>(std::stoi(line->substr(line->rfind(':') + 1)));
  return s;
}

}  // namespace nines::test
