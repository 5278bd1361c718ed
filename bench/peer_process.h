// A peer server under test (bench/peers/: Node `ws`, Socket.IO) as a child process: started
// from a command line with `--port 0` appended, pinned to a CPU, its port read from the
// "LISTENING port=N" line it prints, stopped with SIGTERM. No Beast or Asio here.
#pragma once

#include <sys/types.h>

#include <string>
#include <thread>
#include <vector>

namespace parley::bench {

class PeerProcess {
 public:
  // Runs argv (argv[0] looked up in PATH) with "--port 0" appended; waits up to
  // `startup_timeout_s` for the LISTENING line. Throws std::runtime_error when it does not start.
  PeerProcess(std::vector<std::string> argv, int cpu, double startup_timeout_s);
  ~PeerProcess();
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& url() const { return url_; }  // http://127.0.0.1:PORT
  const std::string& command() const { return command_; }
  // SIGTERM and wait (SIGKILL after 15 s); the exit status as a shell shows it (-1: unknown).
  int stop();

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string url_, command_;
  std::thread drain_;  // copies the child's later stdout to our stderr
  int status_ = -1;
};

// bench/peers/ of the source tree this binary was built from.
const char* default_peers_dir();

// Splits a command line on spaces and tabs (no quoting); empty words are dropped.
std::vector<std::string> split_command(const std::string& cmd);

}  // namespace parley::bench
