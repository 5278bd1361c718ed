#include "api/upload_transfers.h"

#include <gtest/gtest.h>
#include <unistd.h>

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

// The streamed routes without sockets: a real SQLite store, a temporary directory, and the
// chunks the server would hand over.
#include <filesystem>
#include <fstream>
#include <mutex>

#include "chat/service.h"
#include "storage/testing/test_database.h"

namespace {

struct Recorder : chat::EventPublisher {
  std::mutex mu;
  std::vector<chat::UploadProgress> progress;
  void publish(chat::EventPtr e) override {
    std::lock_guard g(mu);
    if (auto* p = std::get_if<chat::UploadProgress>(&*e)) progress.push_back(*p);
  }
};

struct Fixture {
  std::unique_ptr<storage::testing::TestDatabase> db = storage::testing::make_test_database("sqlite");
  std::unique_ptr<chat::Store> store = db->open();
  chat::ChatService chat{*store};
  chat::UploadService uploads{*store, chat::UploadLimits{1000, 20, 3600000}};
  auth::UrlSigner signer{"0123456789abcdef0123456789abcdef"};
  Recorder events;
  std::string dir = std::filesystem::temp_directory_path() / ("parley-up-" + api::UploadTransfers::new_file_key());
  Id alice = chat.create_user("alice", "h").id;
  Id bob = chat.create_user("bob", "h").id;
  api::UploadTransfers transfers{uploads,
                                 [this](std::string_view t) -> std::optional<Id> {
                                   if (t == "alice") return alice;
                                   if (t == "bob") return bob;
                                   return std::nullopt;
                                 },
                                 signer, &events, dir};
  ~Fixture() { std::filesystem::remove_all(dir); }
  api::Request head(const std::string& method, Id id, const std::string& token, const std::string& query = "") {
    return api::Request{method, "/api/uploads/" + format_id(id) + query, token.empty() ? "" : "Bearer " + token, "", "1.2.3.4"};
  }
  std::size_t files() {
    return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
  }
};

}  // namespace

TEST(UploadTransfers, APutStreamsToAFileAndChecksSizeAndSha256) {
  Fixture f;
  auto u = f.uploads.create(f.alice, "a.txt", "text/plain", 6, api::UploadTransfers::new_file_key());
  EXPECT_EQ(f.transfers.begin_put(f.head("PUT", u.id, "bob"), 6).refusal->status, 404);     // another's
  EXPECT_EQ(f.transfers.begin_put(f.head("PUT", u.id, ""), 6).refusal->status, 401);        // no token
  EXPECT_EQ(f.transfers.begin_put(f.head("PUT", u.id, "alice"), 7).refusal->status, 400);   // wrong length
  {
    auto s = f.transfers.begin_put(f.head("PUT", u.id, "alice"), std::nullopt);
    ASSERT_TRUE(s.sink);
    EXPECT_EQ(f.transfers.begin_put(f.head("PUT", u.id, "alice"), 6).refusal->status, 409);  // one at a time
    EXPECT_FALSE(s.sink->write("abc", 3));
    EXPECT_EQ(s.sink->write("defg", 4)->status, 400);  // past the size
  }
  EXPECT_EQ(f.files(), 0u);  // the refused PUT kept nothing
  {
    auto s = f.transfers.begin_put(f.head("PUT", u.id, "alice"), std::nullopt);
    EXPECT_FALSE(s.sink->write("abc", 3));
    EXPECT_EQ(s.sink->finish().status, 400);  // shorter than declared
  }
  EXPECT_EQ(f.files(), 0u);
  auto s = f.transfers.begin_put(f.head("PUT", u.id, "alice"), 6);
  EXPECT_FALSE(s.sink->write("abc", 3));
  EXPECT_FALSE(s.sink->write("def", 3));
  auto r = s.sink->finish();
  EXPECT_EQ(r.status, 200);
  // sha256("abcdef")
  EXPECT_NE(r.body.find("bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721"), std::string::npos) << r.body;
  s.sink.reset();
  EXPECT_EQ(f.files(), 1u);
  EXPECT_EQ(f.transfers.begin_put(f.head("PUT", u.id, "alice"), 6).refusal->status, 409);  // finished
  ASSERT_FALSE(f.events.progress.empty());
  EXPECT_EQ(f.events.progress.back().received, 6);  // the last one: received == total
  EXPECT_EQ(f.events.progress.back().total, 6);
  EXPECT_EQ(f.events.progress.back().user, f.alice);
}

