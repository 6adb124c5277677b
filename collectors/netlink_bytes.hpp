#pragma once
// Writing and reading the fixed-layout structs of netlink messages (sock_diag requests and
// replies). Pure; any thread.

#include <cstddef>
#include <cstring>
#include <span>
#include <vector>

namespace mcb {

// Appends the bytes of `value` to `out`.
template <class T>
void append(std::vector<std::byte>& out, const T& value) {
  const auto* p = reinterpret_cast<const std::byte*>(&value);
  out.insert(out.end(), p, p + sizeof value);
}

// A T copied from the start of `bytes`. The datagram may sit at any alignment, so structs are
// copied out rather than cast in place. Precondition: bytes.size() >= sizeof(T).
template <class T>
T load(std::span<const std::byte> bytes) {
  T value;
  std::memcpy(&value, bytes.data(), sizeof value);
  return value;
}

}  // namespace mcb
