#include "core/http/openai_error.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace nines::core {

std::string openai_error_body(std::string_view type, std::string_view message,
                              std::string_view code) {
  boost::json::object error;
  error["message"] = message;
  error["type"] = type;
  error["param"] = nullptr;
  if (code.empty()) {
    error["code"] = nullptr;
  } else {
    error["code"] = code;
  }
  boost::json::object body;
  body["error"] = std::move(error);
  return boost::json::serialize(body);
}

std::string openai_error_event(std::string_view type, std::string_view message,
                               std::string_view code) {
  return "data: " + openai_error_body(type, message, code) + "\n\n";
}

}  // namespace nines::core
