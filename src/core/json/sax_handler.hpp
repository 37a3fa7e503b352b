#pragma once
// What every boost::json SAX handler in this project shares: no size limits of the parser's own
// (ours are depth and the event or body limits around it), and events nobody here reads (the
// document's ends, number fragments, comments) accepted as they come. A handler derives from this
// and declares the events it reads; basic_parser calls them on the derived type.

#include <boost/json/basic_parser.hpp>
#include <cstddef>

namespace nines::core {

struct sax_handler {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  bool on_document_begin(boost::json::error_code&) { return true; }
  bool on_document_end(boost::json::error_code&) { return true; }
  bool on_number_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }
};

}  // namespace nines::core
