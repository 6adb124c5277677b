#include <catch2/catch.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <future>
#include <thread>

#include "daemon/http/basic_auth.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tls.hpp"

using namespace mcb;
using Verdict = BasicAuth::Verdict;

namespace {

// From the crypt_blowfish test vectors; "$2b$" and "$2a$" agree for passwords this short.
constexpr const char* kUuHash = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
constexpr const char* kLongHash = "$2b$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui";
constexpr const char* kLongPassword =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are "
    "ignored";

// "Basic " + base64 of "user:password".
std::string basic(const std::string& user, const std::string& password) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const std::string in = user + ":" + password;
  std::string out = "Basic ";
  for (std::size_t i = 0; i < in.size(); i += 3) {
    std::uint32_t n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

// Runs one check on a loop of its own; `immediate` tells whether the verdict came before check()
// returned (no bcrypt was needed).
struct Checked {
  Verdict verdict;
  bool immediate;
};
Checked run_check(BasicAuth& auth, VerifyWorker& worker, boost::asio::io_context& io,
                  const std::string& header) {
  std::optional<Verdict> verdict;
  auth.check(header, worker, [&](Verdict v) { verdict = v; });
  const bool immediate = verdict.has_value();
  // The guard keeps run_one_for waiting for the worker's post instead of returning at once.
  auto guard = boost::asio::make_work_guard(io);
  io.restart();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!verdict && std::chrono::steady_clock::now() < deadline) {
    io.run_one_for(std::chrono::seconds(1));
  }
  REQUIRE(verdict.has_value());
  return {*verdict, immediate};
}

}  // namespace

TEST_CASE("basic auth: the Authorization header is decoded strictly", "[daemon][auth]") {
  auto c = parse_basic_authorization("Basic cHJvbWV0aGV1czpzZWNyZXQ=");
  REQUIRE(c.has_value());
  CHECK(c->user == "prometheus");
  CHECK(c->password == "secret");
  auto spaced = parse_basic_authorization("  bASIC   cHJvbWV0aGV1czpzZWNyZXQ=  ");
  REQUIRE(spaced.has_value());
  CHECK(spaced->user == "prometheus");
  auto colons = parse_basic_authorization(basic("a", "b:c:"));
  REQUIRE(colons.has_value());
  CHECK(colons->user == "a");
  CHECK(colons->password == "b:c:");
  auto empty = parse_basic_authorization(basic("", ""));
  REQUIRE(empty.has_value());
  CHECK(empty->user.empty());
  CHECK(empty->password.empty());

  CHECK_FALSE(parse_basic_authorization(""));
  CHECK_FALSE(parse_basic_authorization("Basic"));
  CHECK_FALSE(parse_basic_authorization("Basic "));
  CHECK_FALSE(parse_basic_authorization("Bearer cHJvbWV0aGV1czpzZWNyZXQ="));
  CHECK_FALSE(parse_basic_authorization("Basicc HJvbWV0aGV1czpzZWNyZXQ="));
  CHECK_FALSE(parse_basic_authorization("Basic cHJvbWV0aGV1czpzZWNyZXQ"));    // no padding
  CHECK_FALSE(parse_basic_authorization("Basic cHJvbWV0aGV1c=pzZWNyZXQ="));   // inner '='
  CHECK_FALSE(parse_basic_authorization("Basic cHJvbWV0aGV1czpzZWNyZ==="));   // '=' too early
  CHECK_FALSE(parse_basic_authorization("Basic cHJvbWV0aGV1czpzZWNy ZXQ="));  // inner space
  CHECK_FALSE(parse_basic_authorization("Basic cHJvbWV0aGV1cw=="));  // "prometheus": no colon
}

TEST_CASE("basic auth: bcrypt hashes verify with crypt_r, and only the right password",
          "[daemon][auth]") {
  CHECK(bcrypt_matches("U*U", kUuHash));
  CHECK_FALSE(bcrypt_matches("U*U*", kUuHash));
  CHECK_FALSE(bcrypt_matches("", kUuHash));
  // bcrypt reads 72 bytes: what follows does not count, as in every bcrypt.
  CHECK(bcrypt_matches(kLongPassword, kLongHash));
  CHECK(bcrypt_matches(std::string(kLongPassword).substr(0, 72), kLongHash));
  CHECK_FALSE(bcrypt_matches(std::string(kLongPassword).substr(0, 71), kLongHash));
  // A NUL byte would cut the password short in crypt: refused, not truncated.
  CHECK_FALSE(bcrypt_matches(std::string("U*U\0tail", 8), kUuHash));
  CHECK_FALSE(bcrypt_matches("U*U", "$2b$05$CCCCCCCCCCCCCCCCCCCCC."));
  CHECK_FALSE(bcrypt_matches("U*U", "not a hash"));
  // A "$2y$" hash made by htpasswd (apache's bcrypt, not libxcrypt).
  const std::string made = test::bcrypt_hash("prometheus", "s3cret word", 5);
  CHECK(made.rfind("$2y$05$", 0) == 0);
  CHECK(bcrypt_matches("s3cret word", made));
  CHECK_FALSE(bcrypt_matches("s3cret Word", made));
}

