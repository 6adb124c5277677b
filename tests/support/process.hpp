#pragma once
// A child process for tests: started with fork/exec, its stdout and stderr captured to a file
// the test can read and wait on. Killed and reaped when the handle goes away. One thread only.

#include <sys/types.h>
#include <time.h>

#include <chrono>
#include <future>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace mcb::test {

class Child {
 public:
  // Starts argv[0] (a path) with the rest as arguments. Throws if it cannot be started.
  explicit Child(std::vector<std::string> argv);
  ~Child();
  Child(Child&& other) noexcept;
  Child& operator=(Child&&) = delete;
  Child(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int signo);

  // The exit status: the exit code, or 128 + signal for a process killed by a signal; nullopt if
  // it is still running after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

  // Everything the child wrote to stdout and stderr so far.
  std::string output() const;

  // Waits until the output matches `pattern` (searching from byte `from`); returns the first
  // capture group (or the whole match), or nullopt after `timeout`.
  std::optional<std::string> wait_for_output(const std::regex& pattern,
                                             std::chrono::milliseconds timeout,
                                             std::size_t from = 0);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

// Polls `condition` every 20 ms until it holds or `timeout` passes. A wait, not a timing
// assertion: the timeout only bounds how long a broken build takes to fail.
template <class F>
bool eventually(F&& condition, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    struct timespec ts {
      0, 20'000'000
    };
    ::nanosleep(&ts, nullptr);
  }
}

// A fresh directory under $TMPDIR (or /tmp), removed with its contents when the handle goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `content` to path()/name and returns the full path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

std::string read_text_file(const std::string& path);

// Makes a FIFO `name` in `dir` (mkfifo) and returns its path: what a test names where a file is
// expected, to check that it is refused rather than waited on. Throws when mkfifo fails.
std::string make_fifo(const TempDir& dir, const std::string& name);

// Opens the FIFO `path` for writing and closes it again, so that an open(2) of it that waits for
// a writer returns (and its reader then reads the end of the file). Nothing when no one waits.
void release_fifo_readers(const std::string& path);

// Runs `f` on a thread of its own and returns what it returns; nullopt when `f` was held past
// `bound` waiting on the FIFO `fifo` (it was then released, so the test fails instead of hanging).
// A bound on a hang, not a timing assertion.
template <class F>
auto unless_held(const std::string& fifo, F f,
                 std::chrono::milliseconds bound = std::chrono::seconds(30))
    -> std::optional<decltype(f())> {
  auto done = std::async(std::launch::async, std::move(f));
  if (done.wait_for(bound) == std::future_status::ready) return done.get();
  while (done.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    release_fifo_readers(fifo);
  }
  (void)done.get();  // held past the bound: its value is not wanted
  return std::nullopt;
}

// Runs a shell command and returns its exit code and combined output.
struct CommandResult {
  int exit_code;
  std::string output;
};
CommandResult run_command(const std::string& shell_command);

}  // namespace mcb::test
