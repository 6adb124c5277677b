#pragma once
// OpenSSL on demand: mcbacklogd maps libssl and libcrypto only when a TLS listener, a TLS target
// or basic auth is configured. The OpenSSL functions mcbacklogd and Boost.Asio's ssl streams call
// are defined in openssl_on_demand.cpp; the first call of any of them opens
// libssl.so.<OPENSSL_VERSION_MAJOR> (and through it libcrypto) with dlopen and binds every one
// with dlsym. A daemon without TLS or basic auth thus carries neither library: about 1.7 MiB of
// resident pages and their relocation at start.
//
// Thread rules: load_openssl() and the functions may be called from any thread; the first load
// happens once (a function-local static).

#include <string>

namespace mcb {

// Opens OpenSSL now. Empty when it is usable; otherwise the reason (the library that could not be
// opened or the function it lacks, from dlerror). Call it where the configuration first asks for
// TLS or basic auth, so a missing library is a clear start-up error: a function called without a
// usable library writes that reason to stderr and aborts.
std::string load_openssl();

// True once OpenSSL has been opened in this process (for tests and the debug log).
bool openssl_loaded();

}  // namespace mcb
