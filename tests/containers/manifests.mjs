// Checks the Kubernetes manifests of packaging/kubernetes, and turns them into what the other
// container tests run. Run from a directory where `npm ci` installed tests/containers/package.json
// (bare imports resolve from this file's own directory).
//
//   node manifests.mjs check SOURCE_DIR OUT_DIR VERSION
//     Every document of packaging/kubernetes/*.yaml, read strictly (duplicate keys are errors):
//     - validated against the OpenAPI schema of its kind (kubernetes-models, which checks types,
//       required fields and enumerations), and type-checked as a literal of the kind's TypeScript
//       interface, which refuses any field the schema does not know (a misspelt securityContext
//       key would otherwise pass and silently do nothing);
//     - held to the packaging's promises: the sidecar has no privilege, the DaemonSet runs as root
//       with hostPID, not hostNetwork, and exactly CAP_SYS_ADMIN and CAP_SYS_PTRACE; every image
//       of mcbacklogd is localhost/mcbacklogd:VERSION; the Service, the monitors and the volumes
//       point at objects and ports that exist; the monitors set job="mcbacklogd";
//     - the PrometheusRule's groups equal, as data, those of the rule files it is generated from.
//     Writes to OUT_DIR each ConfigMap's mcbacklogd.yaml (config-NAME.yaml), for the daemon's
//     --check-config, and the PrometheusRule's groups as a rule file (prometheusrule.rules.yml),
//     for promtool. Prints every failure and exits 1 if there was one.
//
//   node manifests.mjs pod-of FILE
//     Prints the ConfigMaps of FILE and a Pod made of its DaemonSet's pod template, for
//     `podman kube play` (which plays Pods and Deployments, not DaemonSets).
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";

import {
  PodMonitor,
  PrometheusRule,
  ServiceMonitor,
} from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { DaemonSet, Deployment } from "kubernetes-models/apps/v1";
import { ConfigMap, Service } from "kubernetes-models/v1";
import { parse, parseAllDocuments, stringify } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));

// apiVersion/kind -> the model that validates it and the TypeScript interface that types it.
const kinds = {
  "v1/ConfigMap": {
    model: ConfigMap,
    type: "IConfigMap",
    module: "kubernetes-models/v1/ConfigMap",
  },
  "v1/Service": { model: Service, type: "IService", module: "kubernetes-models/v1/Service" },
  "apps/v1/Deployment": {
    model: Deployment,
    type: "IDeployment",
    module: "kubernetes-models/apps/v1/Deployment",
  },
  "apps/v1/DaemonSet": {
    model: DaemonSet,
    type: "IDaemonSet",
    module: "kubernetes-models/apps/v1/DaemonSet",
  },
  "monitoring.coreos.com/v1/PodMonitor": {
    model: PodMonitor,
    type: "IPodMonitor",
    module: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor",
  },
  "monitoring.coreos.com/v1/ServiceMonitor": {
    model: ServiceMonitor,
    type: "IServiceMonitor",
    module: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
  },
  "monitoring.coreos.com/v1/PrometheusRule": {
    model: PrometheusRule,
    type: "IPrometheusRule",
    module: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule",
  },
};

const failures = [];
function fail(where, message) {
  failures.push(`${where}: ${message}`);
}

// Every document of every YAML file in `dir`, as { file, index, object }. A file that does not
// parse cleanly (syntax, duplicate keys, warnings) is a failure.
function readDocuments(dir) {
  const documents = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    const parsed = parseAllDocuments(readFileSync(join(dir, file), "utf8"), { uniqueKeys: true });
    parsed.forEach((document, index) => {
      const problems = [...document.errors, ...document.warnings];
      if (problems.length > 0) {
        problems.forEach((p) => fail(`${file}#${index}`, p.message));
        return;
      }
      const object = document.toJS();
      if (object !== null) documents.push({ file, index, object });
    });
  }
  return documents;
}

const where = (d) =>
  `${d.file}#${d.index} ${d.object.kind ?? "?"}/${d.object.metadata?.name ?? "?"}`;
const kindKey = (o) => `${o.apiVersion}/${o.kind}`;

