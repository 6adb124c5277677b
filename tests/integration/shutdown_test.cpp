// Nothing the daemon waits for holds its exit: a host-name lookup that a silent DNS server never
// answers, and password checks queued behind a slow bcrypt. Each test runs in its own network
// namespace; the resolver test in a mount namespace of its own too.

#include <catch2/catch.hpp>

#include <dirent.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <regex>

#include "tests/support/daemon.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/process.hpp"
#include "tests/support/tls.hpp"

using namespace mcb;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

// The states ('R', 'S', ...) of the threads of `pid` named `name`.
std::string thread_states(pid_t pid, const std::string& name) {
  std::string states;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = ::opendir(tasks.c_str());
  if (dir == nullptr) return states;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream stat(tasks + "/" + e->d_name + "/stat");
    std::string line;
    std::getline(stat, line);
    // "tid (comm) S ...": comm may hold spaces, so find its closing parenthesis.
    const auto open = line.find('(');
    const auto close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 2 >= line.size()) {
      continue;
    }
    if (line.substr(open + 1, close - open - 1) == name) states += line[close + 2];
  }
  ::closedir(dir);
  return states;
}

// Sends a request with basic credentials and leaves the connection open, unread.
int send_with_password(std::uint16_t port, const std::string& credentials_base64) {
  const int fd = test::connect_loopback(port);
  if (fd < 0) return fd;
  const std::string request =
      "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + credentials_base64 + "\r\n\r\n";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  return fd;
}

}  // namespace

TEST_CASE("shutdown: SIGTERM ends the daemon while a name lookup still hangs",
          "[integration][shutdown][resolver]") {
  test::enter_private_netns();
  test::SilentResolver resolver;
  test::Daemon d(
      "interval: 200ms\ncollectors: { sockdiag: { enabled: false }, netdev: { enabled: false } }\n"
      "targets:\n  - { name: hanging, address: \"memcached.example:11211\", probe_interval: 0 }\n");
  // The daemon's lookup has reached the silent server: from now on it hangs for 30 s at least.
  REQUIRE(resolver.wait_for_query(15s));
  const auto asked = std::chrono::steady_clock::now();
  // Meanwhile the loop goes on: the target is down for want of an address, the rest is served.
  auto down = d.wait_for_metrics([](const std::string& m) {
    return m.find("memcached_up{target=\"hanging\"} 0") != std::string::npos;
  });
  CHECK(down.has_value());
  // The log names the lookup, not a connect that nothing answered.
  CHECK(d.process().wait_for_output(
      std::regex("name lookup of memcached\\.example: no answer by the deadline"), 15s));

  d.process().signal(SIGTERM);
  const auto code = d.process().wait_exit(test::SilentResolver::kFirstTimeout);
  const auto exited = std::chrono::steady_clock::now();
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  // The lookup's first try cannot have timed out yet: the daemon left it hanging.
  CHECK(exited - asked < test::SilentResolver::kFirstTimeout);
  CHECK_THAT(d.output(), Contains("mcbacklogd stopped"));
}

TEST_CASE("shutdown: SIGTERM ends the daemon while bcrypt checks run and wait",
          "[integration][shutdown][security]") {
  test::enter_private_netns();
  test::TempDir dir;
  // Cost 14, the most the web configuration allows: about a second per check.
  const std::string web =
      dir.write("web.yml", "basic_auth_users:\n  prometheus: " +
                               test::bcrypt_hash("prometheus", "right horse", 14) + "\n");
  test::Daemon d("interval: 200ms\ntargets: []\ncollectors: { sockdiag: { enabled: false } }\n",
                 {"--web.config.file=" + web});
  CHECK_THAT(d.output(), Contains("bcrypt cost 14 is above the usual 12"));
  std::vector<int> clients;
  for (int i = 0; i < 12; ++i) {
    // "prometheus:wrong horse": each costs a full bcrypt.
    clients.push_back(send_with_password(d.port(), "cHJvbWV0aGV1czp3cm9uZyBob3JzZQ=="));
    REQUIRE(clients.back() >= 0);
  }
  // A check is running on the password thread.
  REQUIRE(test::eventually(
      [&] { return thread_states(d.process().pid(), "mcb-bcrypt").find('R') != std::string::npos; },
      15s));
  d.process().signal(SIGTERM);
  // Twelve checks of about a second each wait; the exit waits for none of them. 10 s bounds a
  // broken build; it is no speed target.
  const auto code = d.process().wait_exit(10s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  for (int fd : clients) ::close(fd);
}

TEST_CASE("shutdown: a web configuration with a cost-31 hash is refused at start",
          "[integration][config][security]") {
  test::TempDir dir;
  const std::string web = dir.write(
      "web.yml",
      "basic_auth_users:\n  p: $2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW\n");
  auto r = test::run_command(test::daemon_binary() +
                             " --web.listen-address=127.0.0.1:0 --web.config.file=" + web);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Contains("web.yml:2:6: basic_auth_users.p: bcrypt cost 31 would hold"));
}
