#!/usr/bin/env bash
# The manifests of packaging/kubernetes, without a cluster:
#   - packaging/kubernetes/prometheusrule.yaml is exactly what generate-prometheusrule makes;
#   - manifests.mjs: the Kubernetes and prometheus-operator schemas, unknown fields, the
#     privileges, images and references promised (see its header);
#   - every ConfigMap's mcbacklogd.yaml loads in this build's daemon (--check-config), and
#     promtool accepts the PrometheusRule's rules;
#   - the checks can fail: a copy of the manifests with one fault of each kind is refused, each
#     fault by name.
# Usage: manifests_test.sh SOURCE_DIR WORK_DIR NODE_DIR MCBACKLOGD
set -euo pipefail
source_dir=$1 work=$2 node_dir=$3 mcbacklogd=$4
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
kubernetes=$source_dir/packaging/kubernetes
version=$(sed -n 's/^project(mcbacklogd VERSION \([0-9.]*\).*/\1/p' "$source_dir/CMakeLists.txt")
rm -rf "$work"
mkdir -p "$work"

echo "--- prometheusrule.yaml is the generator's output"
diff -u "$kubernetes/prometheusrule.yaml" <("$kubernetes/generate-prometheusrule") ||
  fail "prometheusrule.yaml differs: run packaging/kubernetes/generate-prometheusrule > packaging/kubernetes/prometheusrule.yaml"

node "$node_dir/manifests.mjs" check "$source_dir" "$work/out" "$version" || fail "manifests.mjs found problems"

echo "--- configurations and rules"
configs=("$work"/out/config-*.yaml)
[ ${#configs[@]} -ge 2 ] && [ -f "${configs[0]}" ] || fail "expected the sidecar's and the DaemonSet's configurations"
for config in "${configs[@]}"; do
  out=$("$mcbacklogd" --check-config --config.file="$config" 2>&1) || fail "$(basename "$config"): $out"
done
promtool check rules "$work/out/prometheusrule.rules.yml" || fail "promtool refuses the PrometheusRule's rules"

echo "--- a copy with one fault of each kind is refused"
broken=$work/broken
mkdir -p "$broken/packaging"
cp -r "$source_dir/packaging/kubernetes" "$source_dir/packaging/prometheus" "$broken/packaging/"
cp "$source_dir/CMakeLists.txt" "$broken/"
b=$broken/packaging/kubernetes
sed -i 's/readOnlyRootFilesystem: true/readOnlyRootFileSytem: true/' "$b/sidecar.yaml"
sed -i 's/periodSeconds: 10$/periodSeconds: "10"/' "$b/daemonset.yaml"
sed -i 's/add: \["SYS_ADMIN", "SYS_PTRACE"\]/add: ["SYS_ADMIN", "SYS_PTRACE", "NET_ADMIN"]/' "$b/daemonset.yaml"
sed -i 's/^      hostPID: true$/      hostPID: true\n      hostNetwork: true/' "$b/daemonset.yaml"
sed -i 's/replacement: mcbacklogd/replacement: memcached/' "$b/servicemonitor.yaml"
sed -i 's/targetPort: metrics/targetPort: metric/' "$b/service.yaml"
sed -i "s|image: localhost/mcbacklogd:$version|image: localhost/mcbacklogd:latest|" "$b/sidecar.yaml"
sed -i '0,/for: 2m/s//for: 3m/' "$b/prometheusrule.yaml"
out=$(node "$node_dir/manifests.mjs" check "$broken" "$work/broken-out" "$version" 2>&1) &&
  fail "manifests.mjs passed a broken copy"
for expected in \
  "Deployment/memcached: type: .*'\"readOnlyRootFileSytem\"' does not exist" \
  "DaemonSet/mcbacklogd-node: schema: .*periodSeconds must be integer" \
  "not exactly SYS_ADMIN and SYS_PTRACE" \
  "DaemonSet/mcbacklogd-node: hostNetwork is set" \
  "ServiceMonitor/memcached-mcbacklogd: endpoint metrics does not set job" \
  "Service/memcached: port metrics: no container port metric" \
  "container mcbacklogd: image localhost/mcbacklogd:latest" \
  "PrometheusRule/mcbacklogd: differs from packaging/prometheus at group mcbacklogd-self, rule 0 (McbacklogdDown"; do
  grep -q -- "FAIL: .*$expected" <<<"$out" || { fail "the broken copy was not refused for: $expected"; shown=no; }
done
[ "${shown:-}" != no ] || echo "$out" >&2

[ $failures -eq 0 ] || exit 1
echo "all checks passed"