TEST_CASE("basic auth: users are checked on the worker, and a good password is remembered",
          "[daemon][auth]") {
  boost::asio::io_context io;
  VerifyWorker worker(io.get_executor(), 4);
  auto auth = std::make_shared<BasicAuth>(
      std::map<std::string, std::string, std::less<>>{{"alice", kUuHash}, {"bob", kLongHash}});

  const Checked first = run_check(*auth, worker, io, basic("alice", "U*U"));
  CHECK(first.verdict == Verdict::kAllowed);
  CHECK_FALSE(first.immediate);  // bcrypt ran on the worker
  const Checked again = run_check(*auth, worker, io, basic("alice", "U*U"));
  CHECK(again.verdict == Verdict::kAllowed);
  CHECK(again.immediate);  // remembered: no bcrypt

  const Checked wrong = run_check(*auth, worker, io, basic("alice", "U*U*"));
  CHECK(wrong.verdict == Verdict::kDenied);
  CHECK_FALSE(wrong.immediate);
  // Another user's password, and an unknown user with a configured password: refused after a
  // full bcrypt like any other wrong password.
  CHECK(run_check(*auth, worker, io, basic("bob", "U*U")).verdict == Verdict::kDenied);
  const Checked unknown = run_check(*auth, worker, io, basic("mallory", "U*U"));
  CHECK(unknown.verdict == Verdict::kDenied);
  CHECK_FALSE(unknown.immediate);

  const Checked none = run_check(*auth, worker, io, "");
  CHECK(none.verdict == Verdict::kDenied);
  CHECK(none.immediate);
  CHECK(run_check(*auth, worker, io, "Bearer abc").verdict == Verdict::kDenied);
  // After a wrong password the remembered good one still works.
  CHECK(run_check(*auth, worker, io, basic("alice", "U*U")).immediate);
}

TEST_CASE("basic auth: a full queue answers busy at once, a stopped worker too", "[daemon][auth]") {
  boost::asio::io_context io;
  auto auth = std::make_shared<BasicAuth>(
      std::map<std::string, std::string, std::less<>>{{"alice", kUuHash}});
  VerifyWorker full(io.get_executor(), 0);
  const Checked busy = run_check(*auth, full, io, basic("alice", "U*U"));
  CHECK(busy.verdict == Verdict::kBusy);
  CHECK(busy.immediate);

  VerifyWorker stopped(io.get_executor(), 4);
  stopped.stop();
  stopped.stop();  // idempotent
  CHECK(run_check(*auth, stopped, io, basic("alice", "U*U")).verdict == Verdict::kBusy);
}

TEST_CASE("basic auth: stop() drops queued checks without calling them", "[daemon][auth]") {
  boost::asio::io_context io;
  auto auth = std::make_shared<BasicAuth>(
      std::map<std::string, std::string, std::less<>>{{"alice", kLongHash}});
  VerifyWorker worker(io.get_executor(), 8);
  int answered = 0;
  auto counted = std::make_shared<int>(0);
  for (int i = 0; i < 8; ++i) {
    auth->check(basic("alice", "wrong"), worker, [&answered, counted](Verdict) { ++answered; });
  }
  worker.stop();
  io.restart();
  io.run_for(std::chrono::milliseconds(200));
  // None has answered, not even the one running when stop() came; every `done` was destroyed.
  CHECK(answered == 0);
  CHECK(counted.use_count() == 1);
}

TEST_CASE("basic auth: stop() returns while a check still runs, and that check posts nothing",
          "[daemon][auth]") {
  boost::asio::io_context io;
  VerifyWorker worker(io.get_executor(), 4);
  std::atomic<int> stage{0};  // 1: the check runs, 2: it may end, 3: it has ended
  auto owned = std::make_shared<int>(0);
  bool called = false;
  worker.submit(
      [&stage] {
        stage = 1;
        while (stage.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        stage = 3;
        return true;
      },
      [owned, &called](std::optional<bool>) { called = true; });
  REQUIRE(test::eventually([&] { return stage.load() == 1; }));
  // A stop() that waited for the check would never return while the check is held.
  auto stopped = std::async(std::launch::async, [&worker] { worker.stop(); });
  CHECK(stopped.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(stage.load() == 1);       // stopped with the check still running
  CHECK(owned.use_count() == 1);  // its `then` was destroyed by stop()
  stage = 2;
  REQUIRE(test::eventually([&] { return stage.load() == 3; }));
  io.restart();
  io.run_for(std::chrono::milliseconds(100));
  CHECK_FALSE(called);
}
