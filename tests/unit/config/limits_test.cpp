// The bounds of config/limits.hpp, each with the example that found it missing: a file that would
// crash the daemon, stall its loop, switch an alert off or break /metrics is refused at load with
// its position and the limit.

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "config/bounded_regex.hpp"
#include "config/config.hpp"
#include "config/limits.hpp"
#include "config/web_config_file.hpp"
#include "daemon/alerts/rules.hpp"
#include "tests/support/process.hpp"
#include "tests/unit/config/loader.hpp"

using namespace mcb;
using namespace std::string_literals;
using Catch::Matchers::Contains;

namespace {

using test::error_of;
using test::load_config;
using test::parse_config;

std::string nested(std::size_t depth) {
  return std::string(depth, '(') + "a" + std::string(depth, ')');
}

// A cost-`cost` bcrypt hash of the right form (its digest is never checked here).
std::string hash_of_cost(int cost) {
  const std::string c = (cost < 10 ? "0" : "") + std::to_string(cost);
  return "$2b$" + c + "$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
}

}  // namespace

TEST_CASE("limits: 20,000 nested groups in netdev.include are refused, not compiled",
          "[config][limits]") {
  const std::string yaml = "collectors:\n  netdev:\n    include: \"" + nested(20000) + "\"\n";
  const std::string e = error_of(yaml);
  CHECK_THAT(e, Contains("test.yaml:3:14: collectors.netdev.include: a regular expression of "
                         "40001 bytes; at most 256 are allowed"));
  CHECK(e.size() < 300);
}

TEST_CASE("limits: regexes are bounded in nesting and repetition, and ordinary ones pass",
          "[config][limits]") {
  CHECK(check_regex_bounds(nested(kMaxRegexNesting)).ok());
  CHECK_THAT(check_regex_bounds(nested(kMaxRegexNesting + 1)).error().message,
             Contains("nested deeper than 16 levels (at byte 17)"));
  // A bracket expression is one level more.
  CHECK_THAT(check_regex_bounds(std::string(kMaxRegexNesting, '(') + "[a]" +
                                std::string(kMaxRegexNesting, ')'))
                 .error()
                 .message,
             Contains("nested deeper than 16 levels (at byte 17)"));
  CHECK_THAT(check_regex_bounds("a{1000}").error().message,
             Contains("a repetition count above 100 (at byte 2)"));
  CHECK_THAT(check_regex_bounds("a{1,99999999999999999999999}").error().message,
             Contains("repetition count above"));
  CHECK(check_regex_bounds("a{2,100}").ok());
  // Escaped and bracketed parentheses are no groups.
  CHECK(check_regex_bounds(std::string(40, '\\') + "(" + "[(((((((((((((((((((]").ok());
  CHECK(check_regex_bounds("[[:alpha:]](x)").ok());
  for (const char* good : {"^lo$", "^(eth|ens|enp)[0-9]+", "^veth", "^docker[0-9]*$", ""}) {
    INFO(good);
    CHECK(compile_bounded_regex(good).ok());
  }
  CHECK_THAT(compile_bounded_regex("(unclosed").error().message,
             Contains("invalid regular expression"));
  auto c = parse_config("collectors: { netdev: { exclude: \"" + nested(17) + "\" } }\n", "t.yaml");
  REQUIRE_FALSE(c.ok());
  CHECK_THAT(c.error().message, Contains("t.yaml:1:34: collectors.netdev.exclude: groups and "
                                         "bracket expressions nested deeper than 16 levels"));
}

