#include "chat/uploads.h"

#include <gtest/gtest.h>

#include "common/error.h"

using namespace parley;
using namespace parley::chat;

TEST(UploadValidation, ContentTypeIsASaneTypeSubtypeOrOctetStream) {
  EXPECT_EQ(normalize_content_type("image/png"), "image/png");
  EXPECT_EQ(normalize_content_type("Text/Plain"), "text/plain");
  EXPECT_EQ(normalize_content_type("application/vnd.api+json"), "application/vnd.api+json");
  EXPECT_EQ(normalize_content_type("text/html; charset=utf-8"), "application/octet-stream");  // no parameters
  EXPECT_EQ(normalize_content_type("text/html\r\nX-Evil: 1"), "application/octet-stream");
  EXPECT_EQ(normalize_content_type("nonsense"), "application/octet-stream");
  EXPECT_EQ(normalize_content_type(""), "application/octet-stream");
  EXPECT_EQ(normalize_content_type("a/b/c"), "application/octet-stream");
  EXPECT_EQ(normalize_content_type(std::string(kMaxContentTypeBytes, 'a')), "application/octet-stream");
  EXPECT_THROW(normalize_content_type(std::string(kMaxContentTypeBytes + 1, 'a')), Error);
}

TEST(UploadValidation, FilenameIsBoundedUtf8WithoutControlsOrSlashes) {
  EXPECT_NO_THROW(check_upload_filename("report.pdf"));
  EXPECT_NO_THROW(check_upload_filename("r\xC3\xA9sum\xC3\xA9 \"final\".txt"));
  EXPECT_NO_THROW(check_upload_filename(std::string(kMaxUploadFilenameBytes, 'a')));
  EXPECT_THROW(check_upload_filename(std::string(kMaxUploadFilenameBytes + 1, 'a')), Error);
  EXPECT_THROW(check_upload_filename(""), Error);
  EXPECT_THROW(check_upload_filename("../../etc/passwd"), Error);
  EXPECT_THROW(check_upload_filename("a\\b"), Error);
  EXPECT_THROW(check_upload_filename("a\nb"), Error);
  EXPECT_THROW(check_upload_filename("\xFF\xFE"), Error);
}
