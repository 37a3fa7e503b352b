#include "core/upload/tus_headers.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

TEST(tus_headers, numbers_are_plain_decimal) {
  EXPECT_EQ(parse_upload_number("0"), 0u);
  EXPECT_EQ(parse_upload_number("3145728"), 3145728u);
  EXPECT_EQ(parse_upload_number("9223372036854775807"), 9223372036854775807u);
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "01", "1.0", "0x10", "9223372036854775808",
                          "99999999999999999999", "1e3"}) {
    EXPECT_FALSE(parse_upload_number(bad)) << bad;
  }
}

TEST(tus_headers, metadata_pairs_are_decoded_and_checked) {
  std::vector<upload_metadata_entry> m;
  ASSERT_EQ(
      parse_upload_metadata("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential", m),
      "");
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].key, "filename");
  EXPECT_EQ(m[0].value, "world_domination_plan.pdf");
  EXPECT_EQ(m[1].key, "is_confidential");
  EXPECT_EQ(m[1].value, "");
  ASSERT_EQ(parse_upload_metadata("k ", m), "");  // an empty value after the space
  EXPECT_EQ(m[0].value, "");
  for (const char* bad : {"", ",", "a Zg==,", ",a Zg==", "a Zg==, b Zg==", "a Zg",
                          "a Zg==,a Zm8=", "a  Zg==", "a\tZg==", "\x01 Zg=="}) {
    EXPECT_NE(parse_upload_metadata(bad, m), "") << bad;
  }
  std::string many;
  for (std::size_t i = 0; i <= max_metadata_entries; ++i) {
    many += (i ? "," : "") + std::string("k") + std::to_string(i);
  }
  EXPECT_NE(parse_upload_metadata(many, m), "");
  EXPECT_NE(parse_upload_metadata(std::string(65, 'k'), m), "");
}

TEST(tus_headers, a_checksum_is_an_algorithm_and_a_base64_digest) {
  const auto c = parse_upload_checksum("SHA256 Zm9vYmFy");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->algorithm, "sha256");
  EXPECT_EQ(c->digest, "foobar");
  for (const char* bad :
       {"", "sha256", "sha256 ", " Zm9v", "sha256 Zm9", "sha 256 Zm9v", "sh@256 Zm9v"}) {
    EXPECT_FALSE(parse_upload_checksum(bad)) << bad;
  }
}

TEST(tus_headers, an_upload_is_named_by_its_path_or_an_http_url_of_it) {
  const std::string id = "0123456789abcdef0123456789abcdef";
  EXPECT_EQ(upload_id_of("/v1/uploads/" + id), id);
  EXPECT_EQ(upload_id_of("http://gw:8080/v1/uploads/" + id), id);
  EXPECT_EQ(upload_id_of("https://gw.example/v1/uploads/" + id), id);
  const std::vector<std::string> refused{"/v1/uploads/" + id + "/",
                                         "/v1/uploads/" + id + "?x=1",
                                         "/v1/uploads//" + id,
                                         "/v1/uploads/0123456789ABCDEF0123456789abcdef",
                                         "/v1/uploads/" + id.substr(1),
                                         "/v2/uploads/" + id,
                                         "ftp://gw/v1/uploads/" + id,
                                         "http:///v1/uploads/" + id,
                                         "http://gw",
                                         "v1/uploads/" + id,
                                         "/v1/uploads/../uploads/" + id.substr(0, 20)};
  for (const auto& bad : refused) {
    EXPECT_FALSE(upload_id_of(bad)) << bad;
  }
}

TEST(tus_headers, expiry_dates_are_imf_fixdate) {
  EXPECT_EQ(http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110's example
}

}  // namespace
}  // namespace nines::core
