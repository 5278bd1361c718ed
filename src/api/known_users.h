#pragma once
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <variant>

#include "chat/service.h"
#include "common/bounded_lru.h"

namespace parley::api {

// Whether a token is still good: its user exists in this database (a valid signature alone is
// not enough: the database may have been replaced while the key was kept) and the token
// version it carries is the user's current one (logout and password change bump it). One
// instance per process, shared by REST and the WebSocket gate (app/main.cpp).
//
// Users are never deleted and versions only grow, so each user's version is remembered once
// read: the hot path is a lookup under a lock. Only a user not remembered (bounded: max_users,
// least recently used forgotten) or a token newer than the remembered version (a login on
// another instance after a revocation whose event has not reached this one yet) costs a
// storage read. Revocations raise the remembered version at once (raise(), on_event()), here
// from the write and on every instance from the bus. Blocking on a miss: call token_valid()
// and exists() off the IO threads. Thread-safe.
class KnownUsers {
 public:
  // 100,000 users × (id, version, LRU links) ≈ 10 MB at most.
  static constexpr std::size_t kDefaultMaxUsers = 100000;
  explicit KnownUsers(chat::ChatService& chat, std::size_t max_users = kDefaultMaxUsers)
      : chat_(chat), versions_(max_users) {}

  // True when user exists and version is their current token version.
  bool token_valid(Id user, std::int64_t version) {
    if (auto known = token_valid_cached(user, version)) return *known;
    auto current = chat_.token_version(user);  // a miss, or newer than remembered
    if (!current) return false;
    raise(user, *current);
    return *current == version;
  }

  // True when user exists in this database (the insecure sidebar's user_id).
  bool exists(Id user) {
    {
      std::lock_guard g(mu_);
      if (versions_.touch(user)) return true;
    }
    auto current = chat_.token_version(user);
    if (!current) return false;
    raise(user, *current);
    return true;
  }

  // Never blocks: token_valid's answer when the cache has it (a remembered version, trusted,
  // equal: valid; higher: revoked), nullopt when only storage can tell.
  std::optional<bool> token_valid_cached(Id user, std::int64_t version) {
    std::lock_guard g(mu_);
    if (const std::int64_t* v = versions_.touch(user)) {
      if (*v == version && trusted_) return true;
      if (*v > version) return false;  // revoked
    }
    return std::nullopt;
  }

  // Never blocks: true when tokens of user at version are known to be revoked (for a socket
  // admitted just before a revocation reached the hub; a forgotten user counts as not revoked).
  bool known_revoked(Id user, std::int64_t version) const {
    std::lock_guard g(mu_);
    const std::int64_t* v = versions_.peek(user);
    return v && *v > version;
  }

  // user's token version is at least version now (a revocation committed). Remembered even
  // when the user was not: a storage read that began before the revocation's commit and ends
  // after it can then not put the older version back.
  void raise(Id user, std::int64_t version) {
    std::lock_guard g(mu_);
    std::int64_t& v = versions_.get_or_insert(user, [version] { return version; });
    v = std::max(v, version);
  }

  // The bus receiver's hook: TokensRevoked raises the user's version; other events are ignored.
  void on_event(const chat::Event& e) {
    if (const auto* r = std::get_if<chat::TokensRevoked>(&e)) raise(r->user, r->version);
  }

  // The bus that raises versions on every instance may be losing events (an outage): until
  // trust(), every token is checked in storage (a revocation on another instance is not
  // missed); a known revocation still refuses without a read.
  void distrust() {
    std::lock_guard g(mu_);
    trusted_ = false;
  }
  // The bus is back: revocations it missed are not in the cache, so forget it and trust
  // what is read from now on.
  void trust() {
    std::lock_guard g(mu_);
    versions_.clear();
    trusted_ = true;
  }

  std::size_t size() const {
    std::lock_guard g(mu_);
    return versions_.size();
  }

 private:
  chat::ChatService& chat_;
  mutable std::mutex mu_;
  BoundedLru<Id, std::int64_t> versions_;
  bool trusted_ = true;
};

}  // namespace parley::api
