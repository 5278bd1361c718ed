// A throwaway redis-server for the unit tests of bus/ (redis_bus_test.cpp, redis_kv_test.cpp):
// a free loopback port, the process forked and killed with the test, and a raw PUBLISH.
#pragma once
#include <gtest/gtest.h>
#include <hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace parley::bus::testing {

inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

inline bool redis_installed() { return ::access("/usr/bin/redis-server", X_OK) == 0; }

// A throwaway redis-server on a free port, stopped by the destructor.
struct RedisServer {
  int port = free_port();
  pid_t pid = -1;
  RedisServer() { start(); }
  ~RedisServer() { stop(); }
  void start() {
    pid_t parent = ::getpid();
    pid = ::fork();
    if (pid == 0) {
      // Dies with the test process, also when that one aborts (a sanitizer halting on error).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      std::string p = std::to_string(port);
      ::execl("/usr/bin/redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--loglevel", "warning", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 200; ++i) {  // up to 4 s
      if (redisContext* c = redisConnect("127.0.0.1", port); c && !c->err) {
        redisFree(c);
        return;
      } else if (c) {
        redisFree(c);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "redis-server did not start on port " << port;
  }
  void stop() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
  // Sends one raw PUBLISH (a payload not written by the codec).
  void publish_raw(const std::string& channel, const std::string& payload) {
    redisContext* c = redisConnect("127.0.0.1", port);
    ASSERT_TRUE(c && !c->err);
    auto* r = static_cast<redisReply*>(redisCommand(c, "PUBLISH %b %b", channel.data(), channel.size(), payload.data(), payload.size()));
    ASSERT_TRUE(r);
    freeReplyObject(r);
    redisFree(c);
  }
};

}  // namespace parley::bus::testing
