// deploy/kubernetes as `kubectl kustomize` renders it: valid objects, the rules of a gateway
// fleet, a config the gateway accepts; each rule shown to catch what breaks it. And
// deploy/container/Dockerfile: its gateway image holds every library the binary links to.
// NINES_BIN: the nines binary (ctest passes it).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { render, schemaProblems, fleetProblems, label } from "./manifests.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const manifests = join(root, "deploy/kubernetes");
const nines = process.env.NINES_BIN ?? join(root, "build/nines");
const rendered = render(manifests);
const copy = () => structuredClone(rendered);
const find = (objects, kind, name) =>
  objects.find((o) => o.kind === kind && o.metadata.name.startsWith(name));
const gatewayContainer = (objects) =>
  find(objects, "Deployment", "nines-gateway").spec.template.spec.containers[0];

async function allProblems(objects) {
  const out = [];
  for (const o of objects) {
    out.push(...(await schemaProblems(o)));
  }
  return out.concat(fleetProblems(objects));
}

test("the manifests render, and every object is valid and the fleet's rules hold", async () => {
  const kinds = rendered.map(label).sort();
  for (const want of ["Deployment/nines-gateway", "Service/nines-gateway",
    "PodDisruptionBudget/nines-gateway", "HorizontalPodAutoscaler/nines-gateway",
    "Secret/nines-gateway-keys", "StatefulSet/nines-redis", "Service/nines-redis",
    "PodDisruptionBudget/nines-redis", "NetworkPolicy/nines-redis"]) {
    assert.ok(kinds.includes(want), `${want} rendered (got ${kinds.join(", ")})`);
  }
  // Generated with a hash of their content, and referred to by that name.
  assert.match(find(rendered, "ConfigMap", "nines-gateway-config").metadata.name,
    /^nines-gateway-config-[a-z0-9]{10}$/);
  assert.deepEqual(await allProblems(rendered), []);
});

// Each rule, broken once: the checks above can fail.
const breakages = [
  ["an unknown field", (o) => { gatewayContainer(o).readinesProbe = gatewayContainer(o).readinessProbe; },
    /readinesProbe: no such field in V1Container/],
  ["a field of the wrong type", (o) => { gatewayContainer(o).ports[0].containerPort = "http"; },
    /containerPort must be integer/],
  ["a required field left out", (o) => { delete gatewayContainer(o).name; },
    /containers\/0 must have required property name/],
  ["no such API type", (o) => { o.push({ apiVersion: "apps/v1", kind: "Deploymnet", metadata: { name: "x" } }); },
    /Deploymnet is not a Kubernetes API type/],
  ["readiness on the wrong path", (o) => { gatewayContainer(o).readinessProbe.httpGet.path = "/healthz"; },
    /readinessProbe must GET \/readyz/],
  ["liveness on another port", (o) => { gatewayContainer(o).livenessProbe.httpGet.port = 9901; },
    /livenessProbe must reach the API listener/],
  ["no preStop sleep", (o) => { delete gatewayContainer(o).lifecycle; },
    /preStop must sleep/],
  ["a grace period shorter than the drain", (o) => {
    find(o, "Deployment", "nines-gateway").spec.template.spec.terminationGracePeriodSeconds = 30;
  }, /terminationGracePeriodSeconds 30 must be longer/],
  ["a rolling update that removes first", (o) => {
    find(o, "Deployment", "nines-gateway").spec.strategy.rollingUpdate.maxUnavailable = 1;
  }, /maxUnavailable 0/],
  ["a keys file in no volume", (o) => {
    gatewayContainer(o).volumeMounts = gatewayContainer(o).volumeMounts.filter((m) => m.name !== "keys");
  }, /\/etc\/nines\/keys\/keys.toml is in no mounted volume/],
  ["a Secret that is not rendered", (o) => {
    find(o, "Deployment", "nines-gateway").spec.template.spec.volumes
      .find((v) => v.name === "keys").secret.secretName = "other";
  }, /names no rendered Secret/],
  ["a Service that selects nothing", (o) => {
    find(o, "Service", "nines-gateway").spec.selector = { app: "other" };
  }, /Service\/nines-gateway: selects no gateway pod/],
  ["a budget that selects nothing", (o) => {
    find(o, "PodDisruptionBudget", "nines-gateway").spec.selector.matchLabels = { app: "x" };
  }, /PodDisruptionBudget\/nines-gateway: selects no gateway pod/],
  ["an autoscaler on something else", (o) => {
    find(o, "HorizontalPodAutoscaler", "nines-gateway").spec.scaleTargetRef.name = "other";
  }, /does not scale the gateway Deployment/],
  ["an autoscaler that may go down to one", (o) => {
    find(o, "HorizontalPodAutoscaler", "nines-gateway").spec.minReplicas = 1;
  }, /minReplicas must be 2 or more/],
  ["a Sentinel that is no pod of the set", (o) => {
    const c = find(o, "ConfigMap", "nines-gateway-config");
    c.data["gateway.toml"] = c.data["gateway.toml"].replace("nines-redis-2.nines-redis", "nines-redis-3.nines-redis");
  }, /Sentinel nines-redis-3.nines-redis is no pod/],
  ["a quorum that is no majority", (o) => {
    find(o, "StatefulSet", "nines-redis").spec.template.spec.containers
      .find((c) => c.name === "sentinel").env.find((e) => e.name === "QUORUM").value = "1";
  }, /quorum must be a majority/],
];
for (const [what, breakIt, expected] of breakages) {
  test(`refused: ${what}`, async () => {
    const objects = copy();
    breakIt(objects);
    const problems = await allProblems(objects);
    assert.ok(problems.some((p) => expected.test(p)), `expected ${expected} in ${JSON.stringify(problems)}`);
  });
}

