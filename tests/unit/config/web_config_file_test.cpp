#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "config/web_config_file.hpp"
#include "daemon/alerts/rules.hpp"
#include "tests/support/daemon.hpp"

using namespace mcb;
using Catch::Matchers::Contains;

namespace {

// The loader with the alert rule table's names and defaults, as the daemon runs it.
Result<Config> parse_config(std::string_view yaml, std::string_view file) {
  return mcb::parse_config(yaml, file, alert_schemas());
}

// A well-formed bcrypt hash (of "U*U", from the crypt_blowfish test vectors).
constexpr const char* kHash = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

std::string error_of(const std::string& yaml) {
  auto c = parse_web_config_file(yaml, "/etc/mcbacklogd/web.yml");
  REQUIRE_FALSE(c.ok());
  return c.error().message;
}

}  // namespace

TEST_CASE("web config: every key is read, relative files are next to the web config",
          "[config][web]") {
  auto c = parse_web_config_file(std::string(R"(
tls_server_config:
  cert_file: tls/server.crt
  key_file: /secrets/server.key
  client_ca_file: clients.crt
  client_auth_type: RequireAndVerifyClientCert
  min_version: TLS13
basic_auth_users:
  prometheus: )") + kHash +
                                     "\n  'other user': " + kHash + "\n",
                                 "/etc/mcbacklogd/web.yml");
  REQUIRE(c.ok());
  CHECK(c->source == "/etc/mcbacklogd/web.yml");
  REQUIRE(c->tls.has_value());
  CHECK(c->tls->cert_file == "/etc/mcbacklogd/tls/server.crt");
  CHECK(c->tls->key_file == "/secrets/server.key");
  CHECK(c->tls->client_ca_file == "/etc/mcbacklogd/clients.crt");
  CHECK(c->tls->client_auth == ClientAuth::kRequireAndVerifyClientCert);
  CHECK(c->tls->min_version == TlsVersion::kTls13);
  CHECK(c->basic_auth_users.size() == 2);
  CHECK(c->basic_auth_users.at("prometheus") == kHash);
  CHECK(c->basic_auth_users.count("other user") == 1);
}

TEST_CASE("web config: an empty file is plain HTTP without users, TLS defaults are the toolkit's",
          "[config][web]") {
  auto empty = parse_web_config_file("", "web.yml");
  REQUIRE(empty.ok());
  CHECK_FALSE(empty->tls.has_value());
  CHECK(empty->basic_auth_users.empty());

  auto tls = parse_web_config_file("tls_server_config: { cert_file: a.crt, key_file: a.key }\n",
                                   "web.yml");
  REQUIRE(tls.ok());
  CHECK(tls->tls->cert_file == "a.crt");  // no directory in the file name: as written
  CHECK(tls->tls->client_auth == ClientAuth::kNoClientCert);
  CHECK(tls->tls->min_version == TlsVersion::kTls12);
  CHECK(tls->tls->client_ca_file.empty());
}

TEST_CASE("web config: unknown keys, wrong types and bad values name file, line and column",
          "[config][web]") {
  CHECK_THAT(error_of("tls_server_config:\n  cert_file: a\n  key_file: b\n  ciphers: [x]\n"),
             Contains("/etc/mcbacklogd/web.yml:4:3: tls_server_config.ciphers: unknown key "
                      "(known here: cert_file, key_file, client_ca_file, client_auth_type, "
                      "min_version)"));
  CHECK_THAT(error_of("http_server_config: { http2: true }\n"),
             Contains("web.yml:1:1: http_server_config: unknown key (known here: "
                      "tls_server_config, basic_auth_users)"));
  CHECK_THAT(
      error_of("tls_server_config: { cert_file: a, key_file: b, min_version: TLS11 }\n"),
      Contains(
          "web.yml:1:62: tls_server_config.min_version: \"TLS11\" is not one of: TLS12, TLS13"));
  CHECK_THAT(
      error_of("tls_server_config: { cert_file: a, key_file: b, client_auth_type: Always }\n"),
      Contains("tls_server_config.client_auth_type: \"Always\" is not one of: "
               "NoClientCert, RequestClientCert, RequireAnyClientCert, "
               "VerifyClientCertIfGiven, RequireAndVerifyClientCert"));
  CHECK_THAT(error_of("tls_server_config: [a, b]\n"),
             Contains("web.yml:1:20: tls_server_config: expected a mapping of keys, got a list"));
  CHECK_THAT(error_of("tls_server_config: { cert_file: [a], key_file: b }\n"),
             Contains("web.yml:1:33: tls_server_config.cert_file: expected a file name"));
  CHECK_THAT(error_of("basic_auth_users: [alice]\n"),
             Contains("web.yml:1:19: basic_auth_users: expected a mapping of keys"));
  CHECK_THAT(error_of("tls_server_config: {\n"), Contains("web.yml:2:1: YAML syntax error"));
  // A quote never closed would swallow the users after it.
  CHECK_THAT(error_of("tls_server_config:\n  cert_file: \"a\nbasic_auth_users: { u: x }\n"),
             Contains("web.yml:2:14: this double-quoted string is never closed"));
}

