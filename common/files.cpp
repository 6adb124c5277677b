#include "common/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mcb {

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

int FileDescriptor::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

std::string_view file_kind(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "a file of an unknown kind";
}

FileDescriptor open_nonblocking(const std::string& path, struct stat& status, int& error) {
  error = 0;
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid() || ::fstat(fd.get(), &status) != 0) {
    error = errno;
    return FileDescriptor();
  }
  return fd;
}

Result<FileDescriptor> open_regular_file(const std::string& path) {
  struct stat status {};
  int error = 0;
  FileDescriptor fd = open_nonblocking(path, status, error);
  if (!fd.valid()) return fail(std::string("cannot open: ") + std::strerror(error));
  if (!S_ISREG(status.st_mode)) {
    return fail("is " + std::string(file_kind(status.st_mode)) + ", not a regular file");
  }
  return fd;
}

Result<std::string> read_regular_file(const std::string& path, std::size_t max_bytes,
                                      std::string_view what) {
  auto fd = open_regular_file(path);
  if (!fd) return fd.error();
  // One byte past the limit tells a file that is too large from one that fits exactly.
  std::string text(max_bytes + 1, '\0');
  std::size_t size = 0;
  while (size < text.size()) {
    const ssize_t n = ::read(fd->get(), text.data() + size, text.size() - size);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(std::string("cannot read: ") + std::strerror(errno));
    }
    size += static_cast<std::size_t>(n);
  }
  if (size > max_bytes) {
    return fail("larger than " + std::to_string(max_bytes >> 10) + " KiB; " + std::string(what) +
                " is at most " + std::to_string(max_bytes) + " bytes");
  }
  text.resize(size);
  return text;
}

}  // namespace mcb
