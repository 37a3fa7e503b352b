#pragma once
// Validates a JSON document and picks out the few top-level facts the gateway routes on, without
// building a DOM: a 4 MiB request carrying a base64 screenshot is scanned once, allocation-free.
// Nesting depth is bounded (boost::json's max_depth), so hostile input cannot exhaust the stack.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nines::core {

struct json_facts {
  bool is_object = false;            // the document is a JSON object
  std::optional<bool> stream;        // top-level "stream"
  std::optional<std::string> model;  // top-level "model" (when a string)
  bool has_error = false;            // top-level "error" key (an OpenAI error object)
  // top-level "max_tokens", "max_completion_tokens" or "max_output_tokens" (a whole number)
  std::optional<std::uint64_t> max_tokens;
  // top-level "temperature" when a number; a document that gives it twice is not one nines reads
  // the same way as every server would: `temperature_repeated`, and no value
  std::optional<double> temperature;
  bool temperature_repeated = false;
};

struct json_probe_result {
  bool valid = false;
  json_facts facts;
  std::string error;  // when invalid: what is wrong and at which byte
};

json_probe_result probe_json(std::string_view text);

}  // namespace nines::core
