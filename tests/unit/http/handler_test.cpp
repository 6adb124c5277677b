#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "common/families.hpp"
#include "daemon/http/exposition.hpp"
#include "daemon/http/gzip.hpp"
#include "daemon/http/handler.hpp"
#include "tests/support/http_client.hpp"

using namespace mcb;
namespace http = boost::beast::http;

TEST_CASE("gzip: compressed bodies decompress to the original", "[http][gzip]") {
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "mcbacklog_series{n=\"" + std::to_string(i) + "\"} 1\n";
  const std::string z = gzip_compress(text);
  CHECK(z.size() < text.size() / 4);
  CHECK(test::gunzip(z) == text);
  CHECK(test::gunzip(gzip_compress("")).empty());
}

TEST_CASE("gzip: Accept-Encoding is honoured, including q=0", "[http][gzip]") {
  CHECK(accepts_gzip("gzip"));
  CHECK(accepts_gzip("GZIP"));
  CHECK(accepts_gzip("deflate, gzip;q=0.5"));
  CHECK(accepts_gzip("*"));
  CHECK(accepts_gzip(" gzip ; q=1 "));
  CHECK_FALSE(accepts_gzip(""));
  CHECK_FALSE(accepts_gzip("identity"));
  CHECK_FALSE(accepts_gzip("gzip;q=0"));
  CHECK_FALSE(accepts_gzip("gzip;q=0.000"));
  CHECK_FALSE(accepts_gzip("x-gzip2"));
  // An explicit gzip decides over "*", whichever comes first.
  CHECK_FALSE(accepts_gzip("gzip;q=0, *"));
  CHECK_FALSE(accepts_gzip("*, gzip;q=0"));
  CHECK(accepts_gzip("*;q=0, gzip"));
  CHECK_FALSE(accepts_gzip("*;q=0"));
  CHECK(accepts_gzip("identity, *;q=0.1"));
  CHECK_FALSE(accepts_gzip("gzip;level=1;q=0"));
  CHECK(accepts_gzip("gzip;level=1"));
}

TEST_CASE("exposition: families are sorted, merged by name and empty ones dropped",
          "[http][exposition]") {
  Families f;
  gauge("b_metric", "B.").add(2).into(f);
  counter("a_total", "A.").add(1, {{"x", "1"}}).into(f);
  gauge("b_metric", "B.").add(3).into(f);
  f.push_back(prometheus::MetricFamily{"c_empty", "nothing", prometheus::MetricType::Gauge, {}});
  const std::string text = render_families(f);
  CHECK(text ==
        "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 1\n"
        "# HELP b_metric B.\n# TYPE b_metric gauge\nb_metric 2\nb_metric 3\n");
}

TEST_CASE("exposition: the rendering is cached until the next sample", "[http][exposition]") {
  struct Counting : prometheus::Collectable {
    mutable int calls = 0;
    double value = 1;
    std::vector<prometheus::MetricFamily> Collect() const override {
      ++calls;
      Families f;
      gauge("x", "X.").add(value).into(f);
      return f;
    }
  };
  auto source = std::make_shared<Counting>();
  Exposition e;
  e.set_sources({source});
  const std::string first = e.text();
  source->value = 2;
  CHECK(e.text() == first);
  CHECK(test::gunzip(e.gzip()) == first);
  CHECK(source->calls == 1);
  e.invalidate();
  CHECK(e.text() != first);
  CHECK(test::gunzip(e.gzip()) == e.text());
  CHECK(source->calls == 2);
}

// RssAnon of /proc/self/status, in KiB.
long anonymous_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stol(line.substr(8));
  }
  FAIL("no RssAnon in /proc/self/status");
  return 0;
}

