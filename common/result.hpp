#pragma once
// Result<T>: the value of an operation that the environment can make fail (a file, a peer, a
// config). It holds either a T or an Error whose message a person can act on. Exceptions are
// kept for what cannot happen; everything that can is a Result. Plain value type, not
// thread-safe beyond the usual value semantics.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace mcb {

struct Error {
  std::string message;
};

// Builds an Error; reads naturally at a return site: `return fail("no such file");`.
inline Error fail(std::string message) { return Error{std::move(message)}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Precondition: ok().
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // Precondition: !ok().
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result of an operation with no value.
struct Ok {};
using Status = Result<Ok>;
inline Status ok_status() { return Ok{}; }

}  // namespace mcb
