// The server under test as seen by the load generator: a throwaway `parley serve` child
// process (started, pinned, stopped), and what /proc tells about any process (RSS, CPU).
// No Beast or Asio here, so that this file compiles fast.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace parley::bench {

// Resident set size (VmRSS) of a process in KiB, or -1 when it cannot be read.
long rss_kib(pid_t pid);
// User + system CPU seconds a process has used so far (all its threads); pid 0 = this process.
double cpu_seconds(pid_t pid);
// Pins the calling thread (and threads it creates later) to one CPU; false on failure.
bool pin_to_cpu(int cpu);
// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit.
long raise_fd_limit();

// A child process under test: started from argv (argv[0] looked up in PATH unless it holds a
// '/'), pinned to a CPU, stdout read until `find_url` finds the address it listens on in what
// it printed so far, then copied to our stderr. Stopped with SIGTERM (SIGKILL after 15 s) by
// stop() or the destructor; it also gets SIGTERM if this process dies first (PR_SET_PDEATHSIG).
class ChildProcess {
 public:
  // find_url: the http://HOST:PORT the output announces, or "" while it has not yet.
  // `what` names it in errors ("the server", "the peer"). Throws std::runtime_error when it
  // exits or announces nothing within `startup_timeout_s`.
  ChildProcess(std::vector<std::string> argv, int cpu, double startup_timeout_s, std::string what,
               const std::function<std::string(const std::string& out)>& find_url);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& url() const { return url_; }          // http://127.0.0.1:PORT
  const std::string& command() const { return command_; }  // for the parameters printout
  // SIGTERM and wait; returns the exit status as a shell would show it (-1: unknown).
  int stop();

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string what_, url_, command_;
  std::thread drain_;  // copies the child's stdout after the listening line to our stderr
  int status_ = -1;
};

// A `parley serve` child on a free loopback port and a fresh SQLite file in a temporary
// directory, which stop() and the destructor remove after stopping it.
class ServerProcess {
 public:
  // Starts BIN serve with `args` appended to the defaults (a default whose flag appears in
  // `args` is dropped). Waits up to `startup_timeout_s` for the "listening on" line.
  ServerProcess(const std::string& bin, const std::vector<std::string>& args, int cpu, double startup_timeout_s);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  pid_t pid() const { return child_->pid(); }
  const std::string& url() const { return child_->url(); }
  const std::string& command() const { return child_->command(); }
  int stop();

 private:
  std::string dir_;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace parley::bench