TEST_CASE("exposition: a rendering gives the pages of its families back", "[http][exposition]") {
  // 20,000 labelled series: families of several MiB, freed below the text that outlives them.
  struct Many : prometheus::Collectable {
    std::vector<prometheus::MetricFamily> Collect() const override {
      Families f;
      auto g = gauge("many_series", "Many.");
      for (int i = 0; i < 20000; ++i) {
        g.add(i, {{"target", "memcached-" + std::to_string(i)},
                  {"address", "10.0.0." + std::to_string(i) + ":11211"}});
      }
      g.into(f);
      return f;
    }
  };
  Exposition e;
  e.set_sources({std::make_shared<Many>()});
  const long before = anonymous_kib();
  const std::string& text = e.text();
  const std::string& gzip = e.gzip();
  const long grown = anonymous_kib() - before;
  CHECK(test::gunzip(gzip) == text);
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
  // AddressSanitizer replaces glibc's allocator: freed blocks wait in its quarantine and
  // malloc_trim is glibc's. What stays resident is the shipped allocator's matter, held below in
  // the normal build.
  WARN("the resident memory is not checked under AddressSanitizer (its own allocator)");
  return;
#endif
#endif
  INFO("anonymous memory grew by " << grown << " KiB; the text is " << text.size() / 1024
                                   << " KiB, the gzip body " << gzip.size() / 1024 << " KiB");
  // What stays is the cached text and gzip body (a string's buffer may be up to twice its length),
  // not the families: without giving their pages back it grows by 6.6 MiB here.
  CHECK(grown < 2 * static_cast<long>((text.size() + gzip.size()) / 1024) + 512);
}

namespace {

HttpRequest request(http::verb verb, const std::string& target,
                    const char* accept_encoding = nullptr) {
  HttpRequest r{verb, target, 11};
  if (accept_encoding) r.set(http::field::accept_encoding, accept_encoding);
  return r;
}

HttpContent content(bool ready = true) {
  static const std::string kText = "x 1\n";
  static const std::string kZipped = gzip_compress(kText);
  HttpContent c;
  c.metrics_text = []() -> const std::string& { return kText; };
  c.metrics_gzip = []() -> const std::string& { return kZipped; };
  c.ready = [ready] { return ready; };
  c.version = "1.2.3";
  return c;
}

}  // namespace

TEST_CASE("http handler: /metrics serves the text format, gzip when asked", "[http][handler]") {
  auto plain = handle_http(request(http::verb::get, "/metrics"), content());
  CHECK(plain.result() == http::status::ok);
  CHECK(plain[http::field::content_type] == kMetricsContentType);
  CHECK(plain.body() == "x 1\n");
  CHECK(plain[http::field::content_encoding].empty());

  auto zipped = handle_http(request(http::verb::get, "/metrics?x=1", "gzip, deflate"), content());
  CHECK(zipped[http::field::content_encoding] == "gzip");
  CHECK(test::gunzip(zipped.body()) == "x 1\n");
}

TEST_CASE("http handler: readiness follows the first sample", "[http][handler]") {
  CHECK(handle_http(request(http::verb::get, "/-/ready"), content(false)).result() ==
        http::status::service_unavailable);
  CHECK(handle_http(request(http::verb::get, "/-/ready"), content(true)).result() ==
        http::status::ok);
  CHECK(handle_http(request(http::verb::get, "/-/healthy"), content(false)).result() ==
        http::status::ok);
}

TEST_CASE("http handler: landing page, 404, 405 and HEAD", "[http][handler]") {
  auto root = handle_http(request(http::verb::get, "/"), content());
  CHECK(root.result() == http::status::ok);
  CHECK(root.body().find("href=\"/metrics\"") != std::string::npos);
  CHECK(root.body().find("1.2.3") != std::string::npos);
  CHECK(root.body().find("/alerts") == std::string::npos);  // not served without an evaluator
  CHECK(handle_http(request(http::verb::get, "/alerts"), content()).result() ==
        http::status::not_found);
  CHECK(handle_http(request(http::verb::get, "/nope"), content()).result() ==
        http::status::not_found);
  auto post = handle_http(request(http::verb::post, "/metrics"), content());
  CHECK(post.result() == http::status::method_not_allowed);
  CHECK(post[http::field::allow] == "GET, HEAD");
  auto head = handle_http(request(http::verb::head, "/metrics"), content());
  CHECK(head.result() == http::status::ok);
  CHECK(head.body().empty());
  CHECK(head[http::field::content_length] == "4");
}