test("the gateway accepts its config as mounted, with the keys Secret beside it", () => {
  const dir = mkdtempSync(join(tmpdir(), "nines-k8s-"));
  try {
    const mount = (path) => join(dir, path.replace(/^\/etc\/nines\//, ""));
    const config = find(rendered, "ConfigMap", "nines-gateway-config").data["gateway.toml"];
    const keys = find(rendered, "Secret", "nines-gateway-keys").stringData["keys.toml"];
    mkdirSync(mount("/etc/nines/config"), { recursive: true });
    mkdirSync(mount("/etc/nines/keys"), { recursive: true });
    writeFileSync(mount("/etc/nines/config/gateway.toml"), config.replaceAll("/etc/nines/", `${dir}/`));
    writeFileSync(mount("/etc/nines/keys/keys.toml"), keys);
    const args = gatewayContainer(rendered).args.map((a) => a.replace(/^\/etc\/nines\//, `${dir}/`));
    const r = spawnSync(nines, [...args, "--check"], { encoding: "utf8", timeout: 30000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    // With TLS on (the commented [tls] lines, a certificate where the Secret is mounted).
    mkdirSync(mount("/etc/nines/tls"), { recursive: true });
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
      "-subj", "/CN=nines-gateway", "-keyout", mount("/etc/nines/tls/tls.key"),
      "-out", mount("/etc/nines/tls/tls.crt")], { stdio: "ignore", timeout: 30000 });
    const withTls = config.replace(/^# \[tls\]\n# (cert_file.*)\n# (key_file.*)$/m, "[tls]\n$1\n$2");
    assert.notEqual(withTls, config, "gateway.toml has the [tls] lines to uncomment");
    writeFileSync(mount("/etc/nines/config/gateway.toml"), withTls.replaceAll("/etc/nines/", `${dir}/`));
    const tls = spawnSync(nines, [...args, "--check"], { encoding: "utf8", timeout: 30000 });
    assert.equal(tls.status, 0, tls.stdout + tls.stderr);
    assert.ok(fleetProblems(rendered.map((o) => o.kind === "ConfigMap" && o.data?.["gateway.toml"]
      ? { ...o, data: { "gateway.toml": withTls } } : o)).length === 0, "the certificate files are mounted");
    // The same config with a key the gateway cannot read is refused: --check reads the files.
    writeFileSync(mount("/etc/nines/keys/keys.toml"), "[[keys]]\nid = \"a\"\n");
    const bad = spawnSync(nines, [...args, "--check"], { encoding: "utf8", timeout: 30000 });
    assert.equal(bad.status, 2, bad.stdout + bad.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// redis-start.sh under stand-ins for redis-cli (the Sentinels' answer), redis-server and
// redis-sentinel (which print the file they were given) and hostname.
function startRedisPod(role, podName, sentinelAnswer, expectStatus = undefined) {
  const dir = mkdtempSync(join(tmpdir(), "nines-redis-start-"));
  try {
    const bin = join(dir, "bin");
    mkdirSync(bin);
    const stub = (name, body) => {
      writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    stub("hostname", `echo ${podName}`);
    stub("redis-cli", sentinelAnswer ? `printf '%s\\n6379\\n' '${sentinelAnswer}'` : "exit 1");
    stub("redis-server", 'cat "$1"');
    stub("redis-sentinel", 'cat "$1"');
    const script = readFileSync(join(manifests, "redis-start.sh"), "utf8");
    const r = spawnSync("sh", ["-c", script, "redis-start.sh", role], {
      encoding: "utf8",
      timeout: 30000,
      env: { PATH: `${bin}:${process.env.PATH}`, SET: "nines-redis", SERVICE: "nines-redis",
        MASTER: "nines", DATA: dir },
    });
    if (expectStatus !== undefined) {
      assert.equal(r.status, expectStatus, r.stderr);
      return r.stderr;
    }
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a Redis pod starts as the primary the Sentinels name, else pod 0 is the primary", () => {
  // The first start: no Sentinel answers.
  const first0 = startRedisPod("redis", "nines-redis-0", "");
  assert.doesNotMatch(first0, /replicaof/);
  assert.match(first0, /replica-announce-ip nines-redis-0\.nines-redis/);
  assert.match(first0, /save ""/);
  assert.match(startRedisPod("redis", "nines-redis-2", ""), /replicaof nines-redis-0\.nines-redis 6379/);
  // Pod 0 back after a failover to pod 1: a replica of pod 1, not a second primary.
  assert.match(startRedisPod("redis", "nines-redis-0", "nines-redis-1.nines-redis"),
    /replicaof nines-redis-1\.nines-redis 6379/);
  assert.doesNotMatch(startRedisPod("redis", "nines-redis-1", "nines-redis-1.nines-redis"), /replicaof/);
  // Its Sentinel monitors that primary by name, resolving names before it reads the monitor line.
  const sentinel = startRedisPod("sentinel", "nines-redis-2", "nines-redis-1.nines-redis");
  assert.match(sentinel, /sentinel monitor nines nines-redis-1\.nines-redis 6379 2/);
  assert.ok(sentinel.indexOf("resolve-hostnames yes") < sentinel.indexOf("sentinel monitor"));
  assert.match(sentinel, /sentinel announce-ip nines-redis-2\.nines-redis/);
  assert.match(startRedisPod("primary", "nines-redis-0", "", 2), /unknown role primary/);
});

// The packages of the Dockerfile stage `stage`'s apt-get install.
function stagePackages(stage) {
  const text = readFileSync(join(root, "deploy/container/Dockerfile"), "utf8").replace(/\\\n/g, " ");
  const body = text.split(/^FROM /m).find((s) => new RegExp(`^\\S+ AS ${stage}\\b`).test(s));
  assert.ok(body, `a stage ${stage}`);
  const install = body.match(/apt-get install ([^&]*)/);
  assert.ok(install, `stage ${stage} installs packages`);
  return new Set(install[1].split(/\s+/).filter((w) => w && !w.startsWith("-")));
}

// The Debian package that holds `file`, and whether every Debian 12 image has it anyway.
function packageOf(file) {
  // Debian 12 merged /bin into /usr/bin; dpkg knows each file by the path its package gave.
  const real = execFileSync("readlink", ["-f", file], { encoding: "utf8" }).trim();
  const paths = [real, file].flatMap((p) => [p, p.replace(/^\/usr\//, "/"), `/usr${p}`]);
  const owner = paths.map((p) => spawnSync("dpkg", ["-S", p], { encoding: "utf8" }))
    .find((r) => r.status === 0);
  assert.ok(owner, `a package holds ${file}`);
  const name = owner.stdout.split(":")[0];
  const essential = execFileSync("dpkg-query", ["-W", "-f=${Essential}", name], { encoding: "utf8" });
  return { name, essential: essential === "yes" || name === "libc6" };
}

test("the gateway image installs every library nines links to", () => {
  const wanted = stagePackages("gateway");
  const libraries = execFileSync("ldd", [nines], { encoding: "utf8" })
    .split("\n").map((l) => l.match(/=> (\/\S+)/)?.[1]).filter(Boolean);
  assert.ok(libraries.length > 5, "ldd lists the libraries");
  for (const lib of libraries) {
    const p = packageOf(lib);
    assert.ok(p.essential || wanted.has(p.name), `${lib} (${p.name}) is installed in the image`);
  }
});

test("the Redis image has every command redis-start.sh runs", () => {
  const wanted = stagePackages("redis");
  for (const command of ["redis-server", "redis-sentinel", "redis-cli", "timeout", "hostname", "sh", "head"]) {
    const path = execFileSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" }).trim();
    const p = packageOf(path);
    assert.ok(p.essential || wanted.has(p.name), `${command} (${p.name}) is installed in the image`);
  }
});
