#include "common/time.h"

#include <gtest/gtest.h>

TEST(Time, FormatsRfc3339WithMilliseconds) {
  EXPECT_EQ(parley::format_rfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(parley::format_rfc3339(1795514400123), "2026-11-24T10:00:00.123Z");
}
