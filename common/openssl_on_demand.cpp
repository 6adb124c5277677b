// The OpenSSL functions mcbacklogd calls, each a forwarder to the same function in the library
// opened on first use (see openssl_on_demand.hpp). A function's definition here must match
// OpenSSL's own declaration, which the compiler checks: a C function cannot be overloaded.
// Adding a call to an OpenSSL function not listed fails to link; list it here. The two compilers
// keep different parts of Boost.Asio's inline code (clang keeps use_private_key's DER branch, for
// d2i_PrivateKey_bio): build both (scripts/test does).
#include "common/openssl_on_demand.hpp"

#include <dlfcn.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/opensslv.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <string>

// X(return type, name, parameters, arguments)
// clang-format off
#define MCB_OPENSSL_FUNCTIONS(X) \
  X(long, BIO_ctrl, (BIO* bp, int cmd, long larg, void* parg), (bp, cmd, larg, parg)) \
  X(size_t, BIO_ctrl_pending, (BIO* b), (b)) \
  X(int, BIO_free, (BIO* a), (a)) \
  X(BIO*, BIO_new, (const BIO_METHOD* type), (type)) \
  X(int, BIO_new_bio_pair, (BIO** bio1, size_t writebuf1, BIO** bio2, size_t writebuf2), \
      (bio1, writebuf1, bio2, writebuf2)) \
  X(BIO*, BIO_new_mem_buf, (const void* buf, int len), (buf, len)) \
  X(int, BIO_read, (BIO* b, void* data, int dlen), (b, data, dlen)) \
  X(const BIO_METHOD*, BIO_s_mem, (), ()) \
  X(int, BIO_write, (BIO* b, const void* data, int dlen), (b, data, dlen)) \
  X(int, CRYPTO_memcmp, (const void* in_a, const void* in_b, size_t len), (in_a, in_b, len)) \
  X(void, ERR_clear_error, (), ()) \
  X(unsigned long, ERR_get_error, (), ()) \
  X(unsigned long, ERR_peek_error, (), ()) \
  X(unsigned long, ERR_peek_last_error, (), ()) \
  X(const char*, ERR_reason_error_string, (unsigned long e), (e)) \
  X(void, EVP_PKEY_free, (EVP_PKEY* pkey), (pkey)) \
  X(int, EVP_PKEY_get_base_id, (const EVP_PKEY* pkey), (pkey)) \
  X(int, EVP_PKEY_get_bits, (const EVP_PKEY* pkey), (pkey)) \
  X(int, EVP_PKEY_get_group_name, \
      (const EVP_PKEY* pkey, char* name, size_t name_sz, size_t* gname_len), \
      (pkey, name, name_sz, gname_len)) \
  X(int, EVP_PKEY_get_utf8_string_param, \
      (const EVP_PKEY* pkey, const char* key_name, char* str, size_t max_buf_sz, size_t* out_sz), \
      (pkey, key_name, str, max_buf_sz, out_sz)) \
  X(const EVP_MD*, EVP_sha256, (), ()) \
  X(unsigned char*, HMAC, \
      (const EVP_MD* evp_md, const void* key, int key_len, const unsigned char* data, \
       size_t data_len, unsigned char* md, unsigned int* md_len), \
      (evp_md, key, key_len, data, data_len, md, md_len)) \
  X(const char*, OBJ_nid2sn, (int n), (n)) \
  X(int, OPENSSL_sk_num, (const OPENSSL_STACK* a0), (a0)) \
  X(EVP_PKEY*, PEM_read_bio_PrivateKey, (BIO* out, EVP_PKEY** x, pem_password_cb* cb, void* u), \
      (out, x, cb, u)) \
  X(X509*, PEM_read_bio_X509, (BIO* out, X509** x, pem_password_cb* cb, void* u), (out, x, cb, u)) \
  X(X509*, PEM_read_bio_X509_AUX, (BIO* out, X509** x, pem_password_cb* cb, void* u), \
      (out, x, cb, u)) \
  X(EVP_PKEY*, d2i_PrivateKey_bio, (BIO* bp, EVP_PKEY** a), (bp, a)) \
  X(int, RAND_bytes, (unsigned char* buf, int num), (buf, num)) \
  X(int, SSL_CTX_add_client_CA, (SSL_CTX* ctx, X509* x), (ctx, x)) \
  X(long, SSL_CTX_ctrl, (SSL_CTX* ctx, int cmd, long larg, void* parg), (ctx, cmd, larg, parg)) \
  X(void, SSL_CTX_free, (SSL_CTX* a0), (a0)) \
  X(EVP_PKEY*, SSL_CTX_get0_privatekey, (const SSL_CTX* ctx), (ctx)) \
  X(X509_STORE*, SSL_CTX_get_cert_store, (const SSL_CTX* a0), (a0)) \
  X(pem_password_cb*, SSL_CTX_get_default_passwd_cb, (SSL_CTX* ctx), (ctx)) \
  X(void*, SSL_CTX_get_default_passwd_cb_userdata, (SSL_CTX* ctx), (ctx)) \
  X(void*, SSL_CTX_get_ex_data, (const SSL_CTX* ssl, int idx), (ssl, idx)) \
  X(SSL_verify_cb, SSL_CTX_get_verify_callback, (const SSL_CTX* ctx), (ctx)) \
  X(int, SSL_CTX_get_verify_mode, (const SSL_CTX* ctx), (ctx)) \
  X(SSL_CTX*, SSL_CTX_new, (const SSL_METHOD* meth), (meth)) \
  X(void, SSL_CTX_set_default_passwd_cb, (SSL_CTX* ctx, pem_password_cb* cb), (ctx, cb)) \
  X(void, SSL_CTX_set_default_passwd_cb_userdata, (SSL_CTX* ctx, void* u), (ctx, u)) \
  X(int, SSL_CTX_set_default_verify_paths, (SSL_CTX* ctx), (ctx)) \
  X(int, SSL_CTX_set_ex_data, (SSL_CTX* ssl, int idx, void* data), (ssl, idx, data)) \
  X(uint64_t, SSL_CTX_set_options, (SSL_CTX* ctx, uint64_t op), (ctx, op)) \
  X(int, SSL_CTX_set_session_id_context, \
      (SSL_CTX* ctx, const unsigned char* sid_ctx, unsigned int sid_ctx_len), \
      (ctx, sid_ctx, sid_ctx_len)) \
  X(void, SSL_CTX_set_verify, (SSL_CTX* ctx, int mode, SSL_verify_cb callback), \
      (ctx, mode, callback)) \
  X(int, SSL_CTX_use_PrivateKey, (SSL_CTX* ctx, EVP_PKEY* pkey), (ctx, pkey)) \
  X(int, SSL_CTX_use_certificate, (SSL_CTX* ctx, X509* x), (ctx, x)) \
  X(int, SSL_accept, (SSL* ssl), (ssl)) \
  X(int, SSL_connect, (SSL* ssl), (ssl)) \
  X(long, SSL_ctrl, (SSL* ssl, int cmd, long larg, void* parg), (ssl, cmd, larg, parg)) \
  X(void, SSL_free, (SSL* ssl), (ssl)) \
  X(X509_VERIFY_PARAM*, SSL_get0_param, (SSL* ssl), (ssl)) \
  X(SSL_CTX*, SSL_get_SSL_CTX, (const SSL* ssl), (ssl)) \
  X(int, SSL_get_error, (const SSL* s, int ret_code), (s, ret_code)) \
  X(void*, SSL_get_ex_data, (const SSL* ssl, int idx), (ssl, idx)) \
  X(int, SSL_get_ex_data_X509_STORE_CTX_idx, (), ()) \
  X(BIO*, SSL_get_rbio, (const SSL* s), (s)) \
  X(int, SSL_get_shutdown, (const SSL* ssl), (ssl)) \
  X(long, SSL_get_verify_result, (const SSL* ssl), (ssl)) \
  X(int, SSL_has_pending, (const SSL* s), (s)) \
  X(SSL*, SSL_new, (SSL_CTX* ctx), (ctx)) \
  X(int, SSL_read, (SSL* ssl, void* buf, int num), (ssl, buf, num)) \
  X(void, SSL_set0_wbio, (SSL* s, BIO* wbio), (s, wbio)) \
  X(int, SSL_set1_host, (SSL* s, const char* hostname), (s, hostname)) \
  X(void, SSL_set_bio, (SSL* s, BIO* rbio, BIO* wbio), (s, rbio, wbio)) \
  X(int, SSL_set_ex_data, (SSL* ssl, int idx, void* data), (ssl, idx, data)) \
  X(void, SSL_set_hostflags, (SSL* s, unsigned int flags), (s, flags)) \
  X(int, SSL_shutdown, (SSL* s), (s)) \
  X(int, SSL_write, (SSL* ssl, const void* buf, int num), (ssl, buf, num)) \
  X(const SSL_METHOD*, TLS_client_method, (), ()) \
  X(const SSL_METHOD*, TLS_method, (), ()) \
  X(const SSL_METHOD*, TLS_server_method, (), ()) \
  X(void*, X509_STORE_CTX_get_ex_data, (const X509_STORE_CTX* ctx, int idx), (ctx, idx)) \
  X(int, X509_STORE_add_cert, (X509_STORE* ctx, X509* x), (ctx, x)) \
  X(STACK_OF(X509_OBJECT)*, X509_STORE_get0_objects, (const X509_STORE* v), (v)) \
  X(int, X509_VERIFY_PARAM_set1_ip_asc, (X509_VERIFY_PARAM* param, const char* ipasc), \
      (param, ipasc)) \
  X(void, X509_free, (X509* a), (a)) \
  X(const char*, X509_verify_cert_error_string, (long n), (n))
