#pragma once
// The web configuration file (--web.config.file, web.config_file) in the format of the Prometheus
// exporter-toolkit, so an endpoint is secured the way every exporter's is:
//
//   tls_server_config:
//     cert_file: server.crt            # PEM chain, the server's certificate first
//     key_file: server.key             # PEM private key
//     client_ca_file: clients-ca.crt   # optional: CAs that client certificates must chain to
//     client_auth_type: RequireAndVerifyClientCert   # default NoClientCert
//     min_version: TLS13               # TLS12 (default) or TLS13
//   basic_auth_users:
//     prometheus: $2y$10$...           # user: bcrypt hash
//
// Parsing is pure and reports errors like the main configuration (file:line:col: key: reason;
// unknown keys are errors); relative file names are relative to the file's directory. Whether the
// certificate and key load is checked where the TLS context is built (daemon/http_security.hpp).
// Plain values; thread-safe as values are.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace mcb {

// The exporter-toolkit's client_auth_type values (Go's tls.ClientAuthType).
enum class ClientAuth {
  kNoClientCert,                // no certificate is asked for
  kRequestClientCert,           // asked for, not required, not verified
  kRequireAnyClientCert,        // required, not verified
  kVerifyClientCertIfGiven,     // not required; verified against client_ca_file if sent
  kRequireAndVerifyClientCert,  // required and verified against client_ca_file
};

enum class TlsVersion { kTls12, kTls13 };

struct TlsServerConfig {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // empty: none
  ClientAuth client_auth = ClientAuth::kNoClientCert;
  TlsVersion min_version = TlsVersion::kTls12;
  // Where each file is named ("FILE:LINE:COL: tls_server_config.cert_file"), which begins the
  // message when it cannot be loaded; empty when not from a file.
  std::string cert_file_origin;
  std::string key_file_origin;
  std::string client_ca_file_origin;
};

struct WebConfigFile {
  std::string source;                  // the file it came from, escaped for messages
  std::optional<TlsServerConfig> tls;  // absent: plain HTTP
  std::map<std::string, std::string, std::less<>> basic_auth_users;  // user -> bcrypt hash
  // What loads but deserves a word in the log (a bcrypt cost above the usual), one per line in
  // the form of an error.
  std::vector<std::string> warnings;
};

// Parses YAML text. `file_name` is used in error messages and to resolve relative file names.
Result<WebConfigFile> parse_web_config_file(std::string_view yaml, std::string_view file_name);

// Reads and parses a file. A missing or unreadable file is an error naming it, and so is one that
// is not a regular file (config/yaml_walker.hpp, read_config_file). `origin`, where the path is
// set ("FILE:LINE:COL: web.config_file"; empty for a flag), begins the message of such an error.
Result<WebConfigFile> load_web_config_file(const std::string& path, const std::string& origin = "");

// True if `hash` has the form of a bcrypt hash: "$2a$", "$2b$" or "$2y$", a two-digit cost from
// 04 to 31, "$", then 53 characters of bcrypt's base64 (salt and digest).
bool is_bcrypt_hash(std::string_view hash);

// The cost of a hash for which is_bcrypt_hash() holds. Each step doubles the time of a check;
// the web configuration refuses costs above kMaxBcryptCost (config/limits.hpp) and warns above
// kUsualBcryptCost.
int bcrypt_cost(std::string_view hash);

}  // namespace mcb
