// The server under test as seen by the load generator: a throwaway `parley serve` child
// process (started, pinned, stopped), and what /proc tells about any process (RSS, CPU).
// No Beast or Asio here, so that this file compiles fast.
#pragma once

#include <sys/types.h>

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

// A `parley serve` child on a free loopback port and a fresh SQLite file in a temporary
// directory. The destructor stops it (SIGTERM, then SIGKILL after 15 s) and removes the
// directory; the child also gets SIGTERM if this process dies first (PR_SET_PDEATHSIG).
class ServerProcess {
 public:
  // Starts BIN serve with `args` appended to the defaults (a default whose flag appears in
  // `args` is dropped). Waits up to `startup_timeout_s` for the "listening on" line.
  // Throws std::runtime_error when it does not start.
  ServerProcess(const std::string& bin, const std::vector<std::string>& args, int cpu, double startup_timeout_s);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& url() const { return url_; }          // http://127.0.0.1:PORT
  const std::string& command() const { return command_; }  // for the parameters printout
  // SIGTERM and wait; returns the exit status as a shell would show it (-1: unknown).
  int stop();

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string dir_, url_, command_;
  std::thread drain_;  // copies the child's stdout after the listening line to our stderr
  int status_ = -1;
};

}  // namespace parley::bench
