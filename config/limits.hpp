#pragma once
// The documented bounds of what a configuration may ask for (docs/security.md lists them). Each
// protects the daemon from a file that would crash it, stall its event loop or turn it against
// what it watches, and each is checked when the file is loaded, so `--check-config`, the start
// and a reload refuse the same files with the same messages. Constants only; thread-safe.

#include <chrono>
#include <cstddef>

namespace mcb {

// A configuration or web configuration file larger than this is refused before it is parsed, so
// that a reload never holds the event loop for long nor swells the process: yaml-cpp reads about
// 3 MB/s and holds some 50 times the text in nodes while it does (a 256 KiB file: about 0.1 s and
// 15 MiB, freed after). A file for 3,000 targets fits.
inline constexpr std::size_t kMaxConfigFileBytes = std::size_t{256} << 10;

// At most this many errors are reported for one file; the walk stops at the next one.
inline constexpr std::size_t kMaxReportedErrors = 50;

// Target names and basic-auth user names: at most this many bytes of printable UTF-8.
inline constexpr std::size_t kMaxNameBytes = 256;

// Host names, as DNS allows.
inline constexpr std::size_t kMaxHostBytes = 253;

// File and directory names (paths.procfs, paths.sysfs, web.config_file, TLS files): PATH_MAX
// less its NUL.
inline constexpr std::size_t kMaxPathBytes = 4095;

// A TLS file (a CA bundle, a certificate chain, a key) larger than this is refused, read no
// further: it is read into memory at each load, on the loop at a reload. The system's whole CA
// bundle is about 220 KiB.
inline constexpr std::size_t kMaxTlsFileBytes = std::size_t{1} << 20;

// A unix socket path fits in sockaddr_un's sun_path with its NUL.
inline constexpr std::size_t kMaxUnixPathBytes = 107;

// Regular expressions (collectors.netdev.include and exclude), matched by RE2 in time linear in
// the name but proportional to the compiled program: counted repetitions copy their operand, so
// nesting, counts and the program's size are bounded (a 1,000-instruction program matches a
// device name in about a microsecond; the ordinary patterns compile to 10 to 30). No interface
// name is longer than 15 bytes, so none of these bounds refuses a useful pattern.
inline constexpr std::size_t kMaxRegexBytes = 256;
inline constexpr std::size_t kMaxRegexNesting = 16;  // groups and bracket expressions, nested
inline constexpr std::size_t kMaxRegexRepeat = 100;  // n and m of {n}, {n,} and {n,m}
inline constexpr int kMaxRegexProgramSize = 1000;    // RE2's ProgramSize()

// The fresh-connection probe: 0 turns it off, anything else is at least this. Ten connections a
// second is far below what ConnectionSprawl looks for, so the daemon never sprawls itself.
inline constexpr std::chrono::milliseconds kMinProbeInterval{100};

// bcrypt costs in basic_auth_users. Each step doubles the time of a check: cost 12 takes about
// 0.3 s on one core of a 2024 server, 14 about 1 s, 15 over 2 s, which would hold the password
// thread (and every other client's first check) for seconds. Above kUsualBcryptCost the load
// warns; above kMaxBcryptCost it is an error.
inline constexpr int kUsualBcryptCost = 12;
inline constexpr int kMaxBcryptCost = 14;

// RSA keys of the web configuration's tls_server_config. A TLS handshake signs with the key on the
// event loop: `openssl speed` on one core of the build machine signs in 0.02 ms with P-256, 0.7 ms
// with RSA 2048 and 4.5 ms with 4096; an 8192-bit key held the loop about 80 ms a handshake, so
// anyone who can connect could hold every collector back.
inline constexpr int kMaxRsaKeyBits = 4096;

}  // namespace mcb
