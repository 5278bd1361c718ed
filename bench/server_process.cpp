#include "server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace parley::bench {

long rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

double cpu_seconds(pid_t pid) {
  std::ifstream f(pid == 0 ? std::string("/proc/self/stat") : "/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return -1;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  double ticks = 0;
  // After ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
  for (int i = 3; i <= 15 && in >> field; ++i)
    if (i == 14 || i == 15) ticks += std::strtod(field.c_str(), nullptr);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

bool pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

long raise_fd_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return -1;
  if (r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_NOFILE, &r);
  }
  return static_cast<long>(r.rlim_cur);
}

namespace {
bool has_flag(const std::vector<std::string>& args, const std::string& flag) {
  for (const auto& a : args)
    if (a == flag || a.rfind(flag + "=", 0) == 0) return true;
  return false;
}
}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv, int cpu, double startup_timeout_s, std::string what,
                           const std::function<std::string(const std::string& out)>& find_url)
    : what_(std::move(what)) {
  if (argv.empty()) throw std::runtime_error("empty command for " + what_);
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
    if (cpu >= 0 && !pin_to_cpu(cpu))
      std::fprintf(stderr, "parley-bench: cannot pin %s to CPU %d\n", what_.c_str(), cpu);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execvp(cargv[0], cargv.data());
    std::fprintf(stderr, "parley-bench: exec %s: %s\n", cargv[0], std::strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  out_fd_ = fds[0];

  // Read stdout until the address is announced (or exit, or timeout).
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(startup_timeout_s);
  while ((url_ = find_url(out)).empty()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      stop();
      throw std::runtime_error(what_ + " announced no listening address within the start-up timeout: " + command_);
    }
    pollfd p{out_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = read(out_fd_, buf, sizeof buf);
    if (n <= 0) {
      stop();
      throw std::runtime_error(what_ + " exited before listening (status " + std::to_string(status_) +
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

int ChildProcess::stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int st = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    pid_t r;
    while ((r = waitpid(pid_, &st, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) usleep(10000);
    if (r == 0) {
      std::fprintf(stderr, "parley-bench: %s did not stop within 15 s of SIGTERM; killing it\n", what_.c_str());
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

ChildProcess::~ChildProcess() { stop(); }

ServerProcess::ServerProcess(const std::string& bin, const std::vector<std::string>& args, int cpu,
                             double startup_timeout_s) {
  char tmpl[] = "/tmp/parley-bench-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  dir_ = tmpl;
  std::vector<std::string> argv{bin, "serve"};
  const std::pair<std::string, std::string> defaults[] = {
      {"--listen", "127.0.0.1:0"},       {"--db", "sqlite:" + dir_ + "/parley.db"},
      {"--rate-limit-per-sec", "0"},     {"--ws-cooldown-ms", "0"},
      {"--max-connections-per-ip", "0"}, {"--ws-inbound-per-sec", "100000"},
      {"--ws-inbound-burst", "100000"},  {"--log-level", "warn"}};
  for (const auto& [flag, value] : defaults)
    if (!has_flag(args, flag)) argv.insert(argv.end(), {flag, value});
  argv.insert(argv.end(), args.begin(), args.end());
  auto find_url = [](const std::string& out) -> std::string {
    const std::string marker = "listening on http://";
    auto pos = out.find(marker);
    if (pos == std::string::npos) return "";
    auto end = out.find_first_of(" \r\n", pos + marker.size());
    if (end == std::string::npos) return "";
    return out.substr(pos + marker.size() - 7, end - pos - marker.size() + 7);
  };
  try {
    child_ = std::make_unique<ChildProcess>(std::move(argv), cpu, startup_timeout_s, "the server", find_url);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    throw;
  }
}

int ServerProcess::stop() {
  int st = child_->stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }
  return st;
}

ServerProcess::~ServerProcess() { stop(); }

}  // namespace parley::bench
