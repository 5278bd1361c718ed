#include "peer_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "server_process.h"

namespace parley::bench {

#ifndef PARLEY_BENCH_PEERS_DIR
#define PARLEY_BENCH_PEERS_DIR "bench/peers"
#endif
const char* default_peers_dir() { return PARLEY_BENCH_PEERS_DIR; }

std::vector<std::string> split_command(const std::string& cmd) {
  std::vector<std::string> out;
  std::string word;
  for (char c : cmd) {
    if (c == ' ' || c == '\t') {
      if (!word.empty()) out.push_back(std::move(word));
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

PeerProcess::PeerProcess(std::vector<std::string> argv, int cpu, double startup_timeout_s) {
  if (argv.empty()) throw std::runtime_error("empty peer command");
  argv.insert(argv.end(), {"--port", "0"});
  for (const auto& a : argv) command_ += (command_.empty() ? "" : " ") + a;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    dup2(fds[1], STDOUT_FILENO);
    if (cpu >= 0 && !pin_to_cpu(cpu)) std::fprintf(stderr, "parley-bench: cannot pin the peer to CPU %d\n", cpu);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execvp(cargv[0], cargv.data());
    std::fprintf(stderr, "parley-bench: exec %s: %s\n", cargv[0], std::strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  out_fd_ = fds[0];

  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(startup_timeout_s);
  const std::string marker = "LISTENING port=";
  for (;;) {
    auto pos = out.find(marker);
    if (pos != std::string::npos) {
      auto end = out.find('\n', pos);
      if (end != std::string::npos) {
        std::string port = out.substr(pos + marker.size(), end - pos - marker.size());
        url_ = "http://127.0.0.1:" + port;
        break;
      }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      stop();
      throw std::runtime_error("the peer printed no LISTENING line within the start-up timeout: " + command_);
    }
    pollfd p{out_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = read(out_fd_, buf, sizeof buf);
    if (n <= 0) {
      stop();
      throw std::runtime_error("the peer exited before listening (status " + std::to_string(status_) +
                               "): " + command_);
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  drain_ = std::thread([fd = out_fd_] {
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
      if (write(STDERR_FILENO, buf, static_cast<std::size_t>(n)) < 0) break;
  });
}

int PeerProcess::stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int st = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    pid_t r;
    while ((r = waitpid(pid_, &st, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) usleep(10000);
    if (r == 0) {
      std::fprintf(stderr, "parley-bench: the peer did not stop within 15 s of SIGTERM; killing it\n");
      kill(pid_, SIGKILL);
      r = waitpid(pid_, &st, 0);
    }
    if (r == pid_) status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    pid_ = -1;
  }
  if (drain_.joinable()) drain_.join();
  if (out_fd_ >= 0) {
    close(out_fd_);
    out_fd_ = -1;
  }
  return status_;
}

PeerProcess::~PeerProcess() { stop(); }

}  // namespace parley::bench
