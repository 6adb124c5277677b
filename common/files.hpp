#pragma once
// Opening files that a configuration, a flag or another process names, so that none can hold the
// caller: open(2) of a FIFO waits for a writer (for ever, when none comes), and a FIFO or a
// device never ends a read. Every such file is opened with O_NONBLOCK, which returns at once
// whatever the file is, and the descriptor itself is then checked with fstat(2), so what is read
// is what was checked (no race with a file replaced between a stat and the open). Used for the
// configuration and web configuration files, the TLS files, the network namespace files
// (collectors/netns.hpp) and the files discovery reads in a pod's root. Thread-safe (no state).

#include <sys/stat.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace mcb {

// Owns a file descriptor and closes it when it goes out of scope. Move-only; not thread-safe.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor();
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives the descriptor up to the caller, who closes it.
  int release();

 private:
  int fd_ = -1;
};

// What kind of file `mode` (st_mode) is, for messages: "a regular file", "a directory", "a FIFO",
// "a socket", "a character device", "a block device", "a symbolic link", else "a file of an
// unknown kind".
std::string_view file_kind(mode_t mode);

// Opens `path` read-only without blocking, whatever it is (O_NONBLOCK; O_NOCTTY, so a terminal
// never becomes the daemon's; O_CLOEXEC), and fills `status` from the descriptor. On failure the
// descriptor is invalid and `error` holds errno (of open or fstat). For callers that check more
// than the kind of file, such as a network namespace file; others use open_regular_file().
FileDescriptor open_nonblocking(const std::string& path, struct stat& status, int& error);

// open_nonblocking(), and only a regular file is kept. The error is the reason alone, for the
// caller to prefix with where the path came from and the path: "cannot open: No such file or
// directory", "is a FIFO, not a regular file".
Result<FileDescriptor> open_regular_file(const std::string& path);

// The whole of the regular file `path`, read through open_regular_file(). A file larger than
// `max_bytes` is refused, read no further than one byte past it: "larger than 256 KiB; <what> is
// at most 262144 bytes". Errors as open_regular_file(), and "cannot read: <reason>".
Result<std::string> read_regular_file(const std::string& path, std::size_t max_bytes,
                                      std::string_view what);

}  // namespace mcb