TEST_CASE("limits: RE2 refuses a quantifier on a quantifier, and matches in linear time",
          "[config][limits]") {
  for (const char* bad : {"a**", "^l???x", "a*{2}", "(ab)+*"}) {
    INFO(bad);
    CHECK_THAT(compile_bounded_regex(bad).error().message,
               Contains("invalid regular expression: bad repetition operator"));
  }
  CHECK_THAT(compile_bounded_regex("(a)\\1").error().message,
             Contains(R"(invalid regular expression: invalid escape sequence: \\1)"));
  for (const char* good : {"a*?", "a+?b", "a??", "a{2,3}?", "(?:eth)+[0-9]*", "[*?+]+", "x{y*"}) {
    INFO(good);
    CHECK(compile_bounded_regex(good).ok());
  }
  // Unanchored, as grep: "^" and "$" anchor.
  const auto eth = compile_bounded_regex("^(eth|ens)[0-9]+");
  REQUIRE(eth.ok());
  CHECK(eth->search("eth0"));
  CHECK(eth->search("ens5"));
  CHECK_FALSE(eth->search("veth0"));
  CHECK(compile_bounded_regex("eth")->search("veth0"));
  // What a backtracking engine takes exponential time over: RE2 answers at once. (a*)* against
  // 30 a's and a b would take std::regex minutes.
  const auto nested_star = compile_bounded_regex("^(a*)*$");
  REQUIRE(nested_star.ok());
  CHECK_FALSE(nested_star->search(std::string(30, 'a') + "b"));
  CHECK(nested_star->search(std::string(30, 'a')));
  // The pattern a fuzzer found taking std::regex more than 10 s against "eth0" is refused.
  const std::string found =
      "l???????****************????:??????????????????????:???????????????????"
      "?>???????????????????eardigit:]]*$";  // split so that no "??>" trigraph warning
  auto c = parse_config("collectors:\n  netdev:\n    include: \"" + found + "\"\n", "t.yaml");
  REQUIRE_FALSE(c.ok());
  CHECK_THAT(c.error().message,
             Contains("t.yaml:3:14: collectors.netdev.include: invalid regular expression: bad "
                      "repetition operator"));
}

TEST_CASE("limits: quoted text and a POSIX class never closed are read as RE2 reads them",
          "[config][limits]") {
  // RE2 takes these '[' as literals: the counts and groups after them are still bounded.
  CHECK_THAT(check_regex_bounds("[[:]a{1000}").error().message,
             Contains("a repetition count above 100"));
  CHECK_THAT(check_regex_bounds("\\Q[\\Ea{1000}").error().message,
             Contains("a repetition count above 100"));
  CHECK_THAT(check_regex_bounds("[[:]" + nested(kMaxRegexNesting + 1)).error().message,
             Contains("nested deeper than 16 levels"));
  // Quoted text holds no group and no count.
  for (const char* literal :
       {"\\Q(((((((((((((((((\\E", "\\Qa{101}\\E", "\\Q((((((((((((((((((("}) {
    INFO(literal);
    CHECK(check_regex_bounds(literal).ok());
    CHECK(compile_bounded_regex(literal).ok());
  }
  CHECK(compile_bounded_regex("\\Qa{101}\\E")->search("xa{101}"));
  // The braces of \x{...} and \p{...} hold no count: RE2 says what is wrong with them.
  CHECK(check_regex_bounds("\\x{110000}").ok());
  CHECK_THAT(compile_bounded_regex("\\x{110000}").error().message,
             Contains("invalid escape sequence"));
  CHECK(compile_bounded_regex("\\x{41}{2}")->search("AA"));
  CHECK_THAT(check_regex_bounds("\\p{Greek}{101}").error().message,
             Contains("a repetition count above 100"));
}

TEST_CASE("limits: a regex that compiles to a large program is refused", "[config][limits]") {
  // Each count is within bounds, their product is not small: about 5,000 instructions, which
  // would take microseconds a device name and far more with an alternation of them.
  CHECK_THAT(compile_bounded_regex("(((\\S?){10}){10}){10}x").error().message,
             Contains("a regular expression that compiles to") &&
                 Contains("instructions; at most 1000 are allowed"));
  CHECK(compile_bounded_regex("[0-9]{100}").ok());
  CHECK(compile_bounded_regex("^(eth|ens|enp|eno|bond|veth)[0-9a-z]*$").ok());
}

TEST_CASE("limits: RE2's reason is escaped, and names are matched as bytes", "[config][limits]") {
  const auto refused = compile_bounded_regex("[\x1b[31mRED\nFORGED");
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().message, Contains("invalid regular expression: missing ]"));
  CHECK_THAT(refused.error().message, Contains("\\x1b") && Contains("\\n"));
  CHECK(refused.error().message.find('\x1b') == std::string::npos);
  CHECK(refused.error().message.find('\n') == std::string::npos);
  // Linux allows any byte but '/' and blanks in a name: '.' matches each.
  CHECK(compile_bounded_regex("^veth.*$")->search("veth\xff\xfe"));
}

