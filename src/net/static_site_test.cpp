#include "net/static_site.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace parley::net {
namespace {

TEST(StaticSite, ServesIndexAtRootAndFilesByPath) {
  auto site = StaticSite::from({{"/index.html", "<!doctype html>"}, {"/app.js", "export {}"}, {"/x/app.css", "a{}"}});
  ASSERT_NE(site->find("/"), nullptr);
  EXPECT_EQ(site->find("/")->body, "<!doctype html>");
  EXPECT_EQ(site->find("/")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(site->find("/app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(site->find("/x/app.css")->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(site->find("/nope.js"), nullptr);
  EXPECT_EQ(site->find("/api/me"), nullptr);
  EXPECT_EQ(site->find("app.js"), nullptr);
  EXPECT_EQ(site->find("/x/../app.js"), nullptr);  // paths are matched exactly, never resolved
}

TEST(StaticSite, EtagIsAQuotedHashOfTheBody) {
  auto a = StaticSite::from({{"/a.js", "one"}, {"/b.js", "one"}, {"/c.js", "two"}});
  const auto& ea = a->find("/a.js")->etag;
  EXPECT_EQ(ea.front(), '"');
  EXPECT_EQ(ea.back(), '"');
  EXPECT_EQ(ea, a->find("/b.js")->etag);
  EXPECT_NE(ea, a->find("/c.js")->etag);
}

TEST(StaticSite, IfNoneMatchComparesWeaklyAndInLists) {
  EXPECT_TRUE(StaticSite::not_modified("\"abc\"", "\"abc\""));
  EXPECT_TRUE(StaticSite::not_modified("W/\"abc\"", "\"abc\""));
  EXPECT_TRUE(StaticSite::not_modified("\"x\", \"abc\"", "\"abc\""));
  EXPECT_TRUE(StaticSite::not_modified(" * ", "\"abc\""));
  EXPECT_FALSE(StaticSite::not_modified("\"abd\"", "\"abc\""));
  EXPECT_FALSE(StaticSite::not_modified("abc", "\"abc\""));
  EXPECT_FALSE(StaticSite::not_modified("", "\"abc\""));
}

TEST(StaticSite, UnknownExtensionIsOctetStream) {
  EXPECT_EQ(StaticSite::content_type_for("/a.bin"), "application/octet-stream");
  EXPECT_EQ(StaticSite::content_type_for("/README"), "application/octet-stream");
  EXPECT_EQ(StaticSite::content_type_for("/icon.svg"), "image/svg+xml");
}

TEST(StaticSite, LoadsADirectorySkippingDotFilesAndRefusesTooMany) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("parley-static-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "sub");
  fs::create_directories(dir / ".hidden");
  std::ofstream(dir / "index.html") << "hi";
  std::ofstream(dir / "sub" / "s.js") << "js";
  std::ofstream(dir / ".secret") << "no";
  std::ofstream(dir / ".hidden" / "h.js") << "no";
  auto site = StaticSite::load(dir.string());
  EXPECT_EQ(site->size(), 2u);
  EXPECT_EQ(site->find("/")->body, "hi");
  EXPECT_EQ(site->find("/sub/s.js")->body, "js");
  EXPECT_EQ(site->find("/.secret"), nullptr);
  EXPECT_EQ(site->find("/.hidden/h.js"), nullptr);
  for (std::size_t i = 0; i < StaticSite::kMaxFiles; ++i) std::ofstream(dir / ("f" + std::to_string(i) + ".txt")) << i;
  EXPECT_THROW(StaticSite::load(dir.string()), std::runtime_error);
  EXPECT_THROW(StaticSite::load((dir / "missing").string()), std::runtime_error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace parley::net
