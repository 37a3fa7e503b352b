#pragma once
// `nines chaos`: a TCP fault proxy in the manner of Toxiproxy. Each proxy listens on one address
// and forwards every connection to its upstream through the toxics in effect (core/tools/chaos_toxic.hpp:
// latency with jitter, bandwidth, slow_close, timeout (a blackhole), reset_peer, slicer,
// limit_data), each on one direction and with a probability. Several proxies run in one process;
// all of them are changed at run time through a small HTTP API, Toxiproxy's:
//
//   GET    /proxies                         every proxy, by name
//   POST   /proxies                         {"name","listen","upstream","enabled"}: create
//   GET    /proxies/NAME                    one proxy, its toxics and connection counts
//   POST   /proxies/NAME                    {"enabled": false} disables (closes the listener and
//                                           every connection), true enables again
//   DELETE /proxies/NAME
//   GET    /proxies/NAME/toxics
//   POST   /proxies/NAME/toxics             a toxic in Toxiproxy's JSON form: add
//   GET    /proxies/NAME/toxics/TOXIC
//   POST   /proxies/NAME/toxics/TOXIC       the fields to change
//   DELETE /proxies/NAME/toxics/TOXIC
//   POST   /reset                           every proxy enabled, every toxic removed
//
// and from the command line with `nines chaos-ctl`. A toxic added or changed acts on the
// connections already open as well as on new ones. Everything runs on one thread.

#include <cstdint>
#include <string>
#include <vector>

namespace nines::tools {

struct chaos_options {
  std::string api = "127.0.0.1:8474";  // the control API's address (port 0: any)
  // "name=gpu-a,listen=127.0.0.1:19001,upstream=127.0.0.1:9001[,enabled=false]"
  std::vector<std::string> proxies;
  // "proxy=gpu-a,type=latency,stream=downstream,toxicity=1,latency=100,jitter=10[,name=...]"
  std::vector<std::string> toxics;
  std::uint64_t seed = 1;  // for toxicity draws, jitter and slice sizes
};

// Runs until SIGTERM/SIGINT. Returns the exit code; throws on startup failures.
int run_chaos(const chaos_options& options);

struct chaos_ctl_options {
  std::string api = "http://127.0.0.1:8474";
  std::string command;  // list, add-proxy, remove-proxy, enable, disable, add-toxic,
                        // update-toxic, remove-toxic, reset
  std::vector<std::string> args;
};

// One API call; prints the answer. 0 on success, 1 when the API refused, 2 on bad usage.
int run_chaos_ctl(const chaos_ctl_options& options);

}  // namespace nines::tools
