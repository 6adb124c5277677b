#pragma once
// The /alerts body: its writer, and the one reader that `diagnose --from-daemon` and the tests
// share. Pure functions over strings; thread-safe.
//
// {"alerts":[{"name","state","condition","target","labels","since","active_since","value",
//   "threshold","cause","evidence","remediation"}]}
// `state` is the firing level, `condition` the level now (above state while pending), both
// "ok", "warning" or "critical"; `target` the subject's first label value or null; `since` when
// the state last changed and `active_since` when the condition last left ok (null while ok), as
// RFC 3339 UTC; `value` null when nothing was measured. Strings are valid UTF-8 whatever the
// subject's name held (invalid bytes become U+FFFD).

#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "daemon/alerts/evaluator.hpp"

namespace mcb {

std::string alerts_json(const std::vector<AlertStatus>& statuses);

// Limits on what the reader accepts: a daemon's body is far below them, a hostile one is refused
// with a clear error rather than followed.
inline constexpr std::size_t kMaxAlertsJsonBytes = 16 * 1024 * 1024;
inline constexpr int kMaxAlertsJsonDepth = 8;

// Errors: not JSON, nested deeper than kMaxAlertsJsonDepth, larger than kMaxAlertsJsonBytes, or
// not the shape above (the message names the field; the peer's bytes in it are escaped). The
// strings read (names, labels, cause, evidence, remediation) are the peer's: one that is not
// printable UTF-8 (is_printable_utf8) is escaped whole, so they may be printed as they are.
Result<std::vector<AlertStatus>> parse_alerts_json(std::string_view json);

}  // namespace mcb
