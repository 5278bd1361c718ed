#pragma once
#include <mutex>

#include "chat/service.h"
#include "common/bounded_lru.h"

namespace parley::api {

// Whether a token's user exists in this database (a valid signature alone is not enough: the
// database may have been replaced while the key was kept). Users are never deleted, so a
// user seen once is remembered: the hot path costs a lookup under a lock, and only a user not
// seen yet (bounded: max_users remembered, least recently used forgotten) costs a storage
// read. Blocking on a miss: call it off the IO threads. Thread-safe.
class KnownUsers {
 public:
  explicit KnownUsers(chat::ChatService& chat, std::size_t max_users = 100000) : chat_(chat), seen_(max_users) {}
  bool exists(Id user) {
    {
      std::lock_guard g(mu_);
      if (seen_.touch(user)) return true;
    }
    if (!chat_.user_exists(user)) return false;
    std::lock_guard g(mu_);
    seen_.get_or_insert(user, [] { return true; });
    return true;
  }

 private:
  chat::ChatService& chat_;
  std::mutex mu_;
  BoundedLru<Id, bool> seen_;
};

}  // namespace parley::api
