#include "core/devices/repeatable_command.hpp"

#include <array>
#include <string>

namespace nines::core {

namespace {

// The words of CMD outside single quotes, quotes taken out; false when a byte outside them could
// start another command or a substitution.
bool plain_words(std::string_view command, std::array<std::string, 2>& first_two) {
  std::size_t word = 0;
  bool in_word = false;
  bool quoted = false;
  for (const char c : command) {
    if (quoted) {
      if (c == '\'') {
        quoted = false;
      } else if (word < first_two.size()) {
        first_two[word].push_back(c);
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
    } else if (word < first_two.size()) {
      first_two[word].push_back(c);
    }
  }
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
  std::array<std::string, 2> w;
  if (!plain_words(command, w) || w[0].empty()) {
    return false;  // an interactive shell, or more than one command
  }
  static constexpr std::array<std::string_view, 8> reads{"echo", "screencap", "getprop", "dumpsys",
                                                         "cat",  "ls",        "stat",    "rm"};
  for (const auto r : reads) {
    if (w[0] == r) {
      return true;
    }
  }
  return (w[0] == "wm" && w[1] == "size") || (w[0] == "uiautomator" && w[1] == "dump");
}

}  // namespace nines::core
