#include "bus/redis_presence.h"

#include <spdlog/spdlog.h>

namespace parley::bus {

namespace {

constexpr std::int64_t kKeepOfflineMs = 24 * 3600 * 1000;

// Every script: ARGV[1] the key prefix; the keys are built inside (one Redis, not a cluster).
// alive(p, h): whether an instance with a live lease holds a connection of the user of hash h
// (fields of instances whose lease expired are removed on the way).
#define PRESENCE_ALIVE                                                              \
  "local function alive(p, h)\n"                                                    \
  "  local f = redis.call('HKEYS', h)\n"                                            \
  "  local any = false\n"                                                           \
  "  for _, k in ipairs(f) do\n"                                                    \
  "    if string.sub(k, 1, 2) == 'i:' then\n"                                       \
  "      if redis.call('EXISTS', p .. 'pr:lease:' .. string.sub(k, 3)) == 1 then\n" \
  "        any = true\n"                                                            \
  "      else\n"                                                                    \
  "        redis.call('HDEL', h, k)\n"                                              \
  "      end\n"                                                                     \
  "    end\n"                                                                       \
  "  end\n"                                                                         \
  "  return any\n"                                                                  \
  "end\n"

// ARGV: prefix, instance, user, lease ms. 1: announce online.
const char* const kHere =
    "local p, inst, user = ARGV[1], ARGV[2], ARGV[3]\n"
    "local lease = p .. 'pr:lease:' .. inst\n"
    "if redis.call('EXISTS', lease) == 0 then\n"
    "  redis.call('SET', lease, 1, 'PX', ARGV[4])\n"
    "  redis.call('SADD', p .. 'pr:instances', inst)\n"
    "end\n"
    "local h = p .. 'pr:u:' .. user\n"
    "redis.call('HSET', h, 'i:' .. inst, 1)\n"
    "redis.call('HINCRBY', h, 'g', 1)\n"
    "redis.call('PERSIST', h)\n"
    "redis.call('SADD', p .. 'pr:i:' .. inst, user)\n"
    "redis.call('ZREM', p .. 'pr:pending', user)\n"
    "if redis.call('HGET', h, 's') == '1' then return 0 end\n"
    "redis.call('HSET', h, 's', '1')\n"
    "return 1\n";

// ARGV: prefix, instance, user, now, when a sweep may settle the grace. The mark, or -1 while
// another instance holds a connection.
const char* const kGone = PRESENCE_ALIVE
    "local p, inst, user = ARGV[1], ARGV[2], ARGV[3]\n"
    "local h = p .. 'pr:u:' .. user\n"
    "redis.call('HDEL', h, 'i:' .. inst)\n"
    "redis.call('SREM', p .. 'pr:i:' .. inst, user)\n"
    "if alive(p, h) then return -1 end\n"
    "local g = redis.call('HINCRBY', h, 'g', 1)\n"
    "redis.call('HSET', h, 'z', ARGV[4])\n"
    "redis.call('ZADD', p .. 'pr:pending', ARGV[5], user)\n"
    "return g\n";

// ARGV: prefix, user, mark, keep ms. 1: announce offline (unless offline was announced last:
// a status Redis lost, by a restart, counts as online, and receivers drop a repeat).
const char* const kSettle =
    "local p, user = ARGV[1], ARGV[2]\n"
    "local h = p .. 'pr:u:' .. user\n"
    "if tonumber(redis.call('HGET', h, 'g') or '0') ~= tonumber(ARGV[3]) then return 0 end\n"
    "redis.call('ZREM', p .. 'pr:pending', user)\n"
    "redis.call('PEXPIRE', h, ARGV[4])\n"
    "if redis.call('HGET', h, 's') == '0' then return 0 end\n"
    "redis.call('HSET', h, 's', '0')\n"
    "return 1\n";

// ARGV: prefix, user.
const char* const kOnline = "return redis.call('HGET', ARGV[1] .. 'pr:u:' .. ARGV[2], 's') == '1' and 1 or 0\n";

// ARGV: prefix, instance, now, lease ms, grace + slack ms, keep ms, limit. [own lease held
// (0/1), n, then n/2 (user, mark) of the graces started for a gone instance's users, then
// (user, last_seen) of the users to announce offline].
const char* const kSweep = PRESENCE_ALIVE
    "local p, inst, now = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
    "local pending = p .. 'pr:pending'\n"
    "local mine = redis.call('EXISTS', p .. 'pr:lease:' .. inst)\n"
    "redis.call('SET', p .. 'pr:lease:' .. inst, 1, 'PX', ARGV[4])\n"
    "redis.call('SADD', p .. 'pr:instances', inst)\n"
    "local started = {}\n"
    "for _, x in ipairs(mine == 1 and redis.call('SMEMBERS', p .. 'pr:instances') or {}) do\n"
    "  if redis.call('EXISTS', p .. 'pr:lease:' .. x) == 0 then\n"
    "    local set = p .. 'pr:i:' .. x\n"
    "    for _, user in ipairs(redis.call('SMEMBERS', set)) do\n"
    "      local h = p .. 'pr:u:' .. user\n"
    "      redis.call('HDEL', h, 'i:' .. x)\n"
    "      if not alive(p, h) then\n"
    "        table.insert(started, tonumber(user))\n"
    "        table.insert(started, redis.call('HINCRBY', h, 'g', 1))\n"
    "        redis.call('HSET', h, 'z', now)\n"
    "        redis.call('ZADD', pending, now + tonumber(ARGV[5]), user)\n"
    "      end\n"
    "    end\n"
    "    redis.call('DEL', set)\n"
    "    redis.call('SREM', p .. 'pr:instances', x)\n"
    "  end\n"
    "end\n"
    "local out = {mine, #started}\n"
    "for _, v in ipairs(started) do table.insert(out, v) end\n"
    "for _, user in ipairs(redis.call('ZRANGEBYSCORE', pending, '-inf', now, 'LIMIT', 0, tonumber(ARGV[7]))) do\n"
    "  redis.call('ZREM', pending, user)\n"
    "  local h = p .. 'pr:u:' .. user\n"
    "  if redis.call('HGET', h, 's') ~= '0' then\n"
    "    redis.call('HSET', h, 's', '0')\n"
    "    redis.call('PEXPIRE', h, ARGV[6])\n"
    "    table.insert(out, tonumber(user))\n"
    "    table.insert(out, tonumber(redis.call('HGET', h, 'z') or now))\n"
    "  end\n"
    "end\n"
    "return out\n";

}  // namespace

RedisPresenceLedger::RedisPresenceLedger(RedisKv& kv, RedisPresenceOptions opts) : kv_(kv), opts_(std::move(opts)) {}

std::optional<std::vector<std::int64_t>> RedisPresenceLedger::run(const char* script, std::vector<std::string> args) {
  args.insert(args.begin(), kv_.prefix());
  std::string problem;
  auto r = kv_.eval(script, {}, args, &problem);
  if (r) {
    if (down_.exchange(false)) spdlog::info("presence: {} answers again; presence is shared again", kv_.where());
    return r;
  }
  if (!down_.exchange(true))
    spdlog::warn("presence: {}; each instance decides from its own connections until it is back", problem);
  return std::nullopt;
}

bool RedisPresenceLedger::here(Id user, TimeMs now) {
  {
    std::lock_guard g(mu_);
    here_.insert(user);
    owed_.erase(user);  // connected here again: what Redis holds of it here is true again
  }
  if (auto r = run(kHere, {opts_.instance, std::to_string(user), std::to_string(opts_.lease.count())});
      r && !r->empty()) {
    local_.forget(user);  // what an outage left here of the user is over
    return r->front() == 1;
  }
  return local_.here(user, now);
}

std::optional<chat::PresenceMark> RedisPresenceLedger::gone(Id user, TimeMs now) {
  {
    std::lock_guard g(mu_);
    here_.erase(user);
  }
  // Connected here while Redis was away: it ends as it began, and Redis is told later.
  if (auto m = local_.gone(user, now)) {
    owe(user, now);
    return -*m;
  }
  auto due = now + opts_.grace.count() + opts_.slack.count();
  if (auto r = run(kGone, {opts_.instance, std::to_string(user), std::to_string(now), std::to_string(due)});
      r && !r->empty()) {
    if (r->front() < 0) return std::nullopt;
    return r->front();
  }
  owe(user, now);  // Redis away: told by the first sweep it answers
  return std::nullopt;
}

void RedisPresenceLedger::owe(Id user, TimeMs at) {
  std::lock_guard g(mu_);
  owed_[user] = at;
}

bool RedisPresenceLedger::settle(Id user, chat::PresenceMark mark) {
  if (mark < 0) return local_.settle(user, -mark);
  if (auto r = run(kSettle, {std::to_string(user), std::to_string(mark), std::to_string(kKeepOfflineMs)});
      r && !r->empty())
    return r->front() == 1;
  return false;  // Redis away: a later sweep settles it (the pending entry is still there)
}

bool RedisPresenceLedger::online(Id user) {
  if (auto r = run(kOnline, {std::to_string(user)}); r && !r->empty()) return r->front() == 1;
  return local_.online(user);
}

chat::PresenceLedger::Sweep RedisPresenceLedger::sweep(TimeMs now) {
  Sweep out;
  bool recovering = down_.load();
  auto r = run(
      kSweep, {opts_.instance, std::to_string(now), std::to_string(opts_.lease.count()),
               std::to_string((opts_.grace + opts_.slack).count()), std::to_string(kKeepOfflineMs),
               std::to_string(opts_.sweep_limit)});
  if (!r || r->empty()) return out;
  bool lease_held = r->front() == 1;
  std::size_t n = r->size() > 1 ? static_cast<std::size_t>((*r)[1]) : 0;
  std::size_t i = 2;
  for (; i + 1 < r->size() && i < 2 + n; i += 2) out.graces.emplace_back((*r)[i], (*r)[i + 1]);
  for (; i + 1 < r->size(); i += 2) out.offline.emplace_back((*r)[i], (*r)[i + 1]);
  // Last connections here that closed while Redis was away: their grace has passed by now
  // (an outage outlasts it, or nearly), so gone and settle at once.
  std::unordered_map<Id, TimeMs> owed;
  std::vector<Id> here;
  {
    std::lock_guard g(mu_);
    owed.swap(owed_);
    if (recovering || !lease_held) here.assign(here_.begin(), here_.end());
  }
  for (auto it = owed.begin(); it != owed.end();) {
    auto [user, at] = *it;
    auto g = run(kGone, {opts_.instance, std::to_string(user), std::to_string(at), std::to_string(now)});
    if (!g || g->empty()) break;  // away again: the rest stay owed
    if (g->front() > 0) {
      auto st = run(kSettle, {std::to_string(user), std::to_string(g->front()), std::to_string(kKeepOfflineMs)});
      if (st && !st->empty() && st->front() == 1) out.offline.emplace_back(user, at);
    }
    it = owed.erase(it);
  }
  if (!owed.empty()) {
    std::lock_guard g(mu_);
    for (const auto& [user, at] : owed) owed_.try_emplace(user, at);
  }
  // After an outage, or once this instance's lease had expired (others may have undone its
  // users meanwhile): its users are counted in Redis again, and announced online where Redis
  // lost or dropped their status (receivers drop a repeat).
  for (Id user : here) {
    auto h = run(kHere, {opts_.instance, std::to_string(user), std::to_string(opts_.lease.count())});
    if (!h || h->empty()) break;
    local_.forget(user);
    if (h->front() == 1) out.online.push_back(user);
  }
  return out;
}

}  // namespace parley::bus
