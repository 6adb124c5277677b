#include <catch2/catch.hpp>

#include "daemon/flags.hpp"

using namespace mcb;

TEST_CASE("flags: both --flag=value and --flag value are accepted", "[daemon][flags]") {
  auto f = parse_flags({"--config.file=/etc/x.yaml", "--web.listen-address", ":9999",
                        "--web.config.file", "web.yml", "--log.level=debug", "--check-config"});
  REQUIRE(f.ok());
  CHECK(*f->config_file == "/etc/x.yaml");
  CHECK(*f->listen_address == ":9999");
  CHECK(*f->web_config_file == "web.yml");
  CHECK(*f->log_level == "debug");
  CHECK(f->check_config);
  CHECK_FALSE(f->help);
}

TEST_CASE("flags: unknown arguments, missing values and bad levels are errors", "[daemon][flags]") {
  CHECK_FALSE(parse_flags({"--bogus"}).ok());
  CHECK_FALSE(parse_flags({"--config.file"}).ok());
  CHECK_FALSE(parse_flags({"--log.level=loud"}).ok());
  CHECK_FALSE(parse_flags({"--log.format=xml"}).ok());
  CHECK_FALSE(parse_flags({"--config.filex=1"}).ok());
  CHECK(parse_flags({"--web.listen-address=myhost:9741"})
            .error()
            .message.rfind(
                "--web.listen-address: address \"myhost:9741\": the host must be an IP address",
                0) == 0);
  // An empty value (an unset variable in ARGS) would silently drop what the file configures.
  for (const char* flag : {"--config.file", "--web.listen-address", "--web.config.file",
                           "--log.level", "--log.format"}) {
    CAPTURE(flag);
    CHECK(parse_flags({std::string(flag) + "="}).error().message ==
          std::string(flag) + " needs a value, not an empty one");
    CHECK_FALSE(parse_flags({flag, ""}).ok());
  }
  // An argument is echoed escaped: it cannot colour or clear the terminal.
  CHECK(parse_flags({"--x\x1b[31mRED"}).error().message ==
        "unknown argument \"--x\\x1b[31mRED\" (see --help)");
}

TEST_CASE("flags: --help text names every flag", "[daemon][flags]") {
  const std::string u = usage();
  for (const char* flag :
       {"--config.file", "--web.listen-address", "--web.config.file", "--log.level", "--log.format",
        "--check-config", "--version", "--help"}) {
    CHECK(u.find(flag) != std::string::npos);
  }
}
