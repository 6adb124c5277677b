#include "daemon/http/handler.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include "common/text.hpp"
#include "daemon/http/gzip.hpp"

namespace mcb {

namespace http = boost::beast::http;

namespace {

HttpResponse make(const HttpRequest& req, http::status status, std::string_view content_type,
                  std::string body) {
  HttpResponse res{status, req.version()};
  res.set(http::field::server, "mcbacklogd");
  res.set(http::field::content_type,
          boost::beast::string_view(content_type.data(), content_type.size()));
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  return res;
}

std::string landing_page(const HttpContent& c) {
  std::string links = "<li><a href=\"/metrics\">/metrics</a>: Prometheus metrics</li>\n";
  if (c.target_metrics) {
    links +=
        "<li>/scrape?target=NAME: one memcached's series, for a Prometheus instance per "
        "memcached</li>\n";
  }
  if (c.alerts_json)
    links += "<li><a href=\"/alerts\">/alerts</a>: alert states and diagnosis (JSON)</li>\n";
  if (c.runbook)
    links += "<li><a href=\"/runbooks/\">/runbooks/</a>: what each alert means, live</li>\n";
  links +=
      "<li><a href=\"/-/healthy\">/-/healthy</a>: liveness</li>\n"
      "<li><a href=\"/-/ready\">/-/ready</a>: readiness (a first sample is complete)</li>\n";
  return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>mcbacklogd</title></head>\n"
         "<body>\n<h1>mcbacklogd</h1>\n"
         "<p>Watches memcached's listen backlog and tells which cause is behind a full one.</p>\n"
         "<ul>\n" +
         links + "</ul>\n<p>Version " + c.version + "</p>\n</body></html>\n";
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] != '%') {
      out += text[i];
    } else {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex_digit(text[i + 1]);
      const int lo = hex_digit(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return out;
}

HttpResponse scrape(const HttpRequest& req, const HttpContent& c, std::string_view target) {
  const auto parameter = query_parameter(target, "target");
  if (!parameter) {
    return make(req, http::status::bad_request, "text/plain; charset=utf-8",
                parameter.error().message + "\n");
  }
  const std::optional<std::string>& name = *parameter;
  if (!name || name->empty()) {
    return make(req, http::status::bad_request, "text/plain; charset=utf-8",
                "the target parameter is missing: /scrape?target=NAME, NAME a target's name or "
                "address\n");
  }
  auto body = c.target_metrics(*name);
  if (!body) {
    return make(req, http::status::not_found, "text/plain; charset=utf-8",
                "mcbacklogd watches no memcached named " + quote_untrusted(*name) +
                    " (its targets are on /metrics, label target)\n");
  }
  const auto accept = req[http::field::accept_encoding];
  const bool gzip = accepts_gzip(std::string_view(accept.data(), accept.size()));
  auto res = make(req, http::status::ok, kMetricsContentType,
                  gzip ? gzip_compress(*body) : std::move(*body));
  if (gzip) res.set(http::field::content_encoding, "gzip");
  res.set(http::field::vary, "Accept-Encoding");
  return res;
}

}  // namespace

Result<std::optional<std::string>> query_parameter(std::string_view request_target,
                                                   std::string_view name) {
  const auto question = request_target.find('?');
  if (question == std::string_view::npos) return std::optional<std::string>();
  std::string_view query = request_target.substr(question + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    const auto key = decode(pair.substr(0, eq));
    if (!key || *key != name) continue;
    if (eq == std::string_view::npos) return std::optional<std::string>("");
    auto value = decode(pair.substr(eq + 1));
    if (!value) {
      return fail("the " + std::string(name) + " parameter " +
                  quote_untrusted(pair.substr(eq + 1)) +
                  " is not valid percent-encoding (a % takes two hex digits)");
    }
    return value;
  }
  return std::optional<std::string>();
}

HttpResponse handle_http(const HttpRequest& req, const HttpContent& c) {
  const bool head = req.method() == http::verb::head;
  if (req.method() != http::verb::get && !head) {
    auto res = make(req, http::status::method_not_allowed, "text/plain; charset=utf-8",
                    "only GET and HEAD are allowed\n");
    res.set(http::field::allow, "GET, HEAD");
    res.prepare_payload();
    return res;
  }
  const std::string_view request_target{req.target().data(), req.target().size()};
  const std::string_view target = request_target.substr(0, request_target.find('?'));

  HttpResponse res;
  if (target == "/metrics") {
    const auto accept = req[http::field::accept_encoding];
    const bool gzip = accepts_gzip(std::string_view(accept.data(), accept.size()));
    res = make(req, http::status::ok, kMetricsContentType,
               gzip ? c.metrics_gzip() : c.metrics_text());
    if (gzip) res.set(http::field::content_encoding, "gzip");
    res.set(http::field::vary, "Accept-Encoding");
  } else if (target == "/scrape" && c.target_metrics) {
    res = scrape(req, c, request_target);
  } else if (target == "/alerts" && c.alerts_json) {
    res = make(req, http::status::ok, "application/json", c.alerts_json());
  } else if (c.runbook && (target == "/runbooks" || target.rfind("/runbooks/", 0) == 0)) {
    auto page = c.runbook(target.size() > 10 ? target.substr(10) : std::string_view());
    res = page ? make(req, http::status::ok, "text/html; charset=utf-8", std::move(*page))
               : make(req, http::status::not_found, "text/plain; charset=utf-8",
                      "no such runbook; the index is /runbooks/\n");
  } else if (target == "/-/healthy") {
    res = make(req, http::status::ok, "text/plain; charset=utf-8", "mcbacklogd is healthy.\n");
  } else if (target == "/-/ready") {
    const bool ready = c.ready && c.ready();
    res = make(req, ready ? http::status::ok : http::status::service_unavailable,
               "text/plain; charset=utf-8",
               ready ? "mcbacklogd is ready.\n" : "mcbacklogd is waiting for its first sample.\n");
  } else if (target == "/") {
    res = make(req, http::status::ok, "text/html; charset=utf-8", landing_page(c));
  } else {
    res = make(req, http::status::not_found, "text/plain; charset=utf-8", "not found\n");
  }
  res.prepare_payload();
  if (head) res.body().clear();  // Content-Length stays that of the full body
  return res;
}

}  // namespace mcb
