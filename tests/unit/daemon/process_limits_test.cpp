#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "daemon/alerts/rules.hpp"
#include "daemon/process_limits.hpp"

using namespace mcb;
using Catch::Matchers::Contains;

namespace {

Config with_targets(std::size_t n) {
  Config c = default_config();
  c.source = "many.yaml";
  c.targets.resize(n, c.targets.front());
  return c;
}

}  // namespace

TEST_CASE("process limits: each target needs two descriptors beside a fixed reserve for HTTP",
          "[daemon][limits]") {
  CHECK(descriptors_needed(with_targets(0), 64) == kFixedDescriptors + 64);
  CHECK(descriptors_needed(with_targets(1000), 64) == kFixedDescriptors + 64 + 2000);
}

TEST_CASE("process limits: targets in other network namespaces need their namespaces' descriptors",
          "[daemon][limits]") {
  Config c = with_targets(4);
  c.targets[1].netns = NetnsConfig{"/run/netns/pod1", 0};
  c.targets[2].netns = NetnsConfig{"/run/netns/pod1", 0};
  c.targets[3].netns = NetnsConfig{"", 4242};
  CHECK(descriptors_needed(c, 64) == kFixedDescriptors + 64 + 4 * kDescriptorsPerTarget +
                                         3 * kDescriptorsPerTargetElsewhere +
                                         2 * kDescriptorsPerNamespace);
  const Status st = check_descriptor_budget(c, 100, 100);
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.error().message, Contains("2 per target, 7 per other network namespace, 64 kept"));
}

TEST_CASE("process limits: 1000 targets do not fit systemd's default soft limit of 1024",
          "[daemon][limits]") {
  const Status st = check_descriptor_budget(with_targets(1000), 1024, 1024);
  REQUIRE_FALSE(st.ok());
  CHECK_THAT(st.error().message,
             Contains("many.yaml: 1000 targets need up to 2096 file descriptors") &&
                 Contains("but the limit is 1024 (hard limit 1024): raise LimitNOFILE="));
  CHECK(check_descriptor_budget(with_targets(1000), 65536, 65536).ok());
  // The defaults fit the smallest limit any system starts a service with.
  CHECK(check_descriptor_budget(default_config(), 256, 256).ok());
}