TEST_CASE("limits: nan and inf are refused for every number, so no alert is switched off",
          "[config][limits]") {
  CHECK_THAT(error_of("thresholds: { MaxConnectionsNear: { warning: nan } }\n"),
             Contains("test.yaml:1:46: thresholds.MaxConnectionsNear.warning: expected a finite "
                      "number, got \"nan\""));
  for (const char* v : {"inf", "-inf", "infinity", "NAN", "-nan"}) {
    INFO(v);
    CHECK_THAT(error_of("thresholds: { ProbeSlow: { critical: "s + v + " } }\n"),
               Contains("expected a finite number"));
  }
  CHECK_THAT(error_of("thresholds: { ConnectionSprawl: { connections_warning: nan } }\n"),
             Contains("expected a finite number"));
}

TEST_CASE("limits: a target name that is not UTF-8 or holds control characters is refused",
          "[config][limits]") {
  CHECK_THAT(error_of("targets:\n  - { name: \"a\xff"
                      "b\", address: 127.0.0.1:1 }\n"),
             Contains("test.yaml:2:13: targets[0].name: \"a\\xffb\" is not UTF-8"));
  CHECK_THAT(error_of("targets:\n  - { name: \"a\\x1b[2Jb\", address: 127.0.0.1:1 }\n"),
             Contains(R"("a\x1b[2Jb": a name must not hold control characters)"));
  CHECK_THAT(error_of("targets:\n  - { name: \"a\\nb\", address: 127.0.0.1:1 }\n"),
             Contains("must not hold control characters"));
  // A right-to-left override shows the name and what follows it in a log line reversed.
  CHECK_THAT(error_of("targets:\n  - { name: \"a\\u202Eb\", address: 127.0.0.1:1 }\n"),
             Contains(R"("a\u{202e}b": a name must not hold control characters nor characters )"
                      "that reorder text"));
  CHECK_THAT(error_of("targets:\n  - { name: \"\", address: 127.0.0.1:1 }\n"),
             Contains("a name must not be empty"));
  // Any string of the file: a key, a path, a word.
  CHECK_THAT(error_of("paths: { procfs: \"/pr\xc3oc\" }\n"), Contains("is not UTF-8"));
  CHECK_THAT(error_of("log: { level: \"\xff\" }\n"), Contains("is not UTF-8"));
  CHECK_THAT(error_of("\xff: 1\n"), Contains("is not UTF-8"));
  // UTF-8 names are fine.
  auto ok = parse_config("targets:\n  - { name: \"caf\xc3\xa9\", address: 127.0.0.1:1 }\n", "t");
  REQUIRE(ok.ok());
  CHECK(ok->targets[0].name == "caf\xc3\xa9");
  // A unix path names a target by default: it must make a printable name too.
  CHECK_THAT(error_of("targets:\n  - { address: \"unix:/run/a\\x07b\" }\n"),
             Contains("cannot name the target"));
}

TEST_CASE("limits: names, host names and unix socket paths are bounded", "[config][limits]") {
  const std::string long_name(kMaxNameBytes + 1, 'n');
  CHECK_THAT(error_of("targets:\n  - { name: " + long_name + ", address: 127.0.0.1:1 }\n"),
             Contains("targets[0].name: a name of 257 bytes; at most 256 are allowed"));
  CHECK(parse_config("targets:\n  - { name: " + std::string(kMaxNameBytes, 'n') +
                         ", address: 127.0.0.1:1 }\n",
                     "t")
            .ok());
  CHECK_THAT(error_of("targets:\n  - { address: \"" + std::string(254, 'h') + ":11211\" }\n"),
             Contains("a host name of 254 bytes; at most 253 are allowed"));
  // sun_path holds 108 bytes with the NUL: 107 is the longest path, and 108 fails at load, not
  // when the first connection is attempted.
  const std::string at_limit = "/" + std::string(kMaxUnixPathBytes - 1, 's');
  CHECK(parse_config("targets:\n  - { name: s, address: \"unix:" + at_limit + "\" }\n", "t").ok());
  CHECK_THAT(error_of("targets:\n  - { name: s, address: \"unix:" + at_limit + "x\" }\n"),
             Contains("test.yaml:2:25: targets[0].address: address \"unix:/sss") &&
                 Contains("a unix socket path of 108 bytes; at most 107 fit in a socket address "
                          "(sun_path)"));
  CHECK_THAT(error_of("paths: { sysfs: /" + std::string(kMaxPathBytes, 'p') + " }\n"),
             Contains("paths.sysfs: a name of 4096 bytes; at most 4095 are allowed"));
}

TEST_CASE("limits: probe_interval is 0 or at least 100ms, and 1ms is refused", "[config][limits]") {
  CHECK_THAT(error_of("targets:\n  - { address: 127.0.0.1:1, probe_interval: 1ms }\n"),
             Contains("test.yaml:2:45: targets[0].probe_interval: 1ms is too short: 0 turns the "
                      "probe off, else it runs at most every 100ms"));
  CHECK_THAT(error_of("targets:\n  - { address: 127.0.0.1:1, probe_interval: 99ms }\n"),
             Contains("too short"));
  for (const char* ok : {"0", "100ms", "5s"}) {
    INFO(ok);
    CHECK(parse_config("targets:\n  - { address: 127.0.0.1:1, probe_interval: "s + ok + " }\n", "t")
              .ok());
  }
}

TEST_CASE("limits: a huge bad file reports 50 errors, then says there are more",
          "[config][limits]") {
  std::string yaml = "targets:\n";
  for (int i = 0; i < 3500; ++i) {
    yaml += "  - { name: t" + std::to_string(i) + ", address: bad, probe_interval: 1ms }\n";
  }
  REQUIRE(yaml.size() < kMaxConfigFileBytes);
  const std::string e = error_of(yaml);
  std::size_t lines = 1;
  for (const char c : e) lines += c == '\n' ? 1 : 0;
  CHECK(lines == kMaxReportedErrors + 1);
  CHECK_THAT(e, Contains("test.yaml: more errors not shown; at most 50 are reported"));
  CHECK(e.size() < 20000);
}

TEST_CASE("limits: a configuration file over 256 KiB is refused before it is parsed",
          "[config][limits]") {
  test::TempDir dir;
  const std::string big =
      dir.write("big.yaml", "# " + std::string(kMaxConfigFileBytes, 'x') + "\n");
  auto c = load_config(big);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().message == big +
                                 ": larger than 256 KiB; a configuration file is at most 262144 "
                                 "bytes");
  // A file exactly at the limit is read.
  const std::string fits =
      dir.write("fits.yaml", "#" + std::string(kMaxConfigFileBytes - 2, 'x') + "\n");
  CHECK(load_config(fits).ok());
  // A device that never ends is not read at all.
  auto zero = load_config("/dev/zero");
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.error().message == "/dev/zero: is a character device, not a regular file");
  auto web = load_web_config_file(big);
  REQUIRE_FALSE(web.ok());
  CHECK_THAT(web.error().message, Contains("larger than 256 KiB"));
}

