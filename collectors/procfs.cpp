#include "collectors/procfs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/text.hpp"

namespace mcb {

Result<std::optional<std::string>> read_optional_file(const std::string& path) {
  return read_optional_file(path, {});
}

Result<std::optional<std::string>> read_optional_file(const std::string& path,
                                                      std::initializer_list<int> absent) {
  const auto is_absent = [absent](int err) {
    return err == ENOENT || err == ENOTDIR ||
           std::find(absent.begin(), absent.end(), err) != absent.end();
  };
  // open/read rather than ifstream: proc files report size 0, and errno must survive. O_NONBLOCK:
  // a FIFO left under paths.procfs or paths.sysfs reads as empty instead of holding the loop
  // (proc and sysfs files ignore the flag).
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    if (is_absent(errno)) return std::optional<std::string>{};
    return fail(escape_untrusted(path, 4096) + ": " + std::strerror(errno));
  }
  std::string out;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      if (is_absent(err)) return std::optional<std::string>{};
      return fail(escape_untrusted(path, 4096) + ": " + std::strerror(err));
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return std::optional<std::string>{std::move(out)};
}

Result<std::string> read_file(const std::string& path) {
  auto r = read_optional_file(path);
  if (!r) return r.error();
  if (!r->has_value()) return fail(escape_untrusted(path, 4096) + ": no such file");
  return std::move(**r);
}

ProcFile::~ProcFile() { close(); }

void ProcFile::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Error ProcFile::failed(int err) {
  close();
  errno_ = err;
  if (err == ENOENT || err == ENOTDIR)
    return fail(escape_untrusted(path_, 4096) + ": no such file");
  return fail(escape_untrusted(path_, 4096) + ": " + std::strerror(err));
}

Status ProcFile::open() {
  if (fd_ >= 0) return ok_status();
  // O_NONBLOCK as in read_optional_file.
  fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd_ < 0) return failed(errno);
  if (buffer_.empty()) buffer_.resize(capacity_);
  return ok_status();
}

Result<std::string_view> ProcFile::read() {
  if (auto opened = open(); !opened) return opened.error();
  std::size_t size = 0;
  for (;;) {
    if (size == buffer_.size()) buffer_.resize(buffer_.size() * 2);
    const ssize_t n =
        ::pread(fd_, buffer_.data() + size, buffer_.size() - size, static_cast<off_t>(size));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return failed(errno);
    }
    size += static_cast<std::size_t>(n);
  }
  errno_ = 0;
  return std::string_view(buffer_.data(), size);
}

std::vector<std::string_view> split_words(std::string_view line) {
  const auto blank = [](char c) { return c == ' ' || c == '\t'; };
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && blank(line[i])) ++i;
    const std::size_t start = i;
    while (i < line.size() && !blank(line[i])) ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

}  // namespace mcb
