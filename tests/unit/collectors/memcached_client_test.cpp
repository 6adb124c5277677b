// A target's TLS files as Transport::of loads them: read through the checked open, so a FIFO or a
// missing file is refused at once with where it is named, and good files load from memory.

#include <catch2/catch.hpp>

#include <tuple>

#include "collectors/memcached_client.hpp"
#include "config/address.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tls.hpp"

using namespace mcb;
using Catch::Matchers::StartsWith;

namespace {

TargetConfig tls_target(TlsClientConfig tls) {
  TargetConfig t;
  t.name = "mc";
  t.address = *parse_target_address("127.0.0.1:11211");
  t.tls = std::move(tls);
  return t;
}

}  // namespace

TEST_CASE("memcached client: a target's TLS files load, a FIFO or a missing one is refused",
          "[collectors][memcached][tls]") {
  test::TempDir dir;
  const auto pki = test::make_test_pki(dir);
  TlsClientConfig good;
  good.ca_file = pki.ca_cert;
  good.cert_file = pki.client_cert;
  good.key_file = pki.client_key;
  const Transport loaded = Transport::of(tls_target(good));
  CHECK(loaded.tls_error.empty());
  CHECK(loaded.tls);

  const std::string fifo = test::make_fifo(dir, "fifo.pem");
  for (const std::string key : {"ca_file", "cert_file", "key_file"}) {
    INFO(key);
    TlsClientConfig c = good;
    const std::string origin = "m.yaml:4:20: targets[0].tls." + key;
    if (key == "ca_file") std::tie(c.ca_file, c.ca_file_origin) = std::tie(fifo, origin);
    if (key == "cert_file") std::tie(c.cert_file, c.cert_file_origin) = std::tie(fifo, origin);
    if (key == "key_file") std::tie(c.key_file, c.key_file_origin) = std::tie(fifo, origin);
    auto t = test::unless_held(fifo, [&] { return Transport::of(tls_target(c)); });
    REQUIRE(t.has_value());
    CHECK(t->tls_error == origin + ": " + fifo + ": is a FIFO, not a regular file");
  }

  TlsClientConfig missing = good;
  missing.ca_file = dir.path() + "/none.pem";
  CHECK(Transport::of(tls_target(missing)).tls_error ==
        "tls.ca_file: " + missing.ca_file + ": cannot open: No such file or directory");
  TlsClientConfig not_a_ca = good;
  not_a_ca.ca_file = dir.write("empty.pem", "");
  CHECK_THAT(
      Transport::of(tls_target(not_a_ca)).tls_error,
      StartsWith("tls.ca_file: " + not_a_ca.ca_file + ": cannot load the CA certificates: "));
  TlsClientConfig mismatched = good;
  mismatched.key_file = pki.server_key;
  CHECK_THAT(Transport::of(tls_target(mismatched)).tls_error,
             StartsWith("tls.key_file: " + pki.server_key +
                        ": cannot load the private key: key values mismatch"));
}
