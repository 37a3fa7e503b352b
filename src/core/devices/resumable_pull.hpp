#pragma once
// A pull (sync RECV) that can go on after its stream broke: the ADB proxy passes adb's answer to
// the agent piece by piece, and when the phone's transport goes away half-way (its link blinked
// and the keeper dropped the stale transport) it asks a new transport for the same file and
// passes on only what comes after the bytes the agent already has. The agent sees one unbroken
// answer: the same DATA pieces, then DONE.
//
// Only whole pieces go to the agent, so a break leaves it between two pieces, never inside one.
// After a restart, the first delivered() bytes of the new answer are the ones the agent has; they
// are not passed again but checked: their SHA-256 must equal that of what was passed. A file that
// changed between the two reads (a late screencap rewrote it), or came back shorter, ends the pull
// with a sync FAIL that says so: the agent gets a refusal, never a picture made of two.
//
// Pure: no I/O, no clock. Keeps no bytes of its own.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/codec/sha256_stream.hpp"

namespace nines::core {

class resumable_pull {
 public:
  enum class step {
    more,    // the answer goes on: feed what comes next
    done,    // DONE or adb's FAIL passed on: the RECV is over
    refused  // a FAIL of the proxy's own was appended (the answer was not sync, or the file
             // changed): the agent's connection ends after it
  };

  // Takes the whole pieces at the front of `from_adb` (adb's answer as it came; a piece not yet
  // whole stays there, as do the bytes after the answer's end); appends what the agent gets to
  // `to_agent`.
  step take(std::string& from_adb, std::string& to_agent);

  // The stream broke: what comes next is a new answer to the same RECV, from its first byte (the
  // caller drops what it holds of the old one).
  void restart();

  // Bytes of the file the agent has.
  std::uint64_t delivered() const { return delivered_; }
  // Times restart() was called.
  std::uint32_t restarts() const { return restarts_; }
  // Why the pull was refused, once it was.
  std::string_view problem() const { return problem_; }

 private:
  step refuse(std::string message, std::string& to_agent);
  // One DATA piece's bytes: those the agent has are checked, the rest passed on.
  bool take_data(std::string_view data, std::string_view whole_piece, std::string& to_agent);

  std::uint64_t delivered_ = 0;  // file bytes passed to the agent
  std::uint64_t skip_left_ = 0;  // file bytes of the new answer the agent already has
  sha256_stream passed_;         // over the delivered bytes
  sha256_stream reread_;         // over the new answer's first delivered() bytes
  std::uint32_t restarts_ = 0;
  bool over_ = false;
  std::string problem_;
};

}  // namespace nines::core
