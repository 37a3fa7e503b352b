#pragma once
// The faults `nines chaos` puts on a TCP link, in the manner of Toxiproxy, as pure decisions: which
// toxics apply to a connection (each with its probability, `toxicity`), and what happens to one
// chunk of bytes read from one side before it is written to the other (delayed, split into delayed
// slices, paced to a bandwidth, cut at a byte limit, or dropped). Timers that act on a whole
// connection (reset_peer, timeout's close, slow_close) are carried out by src/tools/chaos.cpp with
// the durations given here.
//
// Directions follow Toxiproxy: `upstream` is client → server, `downstream` is server → client.
// The JSON form is Toxiproxy's: {"name", "type", "stream", "toxicity", "attributes": {...}}.

#include <boost/json/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/random.hpp"

namespace nines::core {

enum class toxic_type { latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data };
enum class toxic_stream { upstream, downstream };

std::string_view to_string(toxic_type type);
std::string_view to_string(toxic_stream stream);

struct toxic {
  std::string name;  // unique within a proxy; defaults to "<type>_<stream>"
  toxic_type type = toxic_type::latency;
  toxic_stream stream = toxic_stream::downstream;
  double toxicity = 1.0;  // probability that the toxic applies to a connection, in [0, 1]
  // Attributes, in Toxiproxy's names and units; each type reads only its own.
  std::int64_t latency = 0;         // latency: ms added to every chunk
  std::int64_t jitter = 0;          // latency: ± ms, uniform
  std::int64_t rate = 0;            // bandwidth: KB/s (1 KB = 1000 bytes)
  std::int64_t delay = 0;           // slow_close: ms before a close is passed on
  std::int64_t timeout = 0;         // timeout: ms until the connection closes (0: never; data is
                                    // dropped meanwhile); reset_peer: ms until a TCP reset
  std::int64_t average_size = 0;    // slicer: bytes per slice
  std::int64_t size_variation = 0;  // slicer: ± bytes
  std::int64_t slice_delay = 0;     // slicer: µs between slices (Toxiproxy's "delay")
  std::int64_t bytes = 0;           // limit_data: the connection closes after this many bytes
};

// Reads a toxic from Toxiproxy's JSON form. `fallback`, when given, supplies the fields the JSON
// leaves out (an update changes only what it names). Returns an error message, empty when valid.
std::string toxic_from_json(const boost::json::value& json, toxic& out,
                            const toxic* fallback = nullptr);
boost::json::object toxic_to_json(const toxic& t);

// Turns "type=latency,stream=downstream,toxicity=0.5,latency=100,jitter=10,name=slow" (the
// command-line form) into the JSON form, without checking it against a type (an update names
// only what changes). Keys listed in `extra_keys` are not the toxic's: their values are returned
// in `extras`, in order of appearance.
std::string toxic_json_from_text(std::string_view text, boost::json::object& out,
                                 std::span<const std::string_view> extra_keys = {},
                                 std::vector<std::pair<std::string, std::string>>* extras = nullptr);

// The command-line form read and checked as a whole toxic.
std::string toxic_from_text(std::string_view text, toxic& out,
                            std::span<const std::string_view> extra_keys = {},
                            std::vector<std::pair<std::string, std::string>>* extras = nullptr);

// One piece of a chunk to write, after waiting `pause` since the previous write of this direction.
struct chunk_piece {
  std::size_t offset = 0;
  std::size_t length = 0;
  std::chrono::nanoseconds pause{0};
};

struct chunk_plan {
  bool drop = false;                   // a timeout toxic: the bytes are lost
  std::chrono::nanoseconds latency{0};  // hold the chunk until its arrival + latency
  std::vector<chunk_piece> pieces;     // what to write, in order
  bool close_after = false;            // limit_data reached: close the connection after writing
};

// What one direction of one connection has forwarded so far.
struct direction_progress {
  std::uint64_t forwarded = 0;
};

// Plans the fate of a chunk of `size` bytes under the toxics that apply to this direction of this
// connection (in the order they were added), and counts its bytes in `progress`.
chunk_plan plan_chunk(std::span<const toxic* const> active, std::size_t size,
                      direction_progress& progress, rng& random);

// Whether a toxic applies to a new connection (or to one that meets it when it is added): a draw
// against its toxicity.
bool toxic_applies(const toxic& t, rng& random);

}  // namespace nines::core
