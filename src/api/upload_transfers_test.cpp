#include "api/upload_transfers.h"

#include <gtest/gtest.h>

using namespace parley;

TEST(UploadTransfers, ContentDispositionIsSafeAscii) {
  EXPECT_EQ(api::content_disposition("report.pdf"), "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf");
  EXPECT_EQ(api::content_disposition("a \"b\"\\c%.txt"),
            "attachment; filename=\"a _b__c_.txt\"; filename*=UTF-8''a%20%22b%22%5Cc%25.txt");
  EXPECT_EQ(api::content_disposition("r\xC3\xA9sum\xC3\xA9.txt"),
            "attachment; filename=\"r__sum__.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt");
}

TEST(UploadTransfers, OnlyTheUploadPathIsStreamed) {
  EXPECT_TRUE(api::UploadTransfers::streamed("PUT", "/api/uploads/12"));
  EXPECT_TRUE(api::UploadTransfers::streamed("GET", "/api/uploads/12?exp=1&sig=ab"));
  EXPECT_FALSE(api::UploadTransfers::streamed("POST", "/api/uploads/12"));
  EXPECT_FALSE(api::UploadTransfers::streamed("GET", "/api/uploads"));
  EXPECT_FALSE(api::UploadTransfers::streamed("GET", "/api/uploads/12/x"));
  EXPECT_FALSE(api::UploadTransfers::streamed("GET", "/api/messages/12"));
}

TEST(UploadTransfers, FileKeysAreRandomHex) {
  auto a = api::UploadTransfers::new_file_key(), b = api::UploadTransfers::new_file_key();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}
