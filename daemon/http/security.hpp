#pragma once
// HttpSecurity: what the web config file turns into for the HTTP server: a TLS context (or plain
// HTTP) and the basic-auth users (or none). Built once per load; the server holds it through a
// shared_ptr, so a reload swaps it whole while open connections keep the one they started with.
// Immutable after construction except BasicAuth's remembered digests (loop thread only).

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "common/result.hpp"
#include "config/web_config_file.hpp"
#include "daemon/http/basic_auth.hpp"

namespace mcb {

struct HttpSecurity {
  std::string source;                              // the web config file; empty: none
  std::shared_ptr<boost::asio::ssl::context> tls;  // null: plain HTTP
  std::shared_ptr<BasicAuth> auth;                 // null: no authentication
  std::string summary;  // for the log, e.g. "TLS (TLS13 or later), basic auth (2 users)"
  std::vector<std::string> warnings;  // the web config file's (WebConfigFile::warnings)
};

// Loads the certificate, key and client CAs the file names; every error names where the file is
// named (file, line, column and key), the file and the reason. Each is read through
// read_regular_file (common/files.hpp): a FIFO or a device is refused, never waited on.
Result<std::shared_ptr<const HttpSecurity>> make_http_security(const WebConfigFile& config);

// load_web_config_file, then make_http_security. An empty path is plain HTTP without auth.
// `origin`: where the path is set (WebConfig::config_file_origin), for load_web_config_file.
Result<std::shared_ptr<const HttpSecurity>> load_http_security(const std::string& path,
                                                               const std::string& origin = "");

}  // namespace mcb
