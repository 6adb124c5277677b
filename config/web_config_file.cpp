#include "config/web_config_file.hpp"

#include <array>

#include "config/limits.hpp"
#include "config/yaml_walker.hpp"

namespace mcb {

namespace {

// In the order of ClientAuth.
constexpr std::array<std::string_view, 5> kClientAuthNames{
    "NoClientCert", "RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert"};

void walk_tls(YamlWalker& w, const YAML::Node& node, const std::string& path,
              TlsServerConfig& tls) {
  std::string client_auth = "NoClientCert";
  std::string min_version = "TLS12";
  w.mapping(
      node, path,
      {{"cert_file",
        [&](auto& v, auto& p) { w.file_path(v, p, tls.cert_file, &tls.cert_file_origin); }},
       {"key_file",
        [&](auto& v, auto& p) { w.file_path(v, p, tls.key_file, &tls.key_file_origin); }},
       {"client_ca_file",
        [&](auto& v, auto& p) {
          w.file_path(v, p, tls.client_ca_file, &tls.client_ca_file_origin);
        }},
       {"client_auth_type", [&](auto& v, auto& p) { w.word(v, p, client_auth, kClientAuthNames); }},
       {"min_version", [&](auto& v, auto& p) {
          w.word(v, p, min_version, {"TLS12", "TLS13"});
        }}});
  for (std::size_t i = 0; i < kClientAuthNames.size(); ++i) {
    if (kClientAuthNames[i] == client_auth) tls.client_auth = static_cast<ClientAuth>(i);
  }
  tls.min_version = min_version == "TLS13" ? TlsVersion::kTls13 : TlsVersion::kTls12;

  // Without a value, a key's own node has no position: report at the block.
  const YAML::Mark at = node.Mark();
  if (tls.cert_file.empty()) w.error(at, path, "missing key \"cert_file\"");
  if (tls.key_file.empty()) w.error(at, path, "missing key \"key_file\"");
  const bool verifies = tls.client_auth == ClientAuth::kVerifyClientCertIfGiven ||
                        tls.client_auth == ClientAuth::kRequireAndVerifyClientCert;
  if (verifies && tls.client_ca_file.empty()) {
    w.error(at, path, "client_auth_type " + client_auth + " needs client_ca_file");
  }
  if (!verifies && !tls.client_ca_file.empty()) {
    w.error(at, path,
            "client_ca_file is only used with client_auth_type VerifyClientCertIfGiven or "
            "RequireAndVerifyClientCert");
  }
}

void walk_users(YamlWalker& w, const YAML::Node& node, const std::string& path,
                std::map<std::string, std::string, std::less<>>& users) {
  w.entries(node, path, [&](const YAML::Node& key, const YAML::Node& value, const std::string& p) {
    std::string user;
    w.name(key, p, user);
    if (user.empty()) return;
    // Basic credentials are "user:password": a user name with a colon could never log in.
    if (user.find(':') != std::string::npos) {
      w.error(key.Mark(), p, "a user name must be non-empty and must not contain ':'");
      return;
    }
    if (!w.scalar(value, p, "a bcrypt hash")) return;
    // The message never repeats the value: it may be a password pasted by mistake.
    if (!is_bcrypt_hash(value.Scalar())) {
      w.error(value.Mark(), p,
              "not a bcrypt hash (\"$2y$\" or \"$2b$\", a cost, 60 characters in all; make one "
              "with: htpasswd -nbBC 10 USER PASSWORD)");
      return;
    }
    const int cost = bcrypt_cost(value.Scalar());
    if (cost > kMaxBcryptCost) {
      w.error(value.Mark(), p,
              "bcrypt cost " + std::to_string(cost) +
                  " would hold every check of this user's "
                  "password for seconds (cost " +
                  std::to_string(kMaxBcryptCost) +
                  " takes about 1 s, each step doubles it); at most " +
                  std::to_string(kMaxBcryptCost) + " is allowed: htpasswd -nbBC " +
                  std::to_string(kUsualBcryptCost) + " USER PASSWORD");
      return;
    }
    if (cost > kUsualBcryptCost) {
      w.warning(value.Mark(), p,
                "bcrypt cost " + std::to_string(cost) + " is above the usual " +
                    std::to_string(kUsualBcryptCost) +
                    ": every first check of a password takes "
                    "about " +
                    std::to_string(1 << (cost - kUsualBcryptCost)) + " times as long as at cost " +
                    std::to_string(kUsualBcryptCost));
    }
    users.emplace(user, value.Scalar());
  });
}

}  // namespace

bool is_bcrypt_hash(std::string_view h) {
  constexpr std::string_view kAlphabet =
      "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  if (h.size() != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$') return false;
  if (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') return false;
  if (h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9') return false;
  const int cost = bcrypt_cost(h);
  if (cost < 4 || cost > 31) return false;
  return h.find_first_not_of(kAlphabet, 7) == std::string_view::npos;
}

int bcrypt_cost(std::string_view h) { return (h[4] - '0') * 10 + (h[5] - '0'); }

Result<WebConfigFile> parse_web_config_file(std::string_view yaml, std::string_view file_name) {
  YamlWalker w{std::string(file_name)};
  WebConfigFile c;
  c.source = escape_untrusted(file_name, kMaxPathBytes);  // for messages
  auto parsed = w.parse(yaml, [&](const YAML::Node& root) {
    w.mapping(
        root, "",
        {{"tls_server_config", [&](auto& v, auto& p) { walk_tls(w, v, p, c.tls.emplace()); }},
         {"basic_auth_users", [&](auto& v, auto& p) { walk_users(w, v, p, c.basic_auth_users); }}});
  });
  if (!parsed) return parsed.error();
  c.warnings = w.warnings();
  return c;
}

Result<WebConfigFile> load_web_config_file(const std::string& path, const std::string& origin) {
  auto text = read_config_file(path);
  if (!text) return origin.empty() ? text.error() : fail(origin + ": " + text.error().message);
  return parse_web_config_file(*text, path);
}

}  // namespace mcb
