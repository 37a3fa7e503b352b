// What deploy/kubernetes must be, checked on what `kubectl kustomize` renders from it: every
// object valid against the Kubernetes API's schema (types, required fields, enums: the
// kubernetes-models validators; unknown fields, which the API server would drop or refuse: the
// field lists of @kubernetes/client-node's models), and the rules a gateway fleet needs (probes,
// drain, disruption budget, autoscaler, the Service and the Redis the config names). Each check
// returns its problems as "Kind/name: path: what", so that a test can say which rule broke.

import { execFileSync } from "node:child_process";
import * as k8s from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";

// The objects `kubectl kustomize dir` renders, as plain data.
export function render(dir) {
  const text = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", timeout: 60000 });
  return parseAllDocuments(text).map((d) => {
    if (d.errors.length > 0) {
      throw new Error(`kubectl kustomize ${dir}: ${d.errors[0].message}`);
    }
    return d.toJS();
  });
}

export const label = (o) => `${o?.kind ?? "?"}/${o?.metadata?.name ?? "?"}`;

// "apps/v1" + "Deployment" -> the kubernetes-models module and the client-node class name.
function modelsPath(o) {
  const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : [null, o.apiVersion];
  return `kubernetes-models/${group ? `${group}/` : ""}${version}/${o.kind}`;
}
function clientClass(o) {
  const version = o.apiVersion.split("/").pop();
  return `${version[0].toUpperCase()}${version.slice(1)}${o.kind}`;
}

// Fields the schema does not have, anywhere in `value` (of client-node type `type`).
function unknownFields(value, type, path, out) {
  if (value === null || value === undefined) {
    return;
  }
  const array = type.match(/^Array<(.*)>$/);
  if (array) {
    if (!Array.isArray(value)) {
      out.push(`${path}: must be a list`);
      return;
    }
    value.forEach((v, i) => unknownFields(v, array[1], `${path}[${i}]`, out));
    return;
  }
  const map = type.match(/^\{ \[key: string\]: (.*); \}$/);
  if (map) {
    for (const [key, v] of Object.entries(value)) {
      unknownFields(v, map[1], `${path}.${key}`, out);
    }
    return;
  }
  const model = k8s[type];
  if (!model || typeof model.getAttributeTypeMap !== "function") {
    return;  // a scalar, IntOrString, a quantity, any
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    out.push(`${path}: must be an object`);
    return;
  }
  const fields = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [key, v] of Object.entries(value)) {
    if (!fields.has(key)) {
      out.push(`${path ? `${path}.` : ""}${key}: no such field in ${type}`);
    } else {
      unknownFields(v, fields.get(key), path ? `${path}.${key}` : key, out);
    }
  }
}

// Schema problems of one object.
export async function schemaProblems(o) {
  const out = [];
  if (typeof o?.apiVersion !== "string" || typeof o?.kind !== "string") {
    return [`${label(o)}: no apiVersion or kind`];
  }
  let Model;
  try {
    Model = (await import(modelsPath(o)))[o.kind];
  } catch {
    return [`${label(o)}: ${o.apiVersion} ${o.kind} is not a Kubernetes API type`];
  }
  try {
    new Model(o).validate();
  } catch (e) {
    out.push(`${label(o)}: ${e.message}`);
  }
  const found = [];
  unknownFields(o, clientClass(o), "", found);
  out.push(...found.map((f) => `${label(o)}: ${f}`));
  return out;
}

const matches = (selector, labels) =>
  Object.entries(selector ?? {}).every(([key, value]) => labels?.[key] === value) &&
  Object.keys(selector ?? {}).length > 0;

// The gateway.toml the ConfigMap holds, as [section] -> key -> raw value (enough for the rules
// below; `nines gateway --check` reads it for real).
export function tomlValues(text) {
  const out = {};
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    const table = line.match(/^\[+([^\]]+)\]+$/);
    if (table) {
      section = table[1];
      continue;
    }
    const kv = line.match(/^([A-Za-z0-9_]+)\s*=\s*(.+)$/);
    if (kv) {
      (out[section] ??= {})[kv[1]] = kv[2].replace(/^"(.*)"$/, "$1");
    }
  }
  return out;
}

