#pragma once
// The HTTP endpoints as a pure function from request to response, testable without sockets:
// /metrics, /scrape?target=NAME, /alerts, /runbooks/, /-/healthy, /-/ready and the landing page.
// What they serve comes from HttpContent callbacks, so this layer knows nothing about collectors.
// Loop thread only.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "common/result.hpp"

namespace mcb {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

struct HttpContent {
  std::function<const std::string&()> metrics_text;  // text format body, cached per sample
  std::function<const std::string&()> metrics_gzip;  // the same, gzip-compressed
  std::function<bool()> ready;                       // a first sample is complete
  std::function<const std::string&()> alerts_json;   // null: /alerts is not served
  // The runbook page at /runbooks/<path> ("" is the index), or nullopt for 404; null: not served.
  std::function<std::optional<std::string>(std::string_view path)> runbook;
  // /scrape?target=NAME, memcached_exporter's multi-target convention: the text format body of
  // one memcached's series, or nullopt when no target has that name (or address). Null: /scrape
  // is not served.
  std::function<std::optional<std::string>(std::string_view target)> target_metrics;
  std::string version;
};

// Pure. The value of parameter `name` in a request target's query ("/scrape?target=a%3A1"),
// percent- and '+'-decoded; nullopt when it is absent, an error when its escapes are malformed
// ("%zz", "%4").
Result<std::optional<std::string>> query_parameter(std::string_view request_target,
                                                   std::string_view name);

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

HttpResponse handle_http(const HttpRequest& request, const HttpContent& content);

}  // namespace mcb
