#include <catch2/catch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>

#include "collectors/name_lookup.hpp"

using namespace mcb;

namespace {

struct Answer {
  std::string error;
  NameLookup::Addresses addresses;
};

// Runs `io` until `answer` is set or 10 s pass.
void run_until(boost::asio::io_context& io, const std::optional<Answer>& answer) {
  auto guard = boost::asio::make_work_guard(io);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!answer && std::chrono::steady_clock::now() < end) {
    io.run_one_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

TEST_CASE("name lookup: localhost resolves on the pool and the answer comes on the loop",
          "[collectors][lookup]") {
  boost::asio::io_context io;
  std::optional<Answer> answer;
  auto lookup = NameLookup::start(io, "localhost", 11211, [&](std::string e, auto a) {
    answer = Answer{std::move(e), std::move(a)};
  });
  CHECK_FALSE(answer.has_value());  // never from inside start()
  run_until(io, answer);
  REQUIRE(answer.has_value());
  INFO(answer->error);
  CHECK(answer->error.empty());
  REQUIRE_FALSE(answer->addresses.empty());
  CHECK(answer->addresses.front().address().is_loopback());
  CHECK(answer->addresses.front().port() == 11211);
}

TEST_CASE("name lookup: a name that does not exist is an error naming it", "[collectors][lookup]") {
  boost::asio::io_context io;
  std::optional<Answer> answer;
  // An empty host: getaddrinfo refuses it without asking any server.
  auto lookup = NameLookup::start(io, "", 1, [&](std::string e, auto a) {
    answer = Answer{std::move(e), std::move(a)};
  });
  run_until(io, answer);
  REQUIRE(answer.has_value());
  CHECK(answer->error.rfind("resolve : ", 0) == 0);
  CHECK(answer->addresses.empty());
}

TEST_CASE("name lookup: a cancelled lookup never calls its handler, which is destroyed at once",
          "[collectors][lookup]") {
  boost::asio::io_context io;
  auto owned = std::make_shared<int>(0);
  bool called = false;
  auto lookup = NameLookup::start(io, "localhost", 1,
                                  [owned, &called](const std::string&, auto) { called = true; });
  lookup->cancel();
  CHECK(owned.use_count() == 1);
  io.run_for(std::chrono::milliseconds(300));
  CHECK_FALSE(called);
}

TEST_CASE(
    "name lookup: a cancel() after the answer was posted still keeps the handler from running",
    "[collectors][lookup]") {
  // The pool answers at some point after start(); cancelling at every moment from at once to
  // well after the answer was posted (localhost answers from /etc/hosts in microseconds) must
  // never let the handler run, and must destroy it in cancel().
  boost::asio::io_context io;
  int called = 0;
  for (int round = 0; round < 300; ++round) {
    auto owned = std::make_shared<int>(0);
    auto lookup = NameLookup::start(io, "localhost", 1,
                                    [owned, &called](const std::string&, auto) { ++called; });
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(round * 5);
    while (std::chrono::steady_clock::now() < until) {
    }
    lookup->cancel();
    CHECK(owned.use_count() == 1);
  }
  io.run_for(std::chrono::milliseconds(300));
  CHECK(called == 0);
}

TEST_CASE("name lookup: destroying the io_context drops the handlers of lookups in flight",
          "[collectors][lookup]") {
  auto owned = std::make_shared<int>(0);
  std::shared_ptr<NameLookup> lookup;
  {
    boost::asio::io_context io;
    lookup = NameLookup::start(io, "localhost", 1, [owned](const std::string&, auto) {});
  }
  // Whether the pool had answered (the post was destroyed unrun) or not (the registry ended the
  // lookup), nothing holds the handler any more, and nothing will post to the dead loop.
  CHECK(owned.use_count() == 1);
  lookup->cancel();
}