// clang-format on

namespace mcb {
namespace {

struct OpenSsl {
// NOLINTNEXTLINE(bugprone-macro-parentheses): `name` is a declarator
#define MCB_OPENSSL_POINTER(ret, name, params, args) decltype(&::name) name = nullptr;
  MCB_OPENSSL_FUNCTIONS(MCB_OPENSSL_POINTER)
#undef MCB_OPENSSL_POINTER
  std::string error;  // empty when every function above is bound
};

std::string library_name() { return "libssl.so." + std::to_string(OPENSSL_VERSION_MAJOR); }

OpenSsl open_openssl() {
  OpenSsl o;
  const std::string library = library_name();
  // RTLD_LOCAL: the library's symbols stay out of the global scope, so nothing else binds to
  // them; the handle is never closed.
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    o.error = "cannot open " + library + " for TLS and basic auth (once it is installed, restart " +
              "mcbacklogd): " + (why != nullptr ? why : "dlopen failed");
    return o;
  }
  // dlsym on the handle searches libssl, then its dependencies (libcrypto), never this program,
  // so a forwarder below cannot find itself.
#define MCB_OPENSSL_BIND(ret, name, params, args)                                    \
  o.name = reinterpret_cast<decltype(&::name)>(dlsym(handle, #name));                \
  if (o.name == nullptr && o.error.empty()) {                                        \
    o.error = library + " (with libcrypto) lacks " #name ", which mcbacklogd calls"; \
  }
  MCB_OPENSSL_FUNCTIONS(MCB_OPENSSL_BIND)
#undef MCB_OPENSSL_BIND
  return o;
}

const OpenSsl& openssl() {
  static const OpenSsl kOpened = open_openssl();
  return kOpened;
}

// What a forwarder calls: the bound library, or a clear end when there is none (load_openssl()
// at start-up reports the same reason as an error before any forwarder runs).
const OpenSsl& usable_openssl() {
  const OpenSsl& o = openssl();
  if (!o.error.empty()) {
    std::fprintf(stderr, "mcbacklogd: %s\n", o.error.c_str());
    std::abort();
  }
  return o;
}

}  // namespace

std::string load_openssl() { return openssl().error; }

bool openssl_loaded() {
  void* handle = dlopen(library_name().c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return false;
  dlclose(handle);  // RTLD_NOLOAD took a reference
  return true;
}

}  // namespace mcb

#define MCB_OPENSSL_FORWARD(ret, name, params, args) \
  ret name params { return mcb::usable_openssl().name args; }
MCB_OPENSSL_FUNCTIONS(MCB_OPENSSL_FORWARD)
#undef MCB_OPENSSL_FORWARD
