#pragma once
// What tests of the secured endpoint need: certificates made at run time with the openssl CLI,
// bcrypt hashes made with htpasswd (an implementation other than the daemon's libxcrypt), and
// curl as the TLS client. All three come from Debian packages that scripts/bootstrap installs.

#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace mcb::test {

// A CA, a server certificate for localhost, 127.0.0.1 and ::1 signed by it, a client certificate
// signed by it, and a self-signed client certificate nobody trusts. Files in `dir`, PEM, EC P-256,
// valid for two days. Throws with openssl's output when a step fails.
struct TestPki {
  std::string ca_cert;
  std::string server_cert, server_key;
  std::string client_cert, client_key;
  std::string stranger_cert, stranger_key;
};
TestPki make_test_pki(const TempDir& dir);

// "$2y$..." from `htpasswd -nbBC <cost>`. Throws when htpasswd fails.
std::string bcrypt_hash(const std::string& user, const std::string& password, int cost = 10);

// One curl request with a bounded time: `args` are appended (URL, --cacert, -u, ...). The reply
// headers and body are in `output` (curl -i); `status` is the HTTP status, 0 when there was no
// HTTP reply (refused, reset, TLS failure; curl's message is then in `output`).
struct CurlReply {
  int status = 0;
  std::string output;
};
CurlReply curl(const std::vector<std::string>& args, int max_seconds = 10);

}  // namespace mcb::test