TEST_CASE("web config: TLS needs a certificate and a key, and client CAs go with verification",
          "[config][web]") {
  CHECK_THAT(error_of("tls_server_config:\n  key_file: b\n"),
             Contains("web.yml:2:3: tls_server_config: missing key \"cert_file\""));
  CHECK_THAT(error_of("tls_server_config:\n  cert_file: a\n"),
             Contains("tls_server_config: missing key \"key_file\""));
  const auto both = error_of("tls_server_config:\n");
  CHECK_THAT(both, Contains("missing key \"cert_file\""));
  CHECK_THAT(both, Contains("missing key \"key_file\""));
  CHECK_THAT(error_of("tls_server_config:\n  cert_file: a\n  key_file: b\n"
                      "  client_auth_type: VerifyClientCertIfGiven\n"),
             Contains("tls_server_config: client_auth_type VerifyClientCertIfGiven needs "
                      "client_ca_file"));
  CHECK_THAT(error_of("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n"),
             Contains("client_ca_file is only used with client_auth_type VerifyClientCertIfGiven "
                      "or RequireAndVerifyClientCert"));
  auto any = parse_web_config_file(
      "tls_server_config: { cert_file: a, key_file: b, client_auth_type: RequireAnyClientCert }\n",
      "web.yml");
  REQUIRE(any.ok());
  CHECK(any->tls->client_auth == ClientAuth::kRequireAnyClientCert);
}

TEST_CASE("web config: users need a bcrypt hash, and the message never repeats the value",
          "[config][web]") {
  const auto plain = error_of("basic_auth_users:\n  alice: hunter2\n");
  CHECK_THAT(plain, Contains("web.yml:2:10: basic_auth_users.alice: not a bcrypt hash"));
  CHECK_THAT(plain, Contains("htpasswd -nbBC 10"));
  CHECK_THAT(plain, !Contains("hunter2"));
  CHECK_THAT(error_of("basic_auth_users:\n  alice: [x]\n"),
             Contains("basic_auth_users.alice: expected a bcrypt hash, got a list"));
  CHECK_THAT(error_of(std::string("basic_auth_users:\n  'a:b': ") + kHash + "\n"),
             Contains("web.yml:2:3: basic_auth_users.a:b: a user name must be non-empty and must "
                      "not contain ':'"));
  CHECK_THAT(
      error_of(std::string("basic_auth_users:\n  alice: ") + kHash + "\n  alice: " + kHash + "\n"),
      Contains("web.yml:3:3: basic_auth_users.alice: key given twice"));
}

TEST_CASE("web config: what counts as a bcrypt hash", "[config][web]") {
  CHECK(is_bcrypt_hash(kHash));
  CHECK(is_bcrypt_hash("$2y$10$Fc0NBMDyAMxcV6w.Be6zz.P47WFDLJByHKe71iYqTnMsvH35lLS1q"));
  CHECK(is_bcrypt_hash("$2a$31$Fc0NBMDyAMxcV6w.Be6zz.P47WFDLJByHKe71iYqTnMsvH35lLS1q"));
  CHECK_FALSE(is_bcrypt_hash("$2x$10$Fc0NBMDyAMxcV6w.Be6zz.P47WFDLJByHKe71iYqTnMsvH35lLS1q"));
  CHECK_FALSE(is_bcrypt_hash("$2y$03$Fc0NBMDyAMxcV6w.Be6zz.P47WFDLJByHKe71iYqTnMsvH35lLS1q"));
  CHECK_FALSE(is_bcrypt_hash("$2y$32$Fc0NBMDyAMxcV6w.Be6zz.P47WFDLJByHKe71iYqTnMsvH35lLS1q"));
  CHECK_FALSE(is_bcrypt_hash("$2y$10$Fc0NBMDyAMxcV6w.Be6zz.P47WFDLJByHKe71iYqTnMsvH35lLS1"));
  CHECK_FALSE(is_bcrypt_hash("$2y$10$Fc0NBMDyAMxcV6w.Be6zz.P47WFDLJByHKe71iYqTnMsvH35lLS1+"));
  CHECK_FALSE(is_bcrypt_hash("$6$rounds=5000$abcdefgh$Fc0NBMDyAMxcV6w.Be6zz.P47WFDLJByHK"));
  CHECK_FALSE(is_bcrypt_hash(""));
}

TEST_CASE("config: web.config_file is read and made relative to the config file", "[config][web]") {
  auto c = parse_config("web: { config_file: web.yml }\n", "/etc/mcbacklogd/mcbacklogd.yaml");
  REQUIRE(c.ok());
  CHECK(c->web.config_file == "/etc/mcbacklogd/web.yml");
  CHECK(default_config().web.config_file.empty());
  auto absolute = parse_config("web: { config_file: /srv/web.yml }\n", "/etc/m.yaml");
  REQUIRE(absolute.ok());
  CHECK(absolute->web.config_file == "/srv/web.yml");
  auto bad = parse_config("web: { config_file: { a: 1 } }\n", "m.yaml");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message,
             Contains("m.yaml:1:21: web.config_file: expected a file name, got a mapping"));
}

TEST_CASE("web config: the shipped example parses", "[config][web]") {
  const std::string path = test::source_dir() + "/config/web-config.example.yml";
  auto c = load_web_config_file(path);
  INFO((c ? "" : c.error().message));
  REQUIRE(c.ok());
  REQUIRE(c->tls.has_value());
  CHECK(c->tls->cert_file == test::source_dir() + "/config/mcbacklogd.crt");
  CHECK(c->tls->client_auth == ClientAuth::kNoClientCert);
  CHECK(c->basic_auth_users.count("prometheus") == 1);
}
