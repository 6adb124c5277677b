#include "daemon/http/security.hpp"

#include <openssl/ssl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

namespace mcb {

namespace ssl = boost::asio::ssl;

namespace {

// OpenSSL reports a file it cannot open without a reason: find the reason first.
std::optional<std::string> unreadable(const std::string& file) {
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (f == nullptr) return std::string(std::strerror(errno));
  std::fclose(f);
  return std::nullopt;
}

Result<std::shared_ptr<ssl::context>> make_tls_context(const TlsServerConfig& t,
                                                       const std::string& source) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  boost::system::error_code ec;
  auto error = [&](std::string_view key, const std::string& file, std::string_view what) {
    return fail(source + ": tls_server_config." + std::string(key) + ": " + file + ": " +
                std::string(what) + (ec ? ": " + ec.message() : ""));
  };
  for (const auto& [key, file] :
       {std::pair<std::string_view, const std::string&>{"cert_file", t.cert_file},
        {"key_file", t.key_file},
        {"client_ca_file", t.client_ca_file}}) {
    if (file.empty()) continue;
    if (auto why = unreadable(file)) return error(key, file, "cannot read: " + *why);
  }
  ctx->set_options(ssl::context::default_workarounds | SSL_OP_NO_RENEGOTIATION |
                   SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_min_proto_version(
      native, t.min_version == TlsVersion::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  // An encrypted key would make OpenSSL ask for a passphrase on the terminal: refuse it instead.
  ctx->set_password_callback(
      [](std::size_t, ssl::context::password_purpose) { return std::string(); });

  ctx->use_certificate_chain_file(t.cert_file, ec);
  if (ec) return error("cert_file", t.cert_file, "cannot load the certificate chain");
  // Also checks that the key is the certificate's ("key values mismatch").
  ctx->use_private_key_file(t.key_file, ssl::context::pem, ec);
  if (ec) return error("key_file", t.key_file, "cannot load the private key");

  if (!t.client_ca_file.empty()) {
    ctx->load_verify_file(t.client_ca_file, ec);
    if (ec) return error("client_ca_file", t.client_ca_file, "cannot load the CA certificates");
    // The CAs are also named to clients, so they know which certificate to send.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(t.client_ca_file.c_str());
    if (names == nullptr) return error("client_ca_file", t.client_ca_file, "no certificates");
    SSL_CTX_set_client_CA_list(native, names);
  }
  // Sessions resumed with a client certificate must come from this server's context.
  static constexpr unsigned char kSessionContext[] = "mcbacklogd";
  SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);

  auto accept_any = [](bool, ssl::verify_context&) { return true; };
  switch (t.client_auth) {
    case ClientAuth::kNoClientCert:
      ctx->set_verify_mode(ssl::verify_none);
      break;
    case ClientAuth::kRequestClientCert:
      ctx->set_verify_mode(ssl::verify_peer);
      ctx->set_verify_callback(accept_any);
      break;
    case ClientAuth::kRequireAnyClientCert:
      ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
      ctx->set_verify_callback(accept_any);
      break;
    case ClientAuth::kVerifyClientCertIfGiven:
      ctx->set_verify_mode(ssl::verify_peer);
      break;
    case ClientAuth::kRequireAndVerifyClientCert:
      ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
      break;
  }
  return ctx;
}

std::string summary_of(const WebConfigFile& c) {
  static constexpr const char* kClientAuth[] = {
      "", ", client certificates requested", ", client certificates required",
      ", client certificates verified if given", ", client certificates required and verified"};
  std::string s = "plain HTTP";
  if (c.tls) {
    s = std::string("TLS (") + (c.tls->min_version == TlsVersion::kTls13 ? "TLS13" : "TLS12") +
        " or later" + kClientAuth[static_cast<int>(c.tls->client_auth)] + ")";
  }
  if (c.basic_auth_users.empty()) return s + ", no authentication";
  return s + ", basic auth (" + std::to_string(c.basic_auth_users.size()) +
         (c.basic_auth_users.size() == 1 ? " user)" : " users)");
}

}  // namespace

Result<std::shared_ptr<const HttpSecurity>> make_http_security(const WebConfigFile& config) {
  auto s = std::make_shared<HttpSecurity>();
  s->source = config.source;
  if (config.tls) {
    auto ctx = make_tls_context(*config.tls, config.source);
    if (!ctx) return ctx.error();
    s->tls = *ctx;
  }
  if (!config.basic_auth_users.empty()) {
    s->auth = std::make_shared<BasicAuth>(config.basic_auth_users);
  }
  s->summary = summary_of(config);
  s->warnings = config.warnings;
  return std::shared_ptr<const HttpSecurity>(std::move(s));
}

Result<std::shared_ptr<const HttpSecurity>> load_http_security(const std::string& path) {
  if (path.empty()) return make_http_security(WebConfigFile{});
  auto config = load_web_config_file(path);
  if (!config) return config.error();
  return make_http_security(*config);
}

}  // namespace mcb
