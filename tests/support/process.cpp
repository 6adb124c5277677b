#include "tests/support/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace mcb::test {

Child::Child(std::vector<std::string> argv) {
  char tmpl[] = "/tmp/mcb-child-XXXXXX";
  const int log_fd = ::mkstemp(tmpl);
  if (log_fd < 0) throw std::runtime_error("mkstemp failed");
  log_path_ = tmpl;
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // no orphans when a test crashes
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, 0);
    // Nothing else of the test process's: a memcached holding the test's descriptors would serve
    // fewer connections than one started by a shell or systemd.
    ::close_range(3, ~0U, 0);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(log_fd);
}

Child::Child(Child&& other) noexcept
    : pid_(other.pid_), status_(other.status_), log_path_(std::move(other.log_path_)) {
  other.pid_ = -1;
}

Child::~Child() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  if (!log_path_.empty()) ::unlink(log_path_.c_str());
}

bool Child::running() { return !wait_exit(std::chrono::milliseconds(0)).has_value(); }

void Child::signal(int signo) {
  if (pid_ > 0 && !status_) ::kill(pid_, signo);
}

std::optional<int> Child::wait_exit(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  eventually(
      [&] {
        int st = 0;
        const pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
          status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        return status_.has_value();
      },
      timeout);
  return status_;
}

std::string Child::output() const { return read_text_file(log_path_); }

std::optional<std::string> Child::wait_for_output(const std::regex& pattern,
                                                  std::chrono::milliseconds timeout,
                                                  std::size_t from) {
  std::optional<std::string> found;
  eventually(
      [&] {
        const std::string out = output();
        if (from >= out.size()) return false;
        std::smatch m;
        const std::string tail = out.substr(from);
        if (!std::regex_search(tail, m, pattern)) return false;
        found = m.size() > 1 ? m[1].str() : m[0].str();
        return true;
      },
      timeout);
  return found;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/mcb-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  std::string full = path_ + "/" + name;
  std::filesystem::create_directories(std::filesystem::path(full).parent_path());
  std::ofstream(full, std::ios::binary) << content;
  return full;
}

std::string make_fifo(const TempDir& dir, const std::string& name) {
  std::string path = dir.path() + "/" + name;
  if (::mkfifo(path.c_str(), 0600) != 0) {
    throw std::runtime_error("mkfifo " + path + ": " + std::strerror(errno));
  }
  return path;
}

void release_fifo_readers(const std::string& path) {
  // Without a reader waiting, a non-blocking open for writing fails (ENXIO) and changes nothing.
  const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0) ::close(fd);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

CommandResult run_command(const std::string& shell_command) {
  FILE* p = ::popen((shell_command + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

}  // namespace mcb::test
