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

TEST_CASE("procfs: a FIFO under paths.procfs reads as empty at once, never waited on",
          "[collectors][procfs]") {
  test::TempDir dir;
  const std::string fifo = test::make_fifo(dir, "netstat");
  auto read = test::unless_held(fifo, [&] { return read_file(fifo); });
  REQUIRE(read.has_value());
  REQUIRE(read->ok());
  CHECK((*read)->empty());
  // A ProcFile's pread of a FIFO fails (ESPIPE), at once too.
  ProcFile file(fifo);
  auto again = test::unless_held(fifo, [&] { return file.read().ok(); });
  REQUIRE(again.has_value());
  CHECK_FALSE(*again);
}
