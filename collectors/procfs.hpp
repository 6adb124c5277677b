#pragma once
// Reading files under /proc and /sys, and splitting their text. Separate from parsing: a reader
// returns the bytes, a pure parser turns them into a struct. Thread-safe.

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/files.hpp"
#include "common/result.hpp"

namespace mcb {

// What is read of one file under /proc or /sys is less than 16 MiB (a /proc/net/dev of 50,000
// devices is about 7 MiB); a file of 16 MiB or more is an error (at once when its size says so,
// else once that much was read), so a device such as /dev/zero left under paths.procfs cannot
// fill the memory.
inline constexpr std::size_t kMaxProcFileBytes = std::size_t{16} << 20;

// Reads a whole file. A missing file is `std::nullopt` (some kernels lack some files, and that
// is not an error); any other failure is an error naming the path. The file is opened without
// blocking and read only if it is a regular file, as every file under /proc and /sys is: a FIFO
// or a device is an error ("/host/proc/stat: is a FIFO, not a regular file"), as is one of
// kMaxProcFileBytes or more.
Result<std::optional<std::string>> read_optional_file(const std::string& path);

// The same, where the errno values in `absent` (from opening or reading) also mean "no value":
// sysfs attributes that a driver cannot report fail with EINVAL on read.
Result<std::optional<std::string>> read_optional_file(const std::string& path,
                                                      std::initializer_list<int> absent);

// Reads a whole file; a missing file is an error too.
Result<std::string> read_file(const std::string& path);

// One file under /proc read again and again through one descriptor: each read starts at offset
// 0 (pread: the kernel formats the file anew) into a buffer kept between reads, so a reading
// every second costs no open, no close and no allocation. The descriptor is opened at the first
// read and again after a failure. A /proc/net file read this way stays bound to the network
// namespace of the thread that opened it, as an open file always is. Not thread-safe: one owner.
class ProcFile {
 public:
  // `capacity`: the buffer's first size, grown as the file needs.
  explicit ProcFile(std::string path, std::size_t capacity = 16384)
      : path_(std::move(path)), capacity_(capacity) {}
  ProcFile(const ProcFile&) = delete;
  ProcFile& operator=(const ProcFile&) = delete;

  // The whole file; the view is valid until the next read. A missing file is an error naming
  // the path, as read_file() has it; so are a file that is not a regular file and one of
  // kMaxProcFileBytes or more, as read_optional_file() has them.
  Result<std::string_view> read();
  // The errno of the last read's failure (ENOENT for a missing file, ESRCH for a process or
  // thread that ended while its file was open); 0 after a good read.
  int error_number() const { return errno_; }

  // Opens the descriptor now if it is not open (read() does so itself): for a file that must be
  // opened by another thread, one inside another network namespace (collectors/netns.hpp).
  // Errors as read().
  Status open();
  bool is_open() const { return fd_.valid(); }
  void close();

  const std::string& path() const { return path_; }

 private:
  Error failed(int err);

  std::string path_;
  FileDescriptor fd_;
  int errno_ = 0;
  std::size_t capacity_;
  std::string buffer_;
};

// Pure: the words of a line of a /proc table, separated by runs of spaces or tabs. The views
// point into `line`.
std::vector<std::string_view> split_words(std::string_view line);

}  // namespace mcb