TEST(UploadTransfers, DownloadsNeedTheUploaderAMemberOrAValidLink) {
  Fixture f;
  auto u = f.uploads.create(f.alice, "a b.txt", "text/plain", 2, api::UploadTransfers::new_file_key());
  auto s = f.transfers.begin_put(f.head("PUT", u.id, "alice"), 2);
  EXPECT_FALSE(s.sink->write("hi", 2));
  EXPECT_EQ(s.sink->finish().status, 200);
  auto d = f.transfers.begin_download(f.head("GET", u.id, "alice"));
  ASSERT_FALSE(d.refusal);
  EXPECT_EQ(d.size, 2);
  char buf[2];
  EXPECT_EQ(::pread(d.file->fd, buf, 2, 0), 2);
  EXPECT_EQ(std::string(buf, 2), "hi");
  auto header = [&](const std::string& k) {
    for (const auto& [n, v] : d.headers)
      if (n == k) return v;
    return std::string();
  };
  EXPECT_EQ(header("Content-Type"), "text/plain");
  EXPECT_EQ(header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(header("Content-Disposition"), "attachment; filename=\"a b.txt\"; filename*=UTF-8''a%20b.txt");
  EXPECT_EQ(f.transfers.begin_download(f.head("GET", u.id, "bob")).refusal->status, 403);
  EXPECT_EQ(f.transfers.begin_download(f.head("GET", u.id, "")).refusal->status, 401);
  std::string link = f.signer.url(u.id, now_ms());
  EXPECT_FALSE(f.transfers.begin_download(api::Request{"GET", link, "", "", ""}).refusal);
  EXPECT_EQ(f.transfers.begin_download(api::Request{"GET", link + "0", "", "", ""}).refusal->status, 403);
  std::int64_t past = now_ms() / 1000 - 1;
  EXPECT_EQ(f.transfers.begin_download(f.head("GET", u.id, "", "?exp=" + std::to_string(past) + "&sig=" + f.signer.sign(u.id, past)))
                .refusal->status,
            403);  // expired, though rightly signed
  Id room = f.chat.create_group(f.alice, "r", {f.bob}).room.id;
  f.chat.send(f.alice, room, "file", {}, {}, {u.id});
  EXPECT_FALSE(f.transfers.begin_download(f.head("GET", u.id, "bob")).refusal);  // a member now
}

TEST(UploadTransfers, TheSweepRemovesExpiredUploadsAndStalePartialFiles) {
  Fixture f;
  auto u = f.uploads.create(f.alice, "a", "text/plain", 5, api::UploadTransfers::new_file_key());
  auto s = f.transfers.begin_put(f.head("PUT", u.id, "alice"), 5);
  EXPECT_FALSE(s.sink->write("ab", 2));
  std::string stray = f.dir + "/" + std::string(32, 'e') + ".part";
  std::ofstream(stray) << "left by a crash";
  std::filesystem::last_write_time(stray, std::filesystem::file_time_type::clock::now() - std::chrono::hours(2));
  EXPECT_EQ(f.transfers.sweep(now_ms()), 1u);  // the stray one; the live PUT's stays
  EXPECT_FALSE(std::filesystem::exists(stray));
  EXPECT_EQ(f.files(), 1u);
  EXPECT_EQ(f.transfers.sweep(now_ms() + 3600001), 1u);  // the upload expired: its partial file goes
  EXPECT_EQ(f.files(), 0u);
  EXPECT_EQ(s.sink->write("cde", 3), std::nullopt);
  EXPECT_EQ(s.sink->finish().status, 404);  // expired meanwhile: refused, nothing kept
  s.sink.reset();
  EXPECT_EQ(f.files(), 0u);
}
