// StorageHealth on a fake clock: the log-rate limit (one line at the start of an outage, one
// summary per interval, one on recovery), health transitions and the hooks.
#include "storage/storage_health.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <vector>

#include "storage/log_capture_test.h"

using namespace parley::storage;
using namespace std::chrono_literals;

TEST(StorageHealth, OneLineWhenAnOutageStartsThenOneSummaryPerIntervalThenOneOnRecovery) {
  LogCapture log;
  int downs = 0, ups = 0;
  std::size_t failed = 0;
  StorageHealth h(10s, StorageHealth::Hooks{[&](bool ok) { ok ? ++ups : ++downs; }, [&](std::size_t n) { failed += n; }});
  auto t0 = StorageHealth::Clock::time_point{} + 1000s;
  EXPECT_TRUE(h.healthy());
  // 1000 refused writes over 25 s, one every 25 ms, each batch of one.
  for (int i = 0; i < 1000; ++i) {
    h.fault(1, "sqlite step: database or disk is full (13)", true, t0 + i * 25ms);
    h.tick(t0 + i * 25ms);
  }
  EXPECT_FALSE(h.healthy());
  EXPECT_EQ(downs, 1);
  EXPECT_EQ(failed, 1000u);
  auto lines = log.lines();
  ASSERT_EQ(lines.size(), 3u);  // at 0 s, at 10 s and at 20 s
  EXPECT_EQ(lines[0].level, spdlog::level::err);
  EXPECT_NE(lines[0].text.find("database or disk is full"), std::string::npos);
  EXPECT_NE(lines[0].text.find("1 operations refused"), std::string::npos) << lines[0].text;
  EXPECT_EQ(lines[1].level, spdlog::level::warn);
  EXPECT_NE(lines[1].text.find("400 operations refused"), std::string::npos) << lines[1].text;
  EXPECT_NE(lines[2].text.find("400 operations refused"), std::string::npos) << lines[2].text;
  // No faults for a while, still down: the summary keeps coming once per interval.
  h.tick(t0 + 31s);
  EXPECT_EQ(log.lines().size(), 4u);
  EXPECT_NE(log.lines()[3].text.find("199 operations refused"), std::string::npos) << log.lines()[3].text;
  h.tick(t0 + 35s);
  EXPECT_EQ(log.lines().size(), 4u);
  h.write_ok(t0 + 36s);
  h.write_ok(t0 + 37s);
  EXPECT_TRUE(h.healthy());
  EXPECT_EQ(ups, 1);
  lines = log.lines();
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[4].level, spdlog::level::info);
  EXPECT_NE(lines[4].text.find("recovered"), std::string::npos);
  EXPECT_NE(lines[4].text.find("1000 operations"), std::string::npos) << lines[4].text;
  h.tick(t0 + 100s);  // healthy, nothing pending: silent
  EXPECT_EQ(log.lines().size(), 5u);
}

TEST(StorageHealth, ReadFaultsAreReportedButDoNotDecideHealth) {
  LogCapture log;
  StorageHealth h(10s);
  auto t0 = StorageHealth::Clock::time_point{} + 1000s;
  for (int i = 0; i < 50; ++i) h.fault(1, "read: disk I/O error", false, t0 + i * 100ms);
  EXPECT_TRUE(h.healthy());
  EXPECT_TRUE(h.pending());
  EXPECT_EQ(log.lines().size(), 1u);  // the first one at once
  h.tick(t0 + 10s);
  ASSERT_EQ(log.lines().size(), 2u);
  EXPECT_NE(log.lines()[1].text.find("49 operations failed"), std::string::npos) << log.lines()[1].text;
  EXPECT_FALSE(h.pending());
}

TEST(StorageHealth, AnOutageRightAfterARecoveryIsFoldedIntoTheNextSummary) {
  LogCapture log;
  StorageHealth h(10s);
  auto t0 = StorageHealth::Clock::time_point{} + 1000s;
  h.fault(1, "full", true, t0);
  h.write_ok(t0 + 1s);
  h.fault(1, "full", true, t0 + 2s);  // flapping: no new line before the interval is over
  h.write_ok(t0 + 3s);
  h.fault(1, "full", true, t0 + 4s);
  EXPECT_FALSE(h.healthy());
  // error (0 s), recovered (1 s); the later outages and recoveries inside the interval are
  // left to the summary.
  ASSERT_EQ(log.lines().size(), 2u);
  EXPECT_EQ(log.lines()[1].level, spdlog::level::info);
  EXPECT_TRUE(h.pending());
  h.tick(t0 + 5s);
  EXPECT_EQ(log.lines().size(), 2u);
  h.tick(t0 + 11s);
  ASSERT_EQ(log.lines().size(), 3u);
  EXPECT_NE(log.lines()[2].text.find("still unavailable"), std::string::npos) << log.lines()[2].text;
  EXPECT_NE(log.lines()[2].text.find("2 operations refused"), std::string::npos) << log.lines()[2].text;
}
