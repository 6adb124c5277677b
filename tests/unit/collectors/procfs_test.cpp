#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "collectors/procfs.hpp"
#include "tests/support/process.hpp"

using namespace mcb;
using Catch::Matchers::Contains;

TEST_CASE("procfs: a ProcFile reads the whole file again at every read", "[collectors][procfs]") {
  test::TempDir dir;
  ProcFile file(dir.write("counters", "one\n"));
  auto text = file.read();
  REQUIRE(text.ok());
  CHECK(*text == "one\n");

  // Changed in place (the descriptor stays open): the next read sees the new text whole, shorter
  // or longer, including past the first buffer.
  dir.write("counters", "2\n");
  text = file.read();
  REQUIRE(text.ok());
  CHECK(*text == "2\n");
  const std::string large(100000, 'x');
  dir.write("counters", large);
  text = file.read();
  REQUIRE(text.ok());
  CHECK(*text == large);
  dir.write("counters", "");
  text = file.read();
  REQUIRE(text.ok());
  CHECK(text->empty());
}

TEST_CASE("procfs: a ProcFile of a missing file fails with its path, then finds it",
          "[collectors][procfs]") {
  test::TempDir dir;
  ProcFile file(dir.path() + "/later");
  auto text = file.read();
  REQUIRE_FALSE(text.ok());
  CHECK_THAT(text.error().message, Contains(dir.path() + "/later: no such file"));
  dir.write("later", "here\n");
  text = file.read();
  REQUIRE(text.ok());
  CHECK(*text == "here\n");
}

TEST_CASE("procfs: a ProcFile reads a kernel file again from its start", "[collectors][procfs]") {
  // /proc/self/stat changes between reads; each read is one whole formatting of it.
  ProcFile file("/proc/self/stat");
  for (int i = 0; i < 3; ++i) {
    auto text = file.read();
    REQUIRE(text.ok());
    CHECK(text->find(") ") != std::string_view::npos);
    CHECK(text->back() == '\n');
    CHECK(std::count(text->begin(), text->end(), '\n') == 1);
  }
}

TEST_CASE(
    "procfs: a FIFO or a device under paths.procfs is refused at once, never waited on or read "
    "without end",
    "[collectors][procfs]") {
  test::TempDir dir;
  const std::string fifo = test::make_fifo(dir, "netstat");
  auto read = test::unless_held(fifo, [&] { return read_file(fifo); });
  REQUIRE(read.has_value());
  REQUIRE_FALSE(read->ok());
  CHECK(read->error().message == fifo + ": is a FIFO, not a regular file");
  ProcFile file(fifo);
  auto again = test::unless_held(fifo, [&] { return file.read(); });
  REQUIRE(again.has_value());
  REQUIRE_FALSE(again->ok());
  CHECK(again->error().message == fifo + ": is a FIFO, not a regular file");
  CHECK_FALSE(file.is_open());

  // /dev/zero never ends a read: refused before any.
  auto zero = read_optional_file("/dev/zero");
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.error().message == "/dev/zero: is a character device, not a regular file");
  ProcFile zero_file("/dev/zero");
  auto zero_again = zero_file.read();
  REQUIRE_FALSE(zero_again.ok());
  CHECK(zero_again.error().message == "/dev/zero: is a character device, not a regular file");
}

TEST_CASE("procfs: a regular file of 16 MiB or more under paths.procfs is refused, one below read",
          "[collectors][procfs]") {
  test::TempDir dir;
  const std::string fits = dir.write("fits", std::string(kMaxProcFileBytes - 1, 'x'));
  auto whole = read_file(fits);
  REQUIRE(whole.ok());
  CHECK(whole->size() == kMaxProcFileBytes - 1);
  ProcFile fits_file(fits);
  auto fits_again = fits_file.read();
  REQUIRE(fits_again.ok());
  CHECK(fits_again->size() == kMaxProcFileBytes - 1);

  const std::string large = dir.write("large", std::string(kMaxProcFileBytes, 'x'));
  const std::string why =
      large + ": 16 MiB or more, more than is read of a file under /proc or /sys";
  auto refused = read_file(large);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message == why);
  ProcFile large_file(large);
  auto refused_again = large_file.read();
  REQUIRE_FALSE(refused_again.ok());
  CHECK(refused_again.error().message == why);
}