function validateSchemas(documents) {
  for (const d of documents) {
    const kind = kinds[kindKey(d.object)];
    if (!kind) {
      fail(
        where(d),
        `no schema for ${kindKey(d.object)} (known: ${Object.keys(kinds).join(", ")})`,
      );
      continue;
    }
    try {
      new kind.model(d.object).validate();
    } catch (error) {
      const details = (error.errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join("; ");
      fail(where(d), `schema: ${details || error.message}`);
    }
  }
}

// Each document as a typed literal: TypeScript's excess property check refuses unknown fields at
// any depth, which the JSON schemas (open objects) let through.
function typeCheck(documents) {
  const dir = join(here, "typecheck");
  mkdirSync(dir, { recursive: true });
  const used = [...new Set(documents.map((d) => kinds[kindKey(d.object)]).filter(Boolean))];
  const lines = used.map((k) => `import type { ${k.type} } from "${k.module}";`);
  const names = new Map();
  documents.forEach((d, i) => {
    const kind = kinds[kindKey(d.object)];
    if (!kind) return;
    lines.push(
      `// ${where(d)}`,
      `export const document${i}: ${kind.type} = ${JSON.stringify(d.object, null, 2)};`,
    );
    names.set(`document${i}`, where(d));
  });
  writeFileSync(join(dir, "manifests.ts"), lines.join("\n") + "\n");
  const tsc = join(here, "node_modules", "typescript", "bin", "tsc");
  try {
    execFileSync(
      process.execPath,
      [
        tsc,
        "--noEmit",
        "--strict",
        "--skipLibCheck",
        "--target",
        "es2022",
        "--module",
        "nodenext",
        "--moduleResolution",
        "nodenext",
        join(dir, "manifests.ts"),
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
  } catch (error) {
    // tsc names the line; say which document it belongs to.
    const source = readFileSync(join(dir, "manifests.ts"), "utf8").split("\n");
    const before = failures.length;
    for (const line of `${error.stdout}${error.stderr}`
      .split("\n")
      .filter((l) => l.includes("error TS"))) {
      const at = Number(/\((\d+),\d+\)/.exec(line)?.[1] ?? 0);
      let owner = "manifests.ts";
      for (let n = at - 1; n >= 0; n--) {
        const match = /^export const (document\d+):/.exec(source[n] ?? "");
        if (match) {
          owner = names.get(match[1]);
          break;
        }
      }
      fail(owner, `type: ${line.replace(/^.*error TS\d+: /, "")}`);
    }
    if (failures.length === before) fail("tsc", `${error.stdout}${error.stderr}${error.message}`);
  }
}

const find = (documents, kind, predicate = () => true) =>
  documents.filter((d) => d.object.kind === kind && predicate(d.object));
const matches = (selector, labels) =>
  Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);
const isMcbacklogd = (container) =>
  container.image?.startsWith("localhost/mcbacklogd") || container.name === "mcbacklogd";

// Promises about privileges, images and references between the objects.
function checkPolicy(documents, version) {
  const image = `localhost/mcbacklogd:${version}`;
  const workloads = [...find(documents, "Deployment"), ...find(documents, "DaemonSet")];
  for (const d of workloads) {
    const spec = d.object.spec.template.spec;
    const podLabels = d.object.spec.template.metadata?.labels;
    if (!matches(d.object.spec.selector.matchLabels, podLabels)) {
      fail(where(d), "the selector does not select the pod template's labels");
    }
    for (const c of spec.containers) {
      if (isMcbacklogd(c) && c.image !== image)
        fail(where(d), `container ${c.name}: image ${c.image}, not ${image}`);
    }
    for (const v of spec.volumes ?? []) {
      if (
        v.configMap &&
        find(documents, "ConfigMap", (o) => o.metadata.name === v.configMap.name).length === 0
      ) {
        fail(
          where(d),
          `volume ${v.name}: no ConfigMap ${v.configMap.name} in packaging/kubernetes`,
        );
      }
    }
  }
  if (workloads.every((d) => !d.object.spec.template.spec.containers.some(isMcbacklogd))) {
    fail("packaging/kubernetes", "no workload runs mcbacklogd");
  }

  for (const d of find(documents, "Deployment")) {
    const spec = d.object.spec.template.spec;
    if (!spec.containers.some(isMcbacklogd)) continue;
    if (spec.hostPID || spec.hostNetwork || spec.hostIPC)
      fail(where(d), "the sidecar's pod shares a host namespace");
    if (spec.securityContext?.runAsNonRoot !== true)
      fail(where(d), "the sidecar's pod does not set runAsNonRoot");
    for (const c of spec.containers) {
      const sc = c.securityContext ?? {};
      const at = `${where(d)} container ${c.name}`;
      if (sc.privileged) fail(at, "privileged");
      if (sc.allowPrivilegeEscalation !== false) fail(at, "allowPrivilegeEscalation is not false");
      if ((sc.capabilities?.add ?? []).length > 0)
        fail(at, `adds capabilities ${sc.capabilities.add}`);
      if (!isDeepStrictEqual(sc.capabilities?.drop, ["ALL"]))
        fail(at, "does not drop ALL capabilities");
      if (!(sc.runAsUser > 0)) fail(at, "runAsUser is not a non-root user ID");
      if (sc.readOnlyRootFilesystem !== true) fail(at, "the root file system is writable");
    }
  }

  for (const d of find(documents, "DaemonSet")) {
    const spec = d.object.spec.template.spec;
    if (spec.hostPID !== true) fail(where(d), "hostPID is not true");
    if (spec.hostNetwork) fail(where(d), "hostNetwork is set");
    if (spec.hostIPC) fail(where(d), "hostIPC is set");
    for (const c of spec.containers) {
      const sc = c.securityContext ?? {};
      const at = `${where(d)} container ${c.name}`;
      if (sc.privileged) fail(at, "privileged");
      if (sc.runAsUser !== 0)
        fail(at, "runAsUser is not 0 (added capabilities are effective for root only)");
      if (!isDeepStrictEqual(sc.capabilities?.drop, ["ALL"]))
        fail(at, "does not drop ALL capabilities");
      const added = [...(sc.capabilities?.add ?? [])].sort();
      if (!isDeepStrictEqual(added, ["SYS_ADMIN", "SYS_PTRACE"]))
        fail(at, `adds [${added}], not exactly SYS_ADMIN and SYS_PTRACE`);
      // The API server refuses this pair (validation of the container's securityContext).
      if (
        sc.allowPrivilegeEscalation === false &&
        added.some((a) => a.replace(/^CAP_/, "") === "SYS_ADMIN")
      ) {
        fail(at, "allowPrivilegeEscalation: false beside SYS_ADMIN");
      }
      if (sc.readOnlyRootFilesystem !== true) fail(at, "the root file system is writable");
    }
  }

  // The Service selects the sidecar's pods and its ports name container ports that exist.
  for (const d of find(documents, "Service")) {
    const pods = find(documents, "Deployment", (o) =>
      matches(d.object.spec.selector, o.spec.template.metadata.labels),
    );
    if (pods.length === 0) {
      fail(where(d), "selects no pod of packaging/kubernetes");
      continue;
    }
    const containerPorts = pods.flatMap((p) =>
      p.object.spec.template.spec.containers.flatMap((c) => c.ports ?? []),
    );
    for (const port of d.object.spec.ports) {
      if (
        !containerPorts.some(
          (cp) => cp.name === port.targetPort || cp.containerPort === port.targetPort,
        )
      ) {
        fail(where(d), `port ${port.name}: no container port ${port.targetPort}`);
      }
    }
  }

  const setsJob = (endpoint) =>
    (endpoint.relabelings ?? []).some(
      (r) =>
        r.targetLabel === "job" &&
        r.replacement === "mcbacklogd" &&
        (r.action ?? "replace") === "replace" &&
        (r.sourceLabels ?? []).length === 0,
    );
  for (const d of find(documents, "ServiceMonitor")) {
    const services = find(documents, "Service", (o) =>
      matches(d.object.spec.selector.matchLabels, o.metadata.labels),
    );
    if (services.length === 0) fail(where(d), "selects no Service of packaging/kubernetes");
    for (const e of d.object.spec.endpoints) {
      if (!services.some((s) => s.object.spec.ports.some((p) => p.name === e.port)))
        fail(where(d), `no Service port ${e.port}`);
      if (!setsJob(e))
        fail(
          where(d),
          `endpoint ${e.port} does not set job="mcbacklogd" (McbacklogdDown watches it)`,
        );
    }
  }
  for (const d of find(documents, "PodMonitor")) {
    const pods = workloads.filter((w) =>
      matches(d.object.spec.selector.matchLabels, w.object.spec.template.metadata.labels),
    );
    if (pods.length === 0) fail(where(d), "selects no pod of packaging/kubernetes");
    for (const e of d.object.spec.podMetricsEndpoints) {
      const ports = pods.flatMap((p) =>
        p.object.spec.template.spec.containers.flatMap((c) => c.ports ?? []),
      );
      if (!ports.some((p) => p.name === e.port)) fail(where(d), `no container port ${e.port}`);
      if (!setsJob(e))
        fail(
          where(d),
          `endpoint ${e.port} does not set job="mcbacklogd" (McbacklogdDown watches it)`,
        );
    }
  }
}

// The PrometheusRule holds the groups of the recording rules and the default alert set, as data.
function checkPrometheusRule(documents, source, out) {
  const rules = find(documents, "PrometheusRule");
  if (rules.length !== 1) {
    fail("packaging/kubernetes", `${rules.length} PrometheusRules, not 1`);
    return;
  }
  const dir = join(source, "packaging", "prometheus");
  const expected = ["mcbacklogd.rules.yml", "mcbacklogd-alerts.rules.yml"].flatMap(
    (f) => parse(readFileSync(join(dir, f), "utf8"), { uniqueKeys: true }).groups,
  );
  const groups = rules[0].object.spec.groups;
  if (!isDeepStrictEqual(groups, expected)) {
    // Name the first group or rule that differs.
    const name = (r) => r?.alert ?? r?.record ?? "(none)";
    let what = `groups [${groups.map((g) => g.name)}], expected [${expected.map((g) => g.name)}]`;
    for (let g = 0; g < Math.max(groups.length, expected.length); g++) {
      if (isDeepStrictEqual(groups[g], expected[g])) continue;
      const [mine, theirs] = [groups[g]?.rules ?? [], expected[g]?.rules ?? []];
      const r = [...Array(Math.max(mine.length, theirs.length)).keys()].find(
        (i) => !isDeepStrictEqual(mine[i], theirs[i]),
      );
      what =
        r === undefined
          ? `group ${groups[g]?.name} differs outside its rules`
          : `group ${expected[g]?.name ?? groups[g]?.name}, rule ${r} (${name(mine[r])}; expected ${name(theirs[r])})`;
      break;
    }
    fail(
      where(rules[0]),
      `differs from packaging/prometheus at ${what}: run packaging/kubernetes/generate-prometheusrule`,
    );
  }
  writeFileSync(join(out, "prometheusrule.rules.yml"), stringify({ groups }, { lineWidth: 0 }));
}

function check(source, out, version) {
  mkdirSync(out, { recursive: true });
  const documents = readDocuments(join(source, "packaging", "kubernetes"));
  console.log(`--- ${documents.length} documents`);
  for (const d of documents) console.log(`  ${where(d)}`);
  console.log("--- schemas (kubernetes-models)");
  validateSchemas(documents);
  console.log("--- unknown fields (TypeScript interfaces)");
  typeCheck(documents);
  console.log("--- privileges, images, references");
  checkPolicy(documents, version);
  console.log("--- PrometheusRule against packaging/prometheus");
  checkPrometheusRule(documents, source, out);
  for (const d of find(documents, "ConfigMap")) {
    const config = d.object.data?.["mcbacklogd.yaml"];
    if (config === undefined) {
      fail(where(d), "no mcbacklogd.yaml key");
      continue;
    }
    writeFileSync(join(out, `config-${d.object.metadata.name}.yaml`), config);
  }
  for (const f of failures) console.log(`FAIL: ${f}`);
  if (failures.length > 0) process.exit(1);
  console.log("all manifest checks passed");
}

function podOf(file) {
  const documents = parseAllDocuments(readFileSync(file, "utf8"), { uniqueKeys: true }).map((d) =>
    d.toJS(),
  );
  const out = documents.filter((o) => o?.kind === "ConfigMap");
  for (const o of documents.filter((o) => o?.kind === "DaemonSet")) {
    out.push({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: o.metadata.name, labels: o.spec.template.metadata.labels },
      spec: o.spec.template.spec,
    });
  }
  process.stdout.write(
    out.map((o) => stringify(o, { lineWidth: 0, blockQuote: "literal" })).join("---\n"),
  );
}

const [command, ...args] = process.argv.slice(2);
if (command === "check" && args.length === 3) {
  check(...args);
} else if (command === "pod-of" && args.length === 1) {
  podOf(args[0]);
} else {
  console.error("usage: manifests.mjs check SOURCE_DIR OUT_DIR VERSION | pod-of FILE");
  process.exit(2);
}