TEST_CASE("limits: a bcrypt cost above 14 is refused, above 12 it warns, 10 is quiet",
          "[config][limits][web]") {
  auto huge = parse_web_config_file("basic_auth_users:\n  p: " + hash_of_cost(31) + "\n", "w.yml");
  REQUIRE_FALSE(huge.ok());
  CHECK_THAT(huge.error().message,
             Contains("w.yml:2:6: basic_auth_users.p: bcrypt cost 31 would hold every check") &&
                 Contains("at most 14 is allowed"));
  CHECK_FALSE(
      parse_web_config_file("basic_auth_users:\n  p: " + hash_of_cost(15) + "\n", "w").ok());
  auto high = parse_web_config_file("basic_auth_users:\n  p: " + hash_of_cost(13) + "\n", "w.yml");
  REQUIRE(high.ok());
  REQUIRE(high->warnings.size() == 1);
  CHECK_THAT(high->warnings[0], Contains("w.yml:2:6: basic_auth_users.p: bcrypt cost 13 is above "
                                         "the usual 12"));
  auto usual = parse_web_config_file("basic_auth_users:\n  p: " + hash_of_cost(10) + "\n", "w");
  REQUIRE(usual.ok());
  CHECK(usual->warnings.empty());
}

TEST_CASE("limits: basic-auth user names are names: printable UTF-8, bounded",
          "[config][limits][web]") {
  auto bad = parse_web_config_file("basic_auth_users:\n  \"a\\x1bb\": " + hash_of_cost(10) + "\n",
                                   "w.yml");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message, Contains("must not hold control characters"));
  auto long_user =
      parse_web_config_file("basic_auth_users:\n  " + std::string(kMaxNameBytes + 1, 'u') + ": " +
                                hash_of_cost(10) + "\n",
                            "w.yml");
  REQUIRE_FALSE(long_user.ok());
  CHECK_THAT(long_user.error().message, Contains("at most 256 are allowed"));
}