TEST_CASE("http handler: /scrape serves one target's series, by memcached_exporter's convention",
          "[http][handler]") {
  HttpContent c = content();
  std::vector<std::string> asked;
  c.target_metrics = [&](std::string_view target) -> std::optional<std::string> {
    asked.emplace_back(target);
    if (target != "main" && target != "127.0.0.1:11211") return std::nullopt;
    return "memcached_up{target=\"main\"} 1\n";
  };
  auto ok = handle_http(request(http::verb::get, "/scrape?target=main"), c);
  CHECK(ok.result() == http::status::ok);
  CHECK(ok[http::field::content_type] == kMetricsContentType);
  CHECK(ok.body() == "memcached_up{target=\"main\"} 1\n");
  // The address, escaped as Prometheus sends __param_target.
  auto by_address = handle_http(request(http::verb::get, "/scrape?target=127.0.0.1%3A11211"), c);
  CHECK(by_address.result() == http::status::ok);
  auto zipped = handle_http(request(http::verb::get, "/scrape?x=1&target=main", "gzip"), c);
  CHECK(zipped[http::field::content_encoding] == "gzip");
  CHECK(test::gunzip(zipped.body()) == "memcached_up{target=\"main\"} 1\n");
  CHECK(asked == std::vector<std::string>{"main", "127.0.0.1:11211", "main"});

  auto unknown = handle_http(request(http::verb::get, "/scrape?target=other"), c);
  CHECK(unknown.result() == http::status::not_found);
  CHECK(unknown.body().find(R"(no memcached named "other")") != std::string::npos);
  // A name from the request is quoted as every outside byte is: no raw control bytes come back.
  auto hostile = handle_http(request(http::verb::get, "/scrape?target=a%1b%5B2J%0Ab"), c);
  CHECK(hostile.result() == http::status::not_found);
  CHECK(hostile.body().find('\x1b') == std::string::npos);
  CHECK(hostile.body().find(R"("a\x1b[2J\nb")") != std::string::npos);
  for (const char* target : {"/scrape", "/scrape?target=", "/scrape?targets=main"}) {
    INFO(target);
    auto missing = handle_http(request(http::verb::get, target), c);
    CHECK(missing.result() == http::status::bad_request);
    CHECK(missing.body().find("/scrape?target=NAME") != std::string::npos);
  }
  // A target escaped wrongly is told so, not that it is missing.
  auto malformed = handle_http(request(http::verb::get, "/scrape?target=%zz"), c);
  CHECK(malformed.result() == http::status::bad_request);
  CHECK(malformed.body() ==
        "the target parameter \"%zz\" is not valid percent-encoding (a % takes two hex digits)\n");
  CHECK(handle_http(request(http::verb::get, "/"), c).body().find("/scrape?target=NAME") !=
        std::string::npos);
  // Without a callback there is no /scrape.
  CHECK(handle_http(request(http::verb::get, "/scrape?target=main"), content()).result() ==
        http::status::not_found);
}

TEST_CASE("http handler: query parameters are found and percent-decoded", "[http][handler]") {
  CHECK(*query_parameter("/scrape?target=main", "target") == "main");
  CHECK(*query_parameter("/scrape?a=1&target=a%3Ab+c&target=second", "target") == "a:b c");
  CHECK(*query_parameter("/scrape?target", "target") == "");
  CHECK(*query_parameter("/scrape?target=x#frag", "target") == "x");
  CHECK(*query_parameter("/scrape?t%61rget=x", "target") == "x");
  CHECK_FALSE(query_parameter("/scrape", "target")->has_value());
  CHECK_FALSE(query_parameter("/scrape?other=1", "target")->has_value());
  // Malformed escapes are an error of their own, not a parameter missing.
  CHECK(query_parameter("/scrape?target=%4", "target").error().message ==
        "the target parameter \"%4\" is not valid percent-encoding (a % takes two hex digits)");
  CHECK_FALSE(query_parameter("/scrape?target=%zz", "target").ok());
}
