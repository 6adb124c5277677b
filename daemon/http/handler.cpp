#include "daemon/http/handler.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

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

}  // namespace

HttpResponse handle_http(const HttpRequest& req, const HttpContent& c) {
  const bool head = req.method() == http::verb::head;
  if (req.method() != http::verb::get && !head) {
    auto res = make(req, http::status::method_not_allowed, "text/plain; charset=utf-8",
                    "only GET and HEAD are allowed\n");
    res.set(http::field::allow, "GET, HEAD");
    res.prepare_payload();
    return res;
  }
  std::string_view target{req.target().data(), req.target().size()};
  target = target.substr(0, target.find('?'));

  HttpResponse res;
  if (target == "/metrics") {
    const auto accept = req[http::field::accept_encoding];
    const bool gzip = accepts_gzip(std::string_view(accept.data(), accept.size()));
    res = make(req, http::status::ok, kMetricsContentType,
               gzip ? c.metrics_gzip() : c.metrics_text());
    if (gzip) res.set(http::field::content_encoding, "gzip");
    res.set(http::field::vary, "Accept-Encoding");
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