// The rules of a gateway fleet, over every rendered object.
export function fleetProblems(objects) {
  const out = [];
  const byKind = (kind) => objects.filter((o) => o.kind === kind);
  const find = (kind, name) => byKind(kind).find((o) => o.metadata?.name === name);
  const named = (kind, name) => {
    const o = find(kind, name);
    if (!o) {
      out.push(`${kind}/${name}: missing`);
    }
    return o;
  };

  const deployment = named("Deployment", "nines-gateway");
  const config = byKind("ConfigMap").find((c) => c.data?.["gateway.toml"]);
  if (!config) {
    out.push("ConfigMap: none holds gateway.toml");
  }
  const toml = tomlValues(config?.data?.["gateway.toml"] ?? "");
  if (deployment) {
    const d = label(deployment);
    const pod = deployment.spec?.template;
    if (!matches(deployment.spec?.selector?.matchLabels, pod?.metadata?.labels)) {
      out.push(`${d}: spec.selector does not select its own pods`);
    }
    const container = pod?.spec?.containers?.find((c) => c.args?.[0] === "gateway");
    if (!container) {
      out.push(`${d}: no container runs \`nines gateway\``);
    }
    const ports = new Map((container?.ports ?? []).map((p) => [p.name, p.containerPort]));
    const listenPort = Number((toml.gateway?.listen ?? "").split(":").pop());
    const probe = (name, path) => {
      const p = container?.[name];
      if (p?.httpGet?.path !== path) {
        out.push(`${d}: ${name} must GET ${path}`);
      } else if ((ports.get(p.httpGet.port) ?? p.httpGet.port) !== listenPort) {
        out.push(`${d}: ${name} must reach the API listener (port ${listenPort})`);
      }
    };
    probe("readinessProbe", "/readyz");
    probe("livenessProbe", "/healthz");
    // The pod must outlive its preStop sleep and the drain together.
    const sleep = container?.lifecycle?.preStop?.exec?.command;
    const sleepS = sleep?.[0] === "sleep" ? Number(sleep[1]) : NaN;
    if (!(sleepS > 0)) {
      out.push(`${d}: preStop must sleep (the Service stops sending new connections meanwhile)`);
    }
    const drainS = Number(toml.gateway?.drain_timeout_ms ?? 30000) / 1000;
    const grace = pod?.spec?.terminationGracePeriodSeconds ?? 30;
    if (!(grace > sleepS + drainS)) {
      out.push(
        `${d}: terminationGracePeriodSeconds ${grace} must be longer than the preStop sleep ` +
          `(${sleepS} s) and gateway.drain_timeout_ms (${drainS} s) together`);
    }
    if (deployment.spec?.strategy?.rollingUpdate?.maxUnavailable !== 0) {
      out.push(`${d}: a rolling update must add a pod before it removes one (maxUnavailable 0)`);
    }
    // Every mounted file the config names must come from a volume of the pod.
    const mounts = container?.volumeMounts ?? [];
    const volumes = new Map((pod?.spec?.volumes ?? []).map((v) => [v.name, v]));
    for (const m of mounts) {
      const v = volumes.get(m.name);
      if (!v) {
        out.push(`${d}: volumeMount ${m.name} names no volume`);
      } else if (v.configMap && !find("ConfigMap", v.configMap.name)) {
        out.push(`${d}: volume ${m.name} names no rendered ConfigMap (${v.configMap.name})`);
      } else if (v.secret && !v.secret.optional && !find("Secret", v.secret.secretName)) {
        out.push(`${d}: volume ${m.name} names no rendered Secret (${v.secret.secretName})`);
      }
    }
    const configArg = container?.args?.[container.args.indexOf("--config") + 1] ?? "";
    for (const file of [configArg, toml.auth?.keys_file, toml.journal?.store_password_file,
      toml.tls?.cert_file, toml.tls?.key_file]) {
      if (file && !mounts.some((m) => file.startsWith(`${m.mountPath}/`))) {
        out.push(`${d}: ${file} is in no mounted volume`);
      }
    }
    const service = named("Service", "nines-gateway");
    if (service) {
      if (!matches(service.spec?.selector, pod?.metadata?.labels)) {
        out.push(`${label(service)}: selects no gateway pod`);
      }
      for (const p of service.spec?.ports ?? []) {
        if ((ports.get(p.targetPort) ?? p.targetPort) !== listenPort) {
          out.push(`${label(service)}: port ${p.port} does not reach the API listener`);
        }
      }
    }
    const pdb = named("PodDisruptionBudget", "nines-gateway");
    if (pdb && !matches(pdb.spec?.selector?.matchLabels, pod?.metadata?.labels)) {
      out.push(`${label(pdb)}: selects no gateway pod`);
    }
    const hpa = named("HorizontalPodAutoscaler", "nines-gateway");
    if (hpa) {
      const target = hpa.spec?.scaleTargetRef;
      if (target?.kind !== "Deployment" || target?.name !== deployment.metadata.name) {
        out.push(`${label(hpa)}: does not scale the gateway Deployment`);
      }
      if (!(hpa.spec?.metrics ?? []).some((m) => m.resource?.name === "cpu")) {
        out.push(`${label(hpa)}: does not scale on CPU`);
      }
      if (!(hpa.spec?.minReplicas >= 2)) {
        out.push(`${label(hpa)}: minReplicas must be 2 or more (one replica is one failure domain)`);
      }
      if (!container?.resources?.requests?.cpu) {
        out.push(`${d}: an autoscaler on CPU needs a CPU request`);
      }
    }
  }

  // The Sentinels the config names are pods of the Redis StatefulSet, on its headless Service.
  const store = toml.journal?.store ?? "";
  const sentinels = store.match(/^redis-sentinel:\/\/([^/]+)\/(.+)$/);
  if (!sentinels) {
    out.push(`ConfigMap: journal.store must name Sentinels (redis-sentinel://...), not "${store}"`);
  } else {
    const set = named("StatefulSet", "nines-redis");
    const headless = set && find("Service", set.spec?.serviceName);
    if (set && (!headless || headless.spec?.clusterIP !== "None")) {
      out.push(`${label(set)}: its serviceName must be a headless Service`);
    }
    const hosts = sentinels[1].split(",");
    for (const h of hosts) {
      const [host, port] = h.split(":");
      const [podName, serviceName] = host.split(".");
      const ordinal = Number(podName?.slice((set?.metadata?.name?.length ?? 0) + 1));
      if (!set || !podName.startsWith(`${set.metadata.name}-`) || !(ordinal < set.spec.replicas) ||
          serviceName !== set.spec.serviceName) {
        out.push(`ConfigMap: Sentinel ${host} is no pod of the Redis StatefulSet`);
      }
      const sentinel = set?.spec?.template?.spec?.containers?.find((c) => c.name === "sentinel");
      if (!sentinel?.ports?.some((p) => p.containerPort === Number(port))) {
        out.push(`ConfigMap: no Sentinel container listens on ${port}`);
      }
    }
    const quorum = Number(set?.spec?.template?.spec?.containers
      ?.find((c) => c.name === "sentinel")?.env?.find((e) => e.name === "QUORUM")?.value);
    if (set && !(quorum > set.spec.replicas / 2 && quorum <= set.spec.replicas)) {
      out.push(`${label(set)}: the Sentinel quorum must be a majority of ${set.spec.replicas}`);
    }
    const redisPdb = named("PodDisruptionBudget", "nines-redis");
    if (redisPdb && redisPdb.spec?.maxUnavailable !== 1) {
      out.push(`${label(redisPdb)}: at most one Redis pod may be away (the quorum stays)`);
    }
  }
  return out;
}
