#include "core/codec/base64.hpp"

#include <gtest/gtest.h>

#include "core/access/secret_digest.hpp"
#include "core/codec/sha256_stream.hpp"

namespace nines::core {
namespace {

TEST(base64, encodes_as_rfc_4648_and_decodes_back) {
  // RFC 4648 §10's vectors.
  const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, coded] : vectors) {
    EXPECT_EQ(base64_encode(plain), coded);
    EXPECT_EQ(base64_decode(coded), plain);
  }
  std::string bytes;
  for (int i = 0; i < 256; ++i) {
    bytes.push_back(static_cast<char>(i));
  }
  EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes);
}

TEST(base64, refuses_what_is_not_canonical) {
  for (const char* bad : {"Zg", "Zg=", "Zm9", "Z===", "Zg==Zg==", "Zm9v YmFy", "Zm9v\n",
                          "Zh==", "Zm9=", "Zm-v", "Zm_v", "=Zm9"}) {
    EXPECT_FALSE(base64_decode(bad)) << bad;
  }
}

TEST(sha256_stream, gives_the_digest_of_the_whole_however_it_arrives) {
  std::string text(100000, 'x');
  for (std::size_t i = 0; i < text.size(); ++i) {
    text[i] = static_cast<char>('a' + i % 26);
  }
  sha256_stream s;
  for (std::size_t at = 0; at < text.size(); at += 777) {
    s.update(std::string_view(text).substr(at, 777));
  }
  const auto whole = sha256_of(text);
  const auto streamed = s.current();
  EXPECT_TRUE(std::equal(whole.begin(), whole.end(), streamed.begin()));
  s.update("more");  // current() does not end the stream
  const auto after = s.current();
  const auto expected = sha256_of(text + "more");
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), after.begin()));
}

}  // namespace
}  // namespace nines::core
