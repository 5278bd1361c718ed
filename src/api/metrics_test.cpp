#include "api/metrics.h"

#include <gtest/gtest.h>

TEST(Metrics, WebSocketFiguresRender) {
  parley::api::Metrics m;
  m.ws_write(1);
  m.ws_write(1);
  m.ws_write(0);  // no data frame: not a write of any
  m.ws_write(5);
  m.ws_write(64);
  m.ws_write(65);
  m.ws_queue_depth(5);
  m.ws_queue_depth(3);  // a high-water mark never goes down
  auto text = m.render();
  EXPECT_NE(text.find("\nparley_ws_events_sent_total 136\n"), std::string::npos) << text;
  // Cumulative buckets of frames per write: 1, 1 | 5 | 64 | 65.
  EXPECT_NE(text.find("\nparley_ws_frames_per_write_bucket{le=\"1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nparley_ws_frames_per_write_bucket{le=\"4\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nparley_ws_frames_per_write_bucket{le=\"8\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nparley_ws_frames_per_write_bucket{le=\"64\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nparley_ws_frames_per_write_bucket{le=\"128\"} 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nparley_ws_frames_per_write_count 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nparley_ws_queue_high_water_events 5\n"), std::string::npos) << text;
}

TEST(Metrics, DeclaredSeriesRenderUnderTheirFamily) {
  parley::api::Metrics m;
  m.declare("parley_x_total", "counter", "X.");
  m.add("parley_x_total{reason=\"a\"}", 2);
  auto text = m.render();
  EXPECT_NE(text.find("# TYPE parley_x_total counter\nparley_x_total{reason=\"a\"} 2\n"), std::string::npos) << text;
}

TEST(Metrics, AGaugeIsSetNotAdded) {
  parley::api::Metrics m;
  m.declare("parley_storage_healthy", "gauge", "Storage health.");
  m.set("parley_storage_healthy", 1);
  m.set("parley_storage_healthy", 0);
  auto text = m.render();
  EXPECT_NE(text.find("# TYPE parley_storage_healthy gauge\nparley_storage_healthy 0\n"), std::string::npos) << text;
  m.set("parley_storage_healthy", 1);
  EXPECT_NE(m.render().find("\nparley_storage_healthy 1\n"), std::string::npos);
}

TEST(Metrics, CollectorsSetTheirSeriesAtEachRender) {
  parley::api::Metrics m;
  m.declare("parley_y_total", "counter", "Y.");
  double y = 1;
  m.add_collector([&](parley::api::Metrics& mm) { mm.set("parley_y_total", y); });
  EXPECT_NE(m.render().find("\nparley_y_total 1\n"), std::string::npos);
  y = 7;
  EXPECT_NE(m.render().find("\nparley_y_total 7\n"), std::string::npos) << m.render();
}
