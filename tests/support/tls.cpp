#include "tests/support/tls.hpp"

#include <stdexcept>

namespace mcb::test {

namespace {

void run_or_throw(const std::string& command) {
  const CommandResult r = run_command(command);
  if (r.exit_code != 0) {
    throw std::runtime_error("failed (" + std::to_string(r.exit_code) + "): " + command + "\n" +
                             r.output);
  }
}

}  // namespace

TestPki make_test_pki(const TempDir& dir) {
  const std::string d = dir.path() + "/";
  const std::string new_key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
  TestPki p{d + "ca.crt",     d + "server.crt",   d + "server.key",  d + "client.crt",
            d + "client.key", d + "stranger.crt", d + "stranger.key"};
  run_or_throw("openssl req -x509 " + new_key + "-days 2 -subj /CN=mcbacklogd-test-ca -keyout " +
               d + "ca.key -out " + p.ca_cert);
  const std::string server_ext =
      dir.write("server.ext",
                "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
                "extendedKeyUsage=serverAuth\n");
  const std::string client_ext =
      dir.write("client.ext", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n");
  auto signed_by_ca = [&](const std::string& name, const std::string& cn, const std::string& ext) {
    run_or_throw("openssl req " + new_key + "-subj /CN=" + cn + " -keyout " + d + name +
                 ".key -out " + d + name + ".csr");
    run_or_throw("openssl x509 -req -in " + d + name + ".csr -CA " + p.ca_cert + " -CAkey " + d +
                 "ca.key -CAcreateserial -days 2 -extfile " + ext + " -out " + d + name + ".crt");
  };
  signed_by_ca("server", "localhost", server_ext);
  signed_by_ca("client", "prometheus", client_ext);
  run_or_throw("openssl req -x509 " + new_key + "-days 2 -subj /CN=stranger -keyout " +
               p.stranger_key + " -out " + p.stranger_cert);
  return p;
}

std::string bcrypt_hash(const std::string& user, const std::string& password, int cost) {
  const CommandResult r =
      run_command("htpasswd -nbBC " + std::to_string(cost) + " '" + user + "' '" + password + "'");
  const auto colon = r.output.find(':');
  const auto end = r.output.find('\n');
  if (r.exit_code != 0 || colon == std::string::npos || end == std::string::npos) {
    throw std::runtime_error("htpasswd failed (is apache2-utils installed?): " + r.output);
  }
  return r.output.substr(colon + 1, end - colon - 1);
}

CurlReply curl(const std::vector<std::string>& args, int max_seconds) {
  std::string command = "curl -sS -i --http1.1 --max-time " + std::to_string(max_seconds);
  for (const std::string& a : args) command += " '" + a + "'";
  command += " -w '\\n%{http_code}'";
  CommandResult r = run_command(command);
  CurlReply reply;
  const auto last = r.output.rfind('\n');
  reply.status = last == std::string::npos ? 0 : std::atoi(r.output.c_str() + last + 1);
  reply.output = r.output.substr(0, last == std::string::npos ? 0 : last);
  return reply;
}

}  // namespace mcb::test
