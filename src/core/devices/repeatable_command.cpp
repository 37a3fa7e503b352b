#include "core/devices/repeatable_command.hpp"

#include <array>
#include <string>

namespace nines::core {

namespace {

// The first words of CMD, quotes taken out, and how many there are; false when a byte outside
// single quotes could start another command or a substitution.
bool plain_words(std::string_view command, std::array<std::string, 3>& first, std::size_t& words) {
  std::size_t word = 0;
  bool in_word = false;
  bool quoted = false;
  for (const char c : command) {
    if (quoted) {
      if (c == '\'') {
        quoted = false;
      } else if (word < first.size()) {
        first[word].push_back(c);
      }
      continue;
    }
    if (c == ' ' || c == '\t') {
      word += in_word ? 1 : 0;
      in_word = false;
      continue;
    }
    if (std::string_view(";&|<>`$()\"\\\n\r").find(c) != std::string_view::npos ||
        static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
      return false;
    }
    in_word = true;
    if (c == '\'') {
      quoted = true;
    } else if (word < first.size()) {
      first[word].push_back(c);
    }
  }
  words = word + (in_word ? 1 : 0);
  return !quoted;
}

}  // namespace

bool repeatable_command(std::string_view service) {
  if (service == "sync:") {
    return true;
  }
  std::string_view command;
  if (service.starts_with("exec:")) {
    command = service.substr(5);
  } else if (service.starts_with("shell:") || service.starts_with("shell,")) {
    const auto colon = service.find(':');
    command = service.substr(colon + 1);
  } else {
    return false;
  }
  std::array<std::string, 3> w;
  std::size_t words = 0;
  if (!plain_words(command, w, words) || words == 0) {
    return false;  // an interactive shell, or more than one command
  }
  static constexpr std::array<std::string_view, 6> reads{"echo", "screencap", "getprop",
                                                         "cat",  "ls",        "stat"};
  for (const auto r : reads) {
    if (w[0] == r) {
      return true;
    }
  }
  // dumpsys reads, except where a service's arguments act (deviceidle step, batterystats
  // --reset, battery set ...): alone, or naming one service that only reports.
  static constexpr std::array<std::string_view, 7> reports{
      "window", "activity", "display", "SurfaceFlinger", "input", "power", "meminfo"};
  if (w[0] == "dumpsys") {
    if (words == 1) {
      return true;
    }
    for (const auto r : reports) {
      if (words == 2 && w[1] == r) {
        return true;
      }
    }
    return false;
  }
  return w[0] == "uiautomator" && w[1] == "dump" && words <= 3;
}

}  // namespace nines::core
