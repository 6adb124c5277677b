#include "tests/support/daemon.hpp"

#include <stdexcept>

namespace mcb::test {

CommandResult run_daemon(const std::string& args) {
  return run_command("timeout -s KILL 30 " + daemon_binary() + " " + args);
}
namespace {

std::vector<std::string> daemon_argv(const std::string& config_path,
                                     const std::vector<std::string>& extra,
                                     const std::vector<std::string>& launcher) {
  std::vector<std::string> argv = launcher;
  argv.insert(argv.end(), {daemon_binary(), "--web.listen-address=127.0.0.1:0"});
  if (!config_path.empty()) argv.push_back("--config.file=" + config_path);
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

}  // namespace

std::string daemon_binary() { return MCBACKLOGD_BINARY; }
std::string source_dir() { return MCBACKLOGD_SOURCE_DIR; }

Daemon::Daemon(std::optional<std::string> config_yaml, const std::vector<std::string>& extra_args,
               const std::vector<std::string>& launcher)
    : config_path_(config_yaml ? dir_.write("mcbacklogd.yaml", *config_yaml) : ""),
      child_(daemon_argv(config_path_, extra_args, launcher)) {
  auto bound =
      child_.wait_for_output(std::regex(R"(HTTP server listening on ((127\.0\.0\.1|\[::1\]):\d+))"),
                             std::chrono::seconds(15));
  if (!bound) {
    throw std::runtime_error("mcbacklogd did not start listening; its output:\n" + child_.output());
  }
  const auto colon = bound->rfind(':');
  host_ = bound->front() == '[' ? bound->substr(1, colon - 2) : bound->substr(0, colon);
  port_ = static_cast<std::uint16_t>(std::stoi(bound->substr(colon + 1)));
}

Result<HttpReply> Daemon::get(const std::string& path, const Headers& headers) {
  return http_get(host_, port_, path, headers);
}

std::string Daemon::metrics() {
  const bool ready = eventually(
      [&] {
        auto r = get("/-/ready");
        return r && r->status == 200;
      },
      std::chrono::seconds(15));
  if (!ready) throw std::runtime_error("mcbacklogd never became ready; its output:\n" + output());
  auto r = get("/metrics");
  if (!r || r->status != 200) {
    throw std::runtime_error("GET /metrics failed: " +
                             (r ? std::to_string(r->status) : r.error().message));
  }
  return r->body;
}

std::optional<std::string> Daemon::wait_for_metrics(
    const std::function<bool(const std::string&)>& condition, std::chrono::milliseconds timeout) {
  std::optional<std::string> last;
  const bool ok = eventually(
      [&] {
        auto r = get("/metrics");
        if (!r || r->status != 200) return false;
        last = r->body;
        return condition(r->body);
      },
      timeout);
  return ok ? last : std::nullopt;
}

}  // namespace mcb::test
