// hiredis ownership and timeouts shared by the Redis clients of bus/ (redis_bus.cpp,
// redis_kv.cpp). Included only by their .cpp files: hiredis stays out of every other header.
#pragma once
#include <hiredis.h>
#include <sys/time.h>

#include <chrono>
#include <memory>

namespace parley::bus::hiredis {

struct CtxFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Ctx = std::unique_ptr<redisContext, CtxFree>;
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

inline timeval to_tv(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

}  // namespace parley::bus::hiredis
