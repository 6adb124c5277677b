#include "collectors/procfs.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/files.hpp"
#include "common/text.hpp"

namespace mcb {

Result<std::optional<std::string>> read_optional_file(const std::string& path) {
  return read_optional_file(path, {});
}

namespace {

std::string where(const std::string& path) { return escape_untrusted(path, 4096) + ": "; }

// Why a file under /proc or /sys that opened as `status` is not read: files there are regular
// files (of size 0); anything else under paths.procfs or paths.sysfs (a FIFO, a device such as
// /dev/zero, whose reads never end) is a mistake that would hold the loop or fill the memory.
std::string not_regular(const struct stat& status) {
  return "is " + std::string(file_kind(status.st_mode)) + ", not a regular file";
}

// A file under /proc or /sys reports size 0; one whose size already says it is too large is refused
// before a byte is read.
bool known_too_large(const struct stat& status) {
  return status.st_size >= static_cast<off_t>(kMaxProcFileBytes);
}

std::string too_large() {
  return std::to_string(kMaxProcFileBytes >> 20) +
         " MiB or more, more than is read of a file under /proc or /sys";
}

}  // namespace

Result<std::optional<std::string>> read_optional_file(const std::string& path,
                                                      std::initializer_list<int> absent) {
  const auto is_absent = [absent](int err) {
    return err == ENOENT || err == ENOTDIR ||
           std::find(absent.begin(), absent.end(), err) != absent.end();
  };
  // open/read rather than ifstream: proc files report size 0, and errno must survive.
  struct stat status {};
  int error = 0;
  const FileDescriptor fd = open_nonblocking(path, status, error);
  if (!fd.valid()) {
    if (is_absent(error)) return std::optional<std::string>{};
    return fail(where(path) + std::strerror(error));
  }
  if (!S_ISREG(status.st_mode)) return fail(where(path) + not_regular(status));
  if (known_too_large(status)) return fail(where(path) + too_large());
  std::string out;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (is_absent(errno)) return std::optional<std::string>{};
      return fail(where(path) + std::strerror(errno));
    }
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() >= kMaxProcFileBytes) return fail(where(path) + too_large());
  }
  return std::optional<std::string>{std::move(out)};
}

Result<std::string> read_file(const std::string& path) {
  auto r = read_optional_file(path);
  if (!r) return r.error();
  if (!r->has_value()) return fail(escape_untrusted(path, 4096) + ": no such file");
  return std::move(**r);
}

void ProcFile::close() { fd_ = FileDescriptor(); }

Error ProcFile::failed(int err) {
  close();
  errno_ = err;
  if (err == ENOENT || err == ENOTDIR) return fail(where(path_) + "no such file");
  return fail(where(path_) + std::strerror(err));
}

Status ProcFile::open() {
  if (fd_.valid()) return ok_status();
  struct stat status {};
  int error = 0;
  fd_ = open_nonblocking(path_, status, error);
  if (!fd_.valid()) return failed(error);
  if (const bool regular = S_ISREG(status.st_mode); !regular || known_too_large(status)) {
    close();
    errno_ = regular ? EFBIG : EINVAL;
    return fail(where(path_) + (regular ? too_large() : not_regular(status)));
  }
  if (buffer_.empty()) buffer_.resize(capacity_);
  return ok_status();
}

Result<std::string_view> ProcFile::read() {
  if (auto opened = open(); !opened) return opened.error();
  std::size_t size = 0;
  for (;;) {
    if (size == buffer_.size()) {
      if (size >= kMaxProcFileBytes) {
        close();
        buffer_ = std::string();  // not kept at 16 MiB: open() gives it its first size again
        errno_ = EFBIG;
        return fail(where(path_) + too_large());
      }
      buffer_.resize(buffer_.size() * 2);
    }
    const ssize_t n =
        ::pread(fd_.get(), buffer_.data() + size, buffer_.size() - size, static_cast<off_t>(size));
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
  words.reserve(20);  // the longest line read every sample, /proc/net/dev's, has 17
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
