// Bytes from a client as the server reads them: Beast's request parser with the server's limits,
// then what the server does with a request: the Authorization header, and handle_http.
// seeds: tests/fuzz/corpus/http_request

#include <boost/beast/http/parser.hpp>

#include "daemon/http/basic_auth.hpp"
#include "daemon/http/handler.hpp"
#include "daemon/http/server.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string kText = "mcbacklog_somaxconn 4096\n";
  static const std::string kAlerts = "{\"alerts\":[]}";
  static const mcb::HttpContent kContent{
      .metrics_text = []() -> const std::string& { return kText; },
      .metrics_gzip = []() -> const std::string& { return kText; },
      .ready = [] { return true; },
      .alerts_json = []() -> const std::string& { return kAlerts; },
      .runbook = [](std::string_view path) -> std::optional<std::string> {
        if (path.empty()) return std::string("<html>index</html>");
        return std::nullopt;
      },
      .target_metrics = [](std::string_view target) -> std::optional<std::string> {
        if (target == "main") return kText;
        return std::nullopt;
      },
      .version = "fuzz"};
  const mcb::HttpLimits limits;
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.header_limit));
  parser.body_limit(limits.body_limit);
  parser.eager(true);
  boost::asio::const_buffer rest(data, size);
  boost::beast::error_code ec;
  while (rest.size() > 0 && !parser.is_done() && !ec) {
    rest += parser.put(rest, ec);
    if (ec == http::error::need_more) return 0;
  }
  if (ec || !parser.is_done()) return 0;
  const mcb::HttpRequest request = parser.release();
  const auto authorization = request[http::field::authorization];
  (void)mcb::parse_basic_authorization({authorization.data(), authorization.size()});
  const mcb::HttpResponse response = mcb::handle_http(request, kContent);
  mcb::fuzz::require(response.has_content_length(), "every response has a Content-Length");
  return 0;
}
