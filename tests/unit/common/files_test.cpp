// Files named from outside are opened without blocking and kept only when regular: a FIFO, a
// directory or a device is refused at once with what it is; a missing file says so; a regular file
// is read whole up to its limit.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include "common/files.hpp"
#include "tests/support/process.hpp"

using namespace mcb;

TEST_CASE("files: a FIFO is refused at once, not waited on for a writer", "[common][files]") {
  test::TempDir dir;
  const std::string fifo = test::make_fifo(dir, "fifo");
  auto opened = test::unless_held(fifo, [&] { return open_regular_file(fifo); });
  REQUIRE(opened.has_value());
  REQUIRE_FALSE(opened->ok());
  CHECK(opened->error().message == "is a FIFO, not a regular file");
  auto read = test::unless_held(fifo, [&] { return read_regular_file(fifo, 100, "a file"); });
  REQUIRE(read.has_value());
  REQUIRE_FALSE(read->ok());
  CHECK(read->error().message == "is a FIFO, not a regular file");
}

TEST_CASE("files: a directory and a device are refused with what they are, a missing file says so",
          "[common][files]") {
  test::TempDir dir;
  auto directory = read_regular_file(dir.path(), 100, "a file");
  REQUIRE_FALSE(directory.ok());
  CHECK(directory.error().message == "is a directory, not a regular file");
  // /dev/zero would never end a read.
  auto zero = read_regular_file("/dev/zero", 100, "a file");
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.error().message == "is a character device, not a regular file");
  auto missing = read_regular_file(dir.path() + "/none", 100, "a file");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message == "cannot open: No such file or directory");
}

TEST_CASE("files: a regular file is read whole up to its limit, and one byte more is refused",
          "[common][files]") {
  test::TempDir dir;
  const std::string fits = dir.write("fits", std::string(2048, 'x'));
  auto text = read_regular_file(fits, 2048, "a test file");
  REQUIRE(text.ok());
  CHECK(text->size() == 2048);
  const std::string over = dir.write("over", std::string(2049, 'x'));
  auto refused = read_regular_file(over, 2048, "a test file");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message == "larger than 2 KiB; a test file is at most 2048 bytes");
  const std::string empty = dir.write("empty", "");
  auto nothing = read_regular_file(empty, 2048, "a test file");
  REQUIRE(nothing.ok());
  CHECK(nothing->empty());
  // The descriptor is the caller's, and closed with its handle.
  auto fd = open_regular_file(fits);
  REQUIRE(fd.ok());
  const int raw = fd->get();
  CHECK(::fcntl(raw, F_GETFD) >= 0);
  { const FileDescriptor gone = std::move(*fd); }
  CHECK(::fcntl(raw, F_GETFD) == -1);
}

TEST_CASE("files: every kind of file is named", "[common][files]") {
  CHECK(file_kind(S_IFREG) == "a regular file");
  CHECK(file_kind(S_IFDIR) == "a directory");
  CHECK(file_kind(S_IFIFO) == "a FIFO");
  CHECK(file_kind(S_IFSOCK) == "a socket");
  CHECK(file_kind(S_IFCHR) == "a character device");
  CHECK(file_kind(S_IFBLK) == "a block device");
  CHECK(file_kind(S_IFLNK) == "a symbolic link");
}
