// RestApi and WsGate over a real SQLite file whose writes or reads fail on demand (the
// "faulty" VFS): every storage fault is 503 `unavailable` with Retry-After — register, login,
// sends, reads, a token's user lookup, a WebSocket upgrade — never 500; /readyz follows writes.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <thread>

#include "api/rest.h"
#include "api/ws_gate.h"
#include "storage/sqlite/fault_vfs_test.h"
#include "storage/sqlite/sqlite_store.h"

using namespace parley;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

struct TempDir {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("parley-rest-faults-" + std::to_string(::getpid()));
  TempDir() { std::filesystem::create_directories(dir); }
  ~TempDir() { std::filesystem::remove_all(dir); }
};

storage::SqliteOptions options(const std::string& path) {
  storage::SqliteOptions o;
  o.path = path;
  o.readers = 2;
  o.synchronous_full = false;
  o.vfs = faultvfs::install();
  o.probe_interval = 50ms;
  return o;
}

struct Fixture {
  TempDir tmp;
  storage::SqliteStore store{options((tmp.dir / "p.db").string())};
  chat::ChatService chat{store};
  auth::JwtCodec jwt{std::string(32, 'k'), 3600, store.database_id()};
  api::KnownUsers known{chat};
  api::RateLimiter limiter{0, 1, 100};
  api::Metrics metrics;
  api::RestApi rest{chat, store, jwt, known, limiter, metrics};
  Fixture() { faultvfs::control().clear(); }
  ~Fixture() { faultvfs::control().clear(); }

  api::Response call(const std::string& method, const std::string& target, const std::string& body = "",
                     const std::string& token = "") {
    return rest.handle(api::Request{method, target, token.empty() ? "" : "Bearer " + token, body, "127.0.0.1"});
  }
  json::object parse(const api::Response& r) { return json::parse(r.body).as_object(); }
  std::pair<std::string, std::string> register_user(const std::string& name) {
    auto r = call("POST", "/api/auth/register", R"({"username":")" + name + R"(","password":"password123"})");
    EXPECT_EQ(r.status, 201) << r.body;
    auto o = parse(r);
    return {std::string(o["token"].as_string()), std::string(o["user"].as_object()["id"].as_string())};
  }
  void wait_healthy() {
    for (int i = 0; i < 200 && !store.healthy(); ++i) std::this_thread::sleep_for(10ms);
  }
};

void expect_503(const api::Response& r, const char* what) {
  EXPECT_EQ(r.status, 503) << what << ": " << r.body;
  if (r.status != 503) return;
  auto o = json::parse(r.body).as_object();
  EXPECT_EQ(o["error"].as_object()["code"].as_string(), "unavailable") << what;
  bool retry_after = false;
  for (auto& [k, v] : r.headers) retry_after = retry_after || (k == "Retry-After" && !v.empty());
  EXPECT_TRUE(retry_after) << what;
}

}  // namespace

TEST(RestFaults, WritesThatFailOnAFullDiskAre503AndReadyzFollows) {
  Fixture f;
  auto [alice, alice_id] = f.register_user("alice");
  auto [bob, bob_id] = f.register_user("bob");
  auto room = f.call("POST", "/api/chatrooms", R"({"name":"r","member_ids":[]})", alice);
  ASSERT_EQ(room.status, 201) << room.body;
  std::string rid(f.parse(room)["id"].as_string());
  EXPECT_EQ(f.call("GET", "/readyz").status, 200);

  faultvfs::control().write_rc = SQLITE_FULL;
  expect_503(f.call("POST", "/api/chatrooms/" + rid + "/messages", R"({"content":"x","client_msg_id":"c1"})", alice),
             "send");
  expect_503(f.call("POST", "/api/auth/register", R"({"username":"carol","password":"password123"})"), "register");
  expect_503(f.call("POST", "/api/chatrooms", R"({"name":"r2"})", alice), "create room");
  expect_503(f.call("POST", "/api/chatrooms/" + rid + "/members", R"({"user_id":")" + bob_id + R"("})", alice),
             "add member");
  // A write that changes nothing writes nothing, and succeeds.
  EXPECT_EQ(f.call("POST", "/api/chatrooms/" + rid + "/mark-all-read", "", alice).status, 200);
  auto ready = f.call("GET", "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(f.parse(ready)["status"].as_string(), "unavailable");
  // Reads need no space.
  EXPECT_EQ(f.call("POST", "/api/auth/login", R"({"username":"alice","password":"password123"})").status, 200);
  EXPECT_EQ(f.call("GET", "/api/chatrooms/" + rid + "/messages", "", alice).status, 200);

  faultvfs::control().write_rc = 0;
  f.wait_healthy();
  EXPECT_EQ(f.call("GET", "/readyz").status, 200);
  auto sent = f.call("POST", "/api/chatrooms/" + rid + "/messages", R"({"content":"x","client_msg_id":"c1"})", alice);
  EXPECT_EQ(sent.status, 201) << "the refused send was not stored: its retry creates it";
  EXPECT_EQ(f.parse(sent)["seq"].as_int64(), 1);
}

TEST(RestFaults, ReadsThatFailAre503EvenOnLoginAndTheTokenCheck) {
  Fixture f;
  auto [alice, alice_id] = f.register_user("alice");
  auto [bob, bob_id] = f.register_user("bob");  // bob's token has not been checked yet
  auto room = f.call("POST", "/api/chatrooms", R"({"name":"r","member_ids":[]})", alice);
  std::string rid(f.parse(room)["id"].as_string());
  api::WsGate gate(f.chat, f.jwt, f.known, api::WsGateOptions{});
  ASSERT_TRUE(gate.admit({"/api/ws?room_id=" + rid, "Bearer " + alice, "", "h"}).accepted);
  // A fresh commit: every reader must read its pages again, from the failing file.
  ASSERT_EQ(f.call("POST", "/api/chatrooms/" + rid + "/messages", R"({"content":"x"})", alice).status, 201);
  faultvfs::control().read_rc = SQLITE_IOERR_READ;
  expect_503(f.call("POST", "/api/auth/login", R"({"username":"alice","password":"password123"})"), "login");
  expect_503(f.call("GET", "/api/chatrooms/" + rid + "/messages", "", alice), "history");
  expect_503(f.call("GET", "/api/me", "", bob), "a token whose user is not known yet");
  auto up = gate.admit({"/api/ws?room_id=" + rid, "Bearer " + alice, "", "h"});
  EXPECT_FALSE(up.accepted);
  EXPECT_EQ(up.reason, "unavailable");
  expect_503(up.refusal, "WebSocket upgrade");
  EXPECT_EQ(f.call("GET", "/readyz").status, 200) << "readiness follows writes";
  faultvfs::control().read_rc = 0;
  EXPECT_EQ(f.call("POST", "/api/auth/login", R"({"username":"alice","password":"password123"})").status, 200);
  EXPECT_EQ(f.call("GET", "/api/me", "", bob).status, 200);
}
