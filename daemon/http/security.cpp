#include "daemon/http/security.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <string_view>
#include <utility>

#include "common/files.hpp"
#include "common/openssl_on_demand.hpp"
#include "common/text.hpp"
#include "config/limits.hpp"

namespace mcb {

namespace ssl = boost::asio::ssl;

namespace {

// The subjects of the certificates in `pem`, named to clients as the CAs their certificate must
// chain to (what SSL_load_client_CA_file does from a path). False if there is none.
bool add_client_ca_names(SSL_CTX* native, std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return false;
  bool added = false;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    added = SSL_CTX_add_client_CA(native, cert) == 1 || added;
    X509_free(cert);
  }
  ERR_clear_error();  // the end of the text
  BIO_free(bio);
  return added;
}

// Why `key` would not serve: empty if it will. Handshakes run on the event loop, and a key no
// client offers to verify fails every one of them.
std::string unusable_key(EVP_PKEY* key) {
  const int bits = EVP_PKEY_get_bits(key);
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      if (bits > kMaxRsaKeyBits) {
        return "an RSA key of " + std::to_string(bits) + " bits; at most " +
               std::to_string(kMaxRsaKeyBits) +
               " are allowed: every TLS handshake signs with it on the event loop (about 80 ms "
               "at 8192 bits), so anyone who can connect could hold the loop; an EC key on P-256 "
               "signs in microseconds";
      }
      return "";
    case EVP_PKEY_EC: {
      char group[64] = {};
      std::size_t length = 0;
      if (EVP_PKEY_get_group_name(key, group, sizeof group, &length) != 1) {
        return "an EC key on an unnamed curve: TLS clients (Prometheus, curl) verify only "
               "P-256, P-384 and P-521";
      }
      // Go's TLS (Prometheus) parses only named curves: a key written with the curve's explicit
      // parameters fails every handshake there, whatever curve they describe.
      char encoding[32] = {};
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, encoding,
                                         sizeof encoding, nullptr) == 1 &&
          std::string_view(encoding) == OSSL_PKEY_EC_ENCODING_EXPLICIT) {
        return "an EC key written with its curve's explicit parameters: Prometheus (Go) reads "
               "only named curves, so every scrape would fail; write it with the curve's name "
               "(openssl ec -param_enc named_curve)";
      }
      const std::string_view name(group, length);
      if (name == "prime256v1" || name == "secp384r1" || name == "secp521r1") return "";
      return "an EC key on curve " + escape_untrusted(name) +
             ": TLS clients (Prometheus, curl) verify only P-256, P-384 and P-521, so every "
             "handshake would fail; make one on P-256 (openssl req -newkey ec -pkeyopt "
             "ec_paramgen_curve:P-256)";
    }
    case EVP_PKEY_ED25519:
      return "";
    default:
      // Ed448 and RSA-PSS keys load and serve curl, but Prometheus (Go) offers neither.
      return "a key of a type Prometheus (Go) does not verify (" +
             escape_untrusted(OBJ_nid2sn(EVP_PKEY_get_base_id(key))) +
             "); use EC (P-256, P-384, P-521), Ed25519 or RSA";
  }
}

Result<std::shared_ptr<ssl::context>> make_tls_context(const TlsServerConfig& t,
                                                       const std::string& source) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ctx->set_options(ssl::context::default_workarounds | SSL_OP_NO_RENEGOTIATION |
                   SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_min_proto_version(
      native, t.min_version == TlsVersion::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  // An encrypted key would make OpenSSL ask for a passphrase on the terminal: refuse it instead.
  ctx->set_password_callback(
      [](std::size_t, ssl::context::password_purpose) { return std::string(); });

  // Each file is read here, opened without blocking and refused unless it is a regular file (a
  // FIFO would hold the loop for ever), and OpenSSL loads it from memory. Errors begin with where
  // the file is named and the file.
  const auto where = [&](std::string_view key, const std::string& origin, const std::string& file) {
    return (origin.empty() ? source + ": tls_server_config." + std::string(key) : origin) + ": " +
           escape_untrusted(file, kMaxPathBytes) + ": ";
  };
  const auto read = [&](std::string_view key, const std::string& origin,
                        const std::string& file) -> Result<std::string> {
    if (file.empty()) return std::string();
    auto text = read_regular_file(file, kMaxTlsFileBytes, "a TLS file");
    if (!text) return fail(where(key, origin, file) + text.error().message);
    return text;
  };
  auto chain = read("cert_file", t.cert_file_origin, t.cert_file);
  auto key = read("key_file", t.key_file_origin, t.key_file);
  auto client_cas = read("client_ca_file", t.client_ca_file_origin, t.client_ca_file);
  // Every file that cannot be read, one per line, so that one run shows all of them.
  std::string unread;
  for (const Result<std::string>* r : {&chain, &key, &client_cas}) {
    if (!*r) unread += (unread.empty() ? "" : "\n") + r->error().message;
  }
  if (!unread.empty()) return fail(unread);

  boost::system::error_code ec;
  ctx->use_certificate_chain(boost::asio::buffer(*chain), ec);
  if (ec) {
    return fail(where("cert_file", t.cert_file_origin, t.cert_file) +
                "cannot load the certificate chain: " + ec.message());
  }
  // Also checks that the key is the certificate's ("key values mismatch").
  ctx->use_private_key(boost::asio::buffer(*key), ssl::context::pem, ec);
  if (ec) {
    return fail(where("key_file", t.key_file_origin, t.key_file) +
                "cannot load the private key: " + ec.message());
  }
  if (const std::string why = unusable_key(SSL_CTX_get0_privatekey(native)); !why.empty()) {
    return fail(where("key_file", t.key_file_origin, t.key_file) + why);
  }
  if (!t.client_ca_file.empty()) {
    const std::string at = where("client_ca_file", t.client_ca_file_origin, t.client_ca_file);
    ctx->add_certificate_authority(boost::asio::buffer(*client_cas), ec);
    if (ec) return fail(at + "cannot load the CA certificates: " + ec.message());
    // The CAs are also named to clients, so they know which certificate to send.
    if (!add_client_ca_names(native, *client_cas)) {
      return fail(at + "cannot load the CA certificates: the file holds none");
    }
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
  // OpenSSL is opened only now, for TLS or basic auth (openssl_on_demand.hpp).
  if (config.tls || !config.basic_auth_users.empty()) {
    if (std::string why = load_openssl(); !why.empty()) return fail(config.source + ": " + why);
  }
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

Result<std::shared_ptr<const HttpSecurity>> load_http_security(const std::string& path,
                                                               const std::string& origin) {
  if (path.empty()) return make_http_security(WebConfigFile{});
  auto config = load_web_config_file(path, origin);
  if (!config) return config.error();
  return make_http_security(*config);
}

}  // namespace mcb
