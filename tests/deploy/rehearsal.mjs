// The cluster rehearsal: no Kubernetes runs here, so this plays the kubelet on loopback. It
// renders an overlay (dev: fakehub is the Hub), starts each workload's container command as local
// processes (one per replica, env and args from the manifests, Secrets and ConfigMaps written
// where they are mounted, Service names mapped to loopback ports), waits for the readiness probes
// the manifests declare (grpc.health.v1, HTTP, TCP), runs the CronJob's command, removes a crawler
// mid-crawl once with SIGTERM (as Kubernetes does, with its grace period) and once with SIGKILL,
// starting a replacement each time (as the Deployment does), then checks the committed census
// against fakehub's ground truth and that no Secret value appears in any process's log.
//
// With --overlay=prod it plays the operator too: it creates the Secrets docs/deploy.md tells the
// operator to create (Hub token, admin token, one TLS certificate per role from a CA made with
// the openssl CLI), adds fakehub as the Hub (prod has none), and checks that every gRPC call
// without a client certificate is refused (mTLS) while the crawl runs over mutual TLS.
//
//   node rehearsal.mjs --source=DIR --tools=DIR --binary=PATH [--overlay=dev|prod]
//        [--repos=N] [--hub_date=YYYY-MM-DD] [--hub_seed=N] [--keep] [--until=servers]
// --until=servers stops once fakehub, the aggregator and the coordinator pass their readiness
// probes (and then their SIGTERM), without crawlers or the crawl.
// Exit 77 (ctest SKIP) when a role it needs is still a placeholder in the binary.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import {
  binaryFlags, flagValue, importNodeTool, listeningPorts, parseAll, podTemplate, render,
  replicasOf, resolvePort, selects, splitArgv,
} from "./manifests.mjs";

const args = Object.fromEntries(process.argv.slice(2).map((a) => {
  const m = /^--([a-z_]+)(?:=(.*))?$/.exec(a);
  return m ? [m[1], m[2] ?? "true"] : [a, "true"];
}));
for (const k of ["source", "tools", "binary"]) if (args[k]) args[k] = path.resolve(args[k]);
const BINARY = args.binary;
const OVERLAY = args.overlay ?? "dev";
// The rehearsal chooses the simulated Hub's size and date (the manifest's fakehub is for dev
// clusters) and compresses lease time, so a crawler killed mid-lease costs seconds, not 30.
const FAKEHUB_OVERRIDES = {
  repos: args.repos ?? "60000",
  date: args.hub_date ?? "2025-10-31",
  // Paced, so the crawl lasts long enough to lose two crawlers mid-way whatever the replicas.
  rate_limit: args.hub_rate_limit ?? "8/1",
  ...(args.hub_seed ? { seed: args.hub_seed } : {}),
};
const COORDINATOR_OVERRIDES = { lease_seconds: "4" };
const SKIP = 77;

function log(...m) { console.log(`[rehearsal ${new Date().toISOString().slice(11, 23)}]`, ...m); }
function fail(message) {
  console.error(`REHEARSAL FAILED: ${message}`);
  throw new Error(message);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// --- probes, as the kubelet runs them ------------------------------------------------------
let healthClientCtor = null;
async function grpcHealth(port) {
  if (!healthClientCtor) {
    const grpc = await importNodeTool(args.tools, "@grpc/grpc-js");
    const loader = await importNodeTool(args.tools, "@grpc/proto-loader");
    const def = (loader.default ?? loader).loadSync(
        path.join(args.source, "proto/grpc/health/v1/health.proto"), { enums: String });
    const pkg = (grpc.default ?? grpc).loadPackageDefinition(def);
    healthClientCtor = { grpc: grpc.default ?? grpc, Health: pkg.grpc.health.v1.Health };
  }
  const { grpc, Health } = healthClientCtor;
  const client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    return await new Promise((resolve) => {
      client.Check({ service: "" }, { deadline: Date.now() + 1000 },
                   (err, resp) => resolve(err ? null : resp.status));
    });
  } finally {
    client.close();
  }
}

// One SnapshotStore.Abort call on a local port, with the TLS files among `clientTls`
// (--tls_ca, --tls_cert, --tls_key; none: plaintext): the gRPC status code, 0 when it succeeded
// (12 UNIMPLEMENTED: no such service there; 14 UNAVAILABLE: e.g. refused in the handshake).
let storeClientCtor = null;
async function snapshotStoreAbortCode(port, clientTls, workerToken = null) {
  if (!storeClientCtor) {
    const grpc = await importNodeTool(args.tools, "@grpc/grpc-js");
    const loader = await importNodeTool(args.tools, "@grpc/proto-loader");
    const def = (loader.default ?? loader).loadSync(
        path.join(args.source, "proto/hubcensus/v1/store.proto"),
        { includeDirs: [path.join(args.source, "proto")] });
    const pkg = (grpc.default ?? grpc).loadPackageDefinition(def);
    storeClientCtor = { grpc: grpc.default ?? grpc, SnapshotStore: pkg.hubcensus.v1.SnapshotStore };
  }
  const { grpc, SnapshotStore } = storeClientCtor;
  const file = (flag) => {
    const f = clientTls.find((x) => x.startsWith(`--${flag}=`));
    return f ? fs.readFileSync(f.slice(flag.length + 3)) : null;
  };
  const credentials = file("tls_ca")
      ? grpc.credentials.createSsl(file("tls_ca"), file("tls_key"), file("tls_cert"))
      : grpc.credentials.createInsecure();
  const client = new SnapshotStore(`127.0.0.1:${port}`, credentials);
  try {
    return await new Promise((resolve) => {
      const metadata = new grpc.Metadata();
      if (workerToken) metadata.add("authorization", `Bearer ${workerToken}`);
      client.Abort({ crawl_id: "rehearsal-no-such-crawl" }, metadata,
                   { deadline: Date.now() + 10000 }, (err) => resolve(err ? err.code : 0));
    });
  } finally {
    client.close();
  }
}

async function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

async function probeOnce(probe, pod) {
  if (probe.grpc) {
    return (await grpcHealth(pod.localPort(resolvePort(probe.grpc.port, pod.container)))) ===
        "SERVING";
  }
  if (probe.httpGet) {
    const port = pod.localPort(resolvePort(probe.httpGet.port, pod.container));
    try {
      const r = await fetch(`http://127.0.0.1:${port}${probe.httpGet.path ?? "/"}`,
                            { signal: AbortSignal.timeout(1000) });
      return r.status >= 200 && r.status < 400;
    } catch {
      return false;
    }
  }
  if (probe.tcpSocket) {
    return tcpOpen(pod.localPort(resolvePort(probe.tcpSocket.port, pod.container)));
  }
  return true;
}

async function waitReady(pod, timeoutMs = 90000) {
  const probe = pod.container.readinessProbe ?? pod.container.startupProbe ??
                pod.container.livenessProbe;
  if (!probe) return;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probeOnce(probe, pod)) return;
    if (pod.exited) fail(`${pod.name} exited (${pod.exitCode}) before it was ready:\n${pod.tail()}`);
    await sleep(200);
  }
  fail(`${pod.name} never passed its probe:\n${pod.tail()}`);
}

// --- pods ----------------------------------------------------------------------------------
class Pod {
  constructor(cluster, workload, index) {
    this.cluster = cluster;
    this.workload = workload;
    this.template = podTemplate(workload);
    this.container = this.template.spec.containers[0];
    this.name = `${workload.metadata.name}-${index}`;
    this.root = path.join(cluster.root, "pods", this.name);
    this.ports = new Map(); // containerPort -> local port
    this.exited = false;
    this.exitCode = null;
    this.signal = null;
    this.logPath = path.join(cluster.root, "logs", `${this.name}.log`);
  }
  localPort(containerPort) {
    const p = this.ports.get(containerPort);
    if (!p) fail(`${this.name}: no local port for container port ${containerPort}`);
    return p;
  }
  tail(lines = 30) {
    if (!fs.existsSync(this.logPath)) return "";
    return fs.readFileSync(this.logPath, "utf8").split("\n").slice(-lines).join("\n");
  }
  async prepare() {
    fs.mkdirSync(this.root, { recursive: true });
    const { words, flags } = splitArgv(this.container);
    for (const port of listeningPorts(words, flags).keys()) this.ports.set(port, await freePort());
    // Volumes: Secrets and ConfigMaps as files; PVCs and emptyDirs as folders.
    const volumes = new Map((this.template.spec.volumes ?? []).map((v) => [v.name, v]));
    for (const m of this.container.volumeMounts ?? []) {
      const dir = path.join(this.root, m.mountPath);
      fs.mkdirSync(dir, { recursive: true });
      const v = volumes.get(m.name);
      if (v?.secret) {
        const secret = this.cluster.find("Secret", v.secret.secretName);
        if (!secret) fail(`${this.name}: Secret ${v.secret.secretName} is not in the overlay`);
        for (const [k, b64] of Object.entries(secret.data ?? {})) {
          fs.writeFileSync(path.join(dir, k), Buffer.from(b64, "base64"), { mode: 0o440 });
        }
        for (const [k, s] of Object.entries(secret.stringData ?? {})) {
          fs.writeFileSync(path.join(dir, k), s, { mode: 0o440 });
        }
      } else if (v?.configMap) {
        const cm = this.cluster.find("ConfigMap", v.configMap.name);
        if (!cm) fail(`${this.name}: ConfigMap ${v.configMap.name} is not in the overlay`);
        for (const [k, s] of Object.entries(cm.data ?? {})) fs.writeFileSync(path.join(dir, k), s);
      }
    }
  }
  env() {
    const env = {};
    for (const e of this.container.env ?? []) {
      if (e.value !== undefined) env[e.name] = this.rewrite(e.value, env);
      else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = this.name;
      else if (e.valueFrom?.secretKeyRef) {
        const s = this.cluster.find("Secret", e.valueFrom.secretKeyRef.name);
        env[e.name] = Buffer.from(s.data[e.valueFrom.secretKeyRef.key], "base64").toString();
      } else fail(`${this.name}: env ${e.name}: unsupported source`);
    }
    return env;
  }
  // One manifest value, as this process on loopback must see it.
  rewrite(value, env) {
    let v = value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_, n) => env[n] ?? `$(${n})`);
    const mounts = (this.container.volumeMounts ?? []).map((m) => m.mountPath)
                       .sort((a, b) => b.length - a.length);
    const mount = mounts.find((m) => v === m || v.startsWith(`${m}/`));
    if (mount) return path.join(this.root, v);
    v = v.replace(/^(https?:\/\/)?([a-z0-9-]+):(\d+)/, (all, scheme, host, port) => {
      const local = this.cluster.serviceAddress(host, Number(port));
      return local ? `${scheme ?? ""}127.0.0.1:${local}` : all;
    });
    return v;
  }
  argv() {
    const env = this.env();
    const { words, flags } = splitArgv(this.container);
    const isFakehub = words[0] === "fakehub";
    const overrides = isFakehub ? FAKEHUB_OVERRIDES
        : words[0] === "coordinator" ? COORDINATOR_OVERRIDES : {};
    const out = [...words];
    for (const f of flags) {
      if (f.name in overrides) continue;
      if (f.value === null) {
        out.push(f.raw);
      } else if (f.name === "listen" || f.name === "ingest_listen") {
        const m = /^(.*?)(?::(\d+))?$/.exec(f.value);
        out.push(m[2] ? `--${f.name}=127.0.0.1:${this.localPort(Number(m[2]))}`
                      : `--${f.name}=127.0.0.1`);
      } else if (["metrics_port", "health_port"].includes(f.name) ||
                 (isFakehub && f.name === "port")) {
        out.push(`--${f.name}=${Number(f.value) > 0 ? this.localPort(Number(f.value)) : f.value}`);
      } else if (f.name === "log_level") {
        continue;
      } else {
        out.push(`--${f.name}=${this.rewrite(f.value, env)}`);
      }
    }
    for (const [k, v] of Object.entries(overrides)) out.push(`--${k}=${this.rewrite(v, env)}`);
    // Debug lines are where a secret would most likely leak: log everything.
    out.push("--log_level=debug");
    return { argv: out, env };
  }
  start() {
    const { argv, env } = this.argv();
    fs.mkdirSync(path.dirname(this.logPath), { recursive: true });
    const fd = fs.openSync(this.logPath, "a");
    fs.writeSync(fd, `# ${path.basename(BINARY)} ${argv.join(" ")}\n`);
    this.exited = false;
    this.proc = spawn(BINARY, argv, { env: { ...process.env, ...env }, stdio: ["ignore", fd, fd],
                                      cwd: this.root });
    fs.closeSync(fd);
    this.done = new Promise((resolve) => {
      this.proc.on("error", (e) => {
        this.exited = true;
        this.exitCode = 127;
        fs.appendFileSync(this.logPath, `# cannot start: ${e.message}\n`);
        resolve({ code: 127, signal: null });
      });
      this.proc.on("exit", (code, signal) => {
        this.exited = true;
        this.exitCode = code;
        this.signal = signal;
        resolve({ code, signal });
      });
    });
    log(`started ${this.name} (pid ${this.proc.pid}): hubcensus ${argv.join(" ")}`);
  }
  kill(signal) {
    if (!this.exited) this.proc.kill(signal);
  }
  // Kubernetes' termination: SIGTERM, then SIGKILL after the grace period.
  async terminate() {
    const grace = (this.template.spec.terminationGracePeriodSeconds ?? 30) * 1000;
    this.kill("SIGTERM");
    const timer = setTimeout(() => this.kill("SIGKILL"), grace);
    const r = await this.done;
    clearTimeout(timer);
    return r;
  }
}

class Cluster {
  constructor(objects, root) {
    this.objects = objects;
    this.root = root;
    this.pods = [];
    this.podSerial = new Map();
  }
  find(kind, name) {
    return this.objects.find((o) => o.kind === kind && o.metadata.name === name);
  }
  workload(kind, name) {
    const w = this.find(kind, name);
    if (!w) fail(`${kind} ${name} is not in the ${OVERLAY} overlay`);
    return w;
  }
  async addPod(workload) {
    const n = this.podSerial.get(workload.metadata.name) ?? 0;
    this.podSerial.set(workload.metadata.name, n + 1);
    const pod = new Pod(this, workload, n);
    await pod.prepare();
    this.pods.push(pod);
    return pod;
  }
  serviceAddress(name, port) {
    const svc = this.find("Service", name);
    if (!svc) return null;
    const sp = svc.spec.ports.find((p) => p.port === port);
    if (!sp) fail(`Service ${name} has no port ${port}`);
    const backend = this.pods.find((p) => !p.exited &&
                                         selects(svc.spec.selector, p.template.metadata.labels)) ??
                    this.pods.find((p) => selects(svc.spec.selector, p.template.metadata.labels));
    if (!backend) fail(`Service ${name}: no pod started yet behind it`);
    return backend.localPort(resolvePort(sp.targetPort ?? sp.port, backend.container));
  }
  stopAll() {
    for (const p of this.pods) p.kill("SIGKILL");
  }
}

function run(argv, timeoutMs = 60000) {
  const r = spawnSync(BINARY, argv, { encoding: "utf8", timeout: timeoutMs });
  return { code: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}`, stdout: r.stdout ?? "" };
}

function crawlStatus(coordinatorPort, tokenFile, clientTls) {
  const r = run(["crawl", "status", `--coordinator=127.0.0.1:${coordinatorPort}`, "--date=today",
                 `--admin_token_file=${tokenFile}`, ...clientTls]);
  const field = (name) => (new RegExp(`^${name}:\\s+(.*)$`, "m").exec(r.stdout) ?? [])[1];
  return { state: field("state"), pages: Number(field("pages") ?? 0), raw: r.out };
}

// Numbers of the census, for comparison: {family -> {field -> value}} and the same per region.
function censusFigures(json) {
  const pick = (rows, key) => Object.fromEntries((rows ?? []).map((r) => {
    const { [key]: name, ...rest } = r;
    return [name, rest];
  }));
  return { families: pick(json.families, "family"), regions: pick(json.regions, "region") };
}

function diffFigures(actual, expected, trail = "") {
  const out = [];
  const keys = new Set([...Object.keys(actual ?? {}), ...Object.keys(expected ?? {})]);
  for (const k of keys) {
    const a = actual?.[k];
    const e = expected?.[k];
    if (a && e && typeof a === "object" && typeof e === "object") {
      out.push(...diffFigures(a, e, `${trail}${k}.`));
    } else if (JSON.stringify(a) !== JSON.stringify(e)) {
      out.push(`${trail}${k}: census ${JSON.stringify(a)}, truth ${JSON.stringify(e)}`);
    }
  }
  return out;
}

// SIGTERM each running hubcensus role, as a rollout does: each must exit 0 within its grace
// period. fakehub plays the Internet's Hub, not a role: it is simply stopped.
async function terminateRoles(cluster) {
  for (const p of cluster.pods.filter((x) => !x.exited)) {
    if (splitArgv(p.container).words[0] === "fakehub") continue;
    const r = await p.terminate();
    if (r.code !== 0) fail(`${p.name} exited ${r.code}/${r.signal} on SIGTERM:\n${p.tail()}`);
    log(`${p.name} exited 0 on SIGTERM`);
  }
}

// What the prod operator creates by hand (docs/deploy.md): Secrets for the Hub token, the admin
// token and each role's certificate (SANs: its Service names and loopback, where the rehearsal
// dials), and, because prod has no Hub simulator, fakehub as a Deployment and Service.
function operatorObjects(root) {
  const pki = path.join(root, "pki");
  fs.mkdirSync(pki, { recursive: true });
  const key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const roles = ["coordinator", "aggregator", "crawler", "crawl-trigger"];
  let script = `set -e; cd '${pki}'; openssl req -x509 ${key} -days 2 -subj /CN=hubcensus-ca ` +
      "-keyout ca.key -out ca.crt -addext basicConstraints=critical,CA:TRUE " +
      "-addext keyUsage=critical,keyCertSign,cRLSign;";
  for (const role of roles) {
    fs.writeFileSync(path.join(pki, `${role}.ext`),
                     "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n" +
                     `subjectAltName=DNS:hubcensus-${role},DNS:localhost,IP:127.0.0.1\n`);
    script += `openssl req ${key} -subj /CN=hubcensus-${role} -keyout ${role}.key ` +
        `-out ${role}.csr; openssl x509 -req -in ${role}.csr -CA ca.crt -CAkey ca.key ` +
        `-CAcreateserial -days 2 -extfile ${role}.ext -out ${role}.crt;`;
  }
  const r = spawnSync("bash", ["-c", script], { encoding: "utf8" });
  if (r.status !== 0) fail(`openssl could not make the rehearsal's certificates: ${r.stderr}`);
  const b64 = (file) => fs.readFileSync(path.join(pki, file)).toString("base64");
  const secret = (name, data) => ({ apiVersion: "v1", kind: "Secret", metadata: { name }, data });
  const objects = roles.map((role) => secret(`hubcensus-${role}-tls`, {
    "tls.crt": b64(`${role}.crt`), "tls.key": b64(`${role}.key`), "ca.crt": b64("ca.crt"),
  }));
  const token = (prefix) => Buffer.from(`${prefix}${Math.random().toString(36).slice(2)}` +
                                        `${Date.now().toString(36)}`).toString("base64");
  objects.push(secret("hubcensus-hf-token", { token: token("hf_rehearsalFake") }));
  objects.push(secret("hubcensus-admin-token", { token: token("admin-rehearsal-") }));
  objects.push(secret("hubcensus-worker-token", { token: token("worker-rehearsal-") }));
  const labels = { "app.kubernetes.io/name": "hubcensus", "app.kubernetes.io/component": "fakehub" };
  objects.push({
    apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "hubcensus-fakehub", labels },
    spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: {
      containers: [{ name: "fakehub",
                     args: ["fakehub", "--listen=0.0.0.0", "--port=8080", "--seed=7"],
                     ports: [{ name: "http", containerPort: 8080 }],
                     readinessProbe: { tcpSocket: { port: "http" } } }],
    } } },
  });
  objects.push({ apiVersion: "v1", kind: "Service", metadata: { name: "hubcensus-fakehub" },
                 spec: { selector: labels, ports: [{ port: 8080, targetPort: "http" }] } });
  const client = [`--tls_ca=${pki}/ca.crt`, `--tls_cert=${pki}/crawl-trigger.crt`,
                  `--tls_key=${pki}/crawl-trigger.key`];
  return { objects, client, pki };
}

function checkNoSecretInLogs(cluster, secrets) {
  const leaks = [];
  let total = 0;
  for (const p of cluster.pods) {
    const lines = fs.readFileSync(p.logPath, "utf8").split("\n");
    total += lines.length;
    lines.forEach((line, i) => {
      // The first line is the rehearsal's own record of the argv (paths only, never values).
      for (const s of secrets) if (line.includes(s)) leaks.push(`${p.name}.log:${i + 1}`);
    });
  }
  if (leaks.length) fail(`a Secret value appears in log lines: ${leaks.join(", ")}`);
  log(`no Secret value (${secrets.length} checked) in ${total} log lines of ${
      cluster.pods.length} processes`);
}

async function main() {
  const untilServers = args.until === "servers";
  const needed = untilServers ? [["coordinator"], ["aggregator"], ["fakehub"]]
                              : [["coordinator"], ["crawler"], ["aggregator"], ["fakehub"], ["crawl"]];
  for (const words of needed) {
    let help;
    try {
      help = binaryFlags(BINARY, words);
    } catch (e) {
      help = { placeholder: true, help: e.message };
    }
    if (help.placeholder) {
      console.log(`SKIP: \`hubcensus ${words.join(" ")}\` is not available in this build yet; ` +
                  "the rehearsal needs every role");
      process.exit(SKIP);
    }
  }
  if (OVERLAY === "prod") {
    const missing = [["coordinator"], ["aggregator"], ["crawler"], ["crawl"]]
        .filter((w) => !binaryFlags(BINARY, w).flags.has("tls_cert"));
    if (missing.length) {
      console.log(`SKIP: no TLS flags in \`hubcensus ${missing.map((w) => w.join(" ")).join("`, `")
                  }\` yet (common/tls.h is not wired into them; DeployConsistency lists what is ` +
                  "missing)");
      process.exit(SKIP);
    }
  }
  const YAML = (await importNodeTool(args.tools, "yaml/dist/index.js")).default;
  const objects = parseAll(YAML, render(path.join(args.source, "deploy/overlays", OVERLAY)));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "hubcensus-rehearsal-"));
  // The rehearsal's own CLI calls (crawl status, query) as a labelled client: with a client
  // certificate when the overlay runs mTLS.
  let clientTls = [];
  if (OVERLAY === "prod") {
    const operator = operatorObjects(root);
    objects.push(...operator.objects);
    clientTls = operator.client;
    COORDINATOR_OVERRIDES.hub_url = "http://hubcensus-fakehub:8080";
  }
  log(`overlay ${OVERLAY}: ${objects.length} objects; processes run under ${root}`);
  const cluster = new Cluster(objects, root);
  // Every Secret value, and each body line of a private key (a log would break a PEM into lines).
  const secrets = objects.filter((o) => o.kind === "Secret")
      .flatMap((s) => Object.entries(s.data ?? {}).filter(([k]) => k !== "tls.crt" && k !== "ca.crt")
                   .map(([, b]) => Buffer.from(b, "base64").toString()))
      .flatMap((v) => (/PRIVATE KEY/.test(v) ? v.split("\n").filter((l) => !/^-----/.test(l)) : [v]))
      .filter((v) => v.length >= 8);
  if (!secrets.length) fail(`the ${OVERLAY} overlay holds no Secret to look for in the logs`);

  let ok = false;
  try {
    // Kubernetes starts everything at once and restarts what crashes; starting in dependency
    // order with readiness in between reaches the same steady state without crash loops.
    const fakehubWorkload = cluster.workload("Deployment", "hubcensus-fakehub");
    const aggregatorWorkload = cluster.workload("StatefulSet", "hubcensus-aggregator");
    const coordinatorWorkload = cluster.workload("Deployment", "hubcensus-coordinator");
    const crawlerWorkload = cluster.workload("Deployment", "hubcensus-crawler");
    const cron = objects.find((o) => o.kind === "CronJob");
    for (const w of [fakehubWorkload, aggregatorWorkload, coordinatorWorkload]) {
      for (let i = 0; i < replicasOf(w); ++i) {
        const pod = await cluster.addPod(w);
        pod.start();
        await waitReady(pod);
      }
    }
    // Operator RPCs need the admin token from the manifests' Secret: without it, or with a
    // wrong one, the coordinator refuses.
    {
      const coordinatorPort = cluster.serviceAddress("hubcensus-coordinator", 7001);
      const wrongToken = path.join(root, "wrong-admin-token");
      fs.writeFileSync(wrongToken, "wrong-admin-token-0123456789\n");
      secrets.push("wrong-admin-token-0123456789");
      for (const extra of [[], [`--admin_token_file=${wrongToken}`]]) {
        const r = run(["crawl", "list", `--coordinator=127.0.0.1:${coordinatorPort}`, ...extra,
                       ...clientTls]);
        if (r.code === 0 || !/UNAUTHENTICATED|admin token/i.test(r.out)) {
          fail(`crawl list ${extra.length ? "with a wrong" : "without an"} admin token was not ` +
               `refused (exit ${r.code}): ${r.out}`);
        }
      }
      const coordinatorPod = cluster.pods.find((p) => p.workload === coordinatorWorkload);
      const tokenFile = path.join(coordinatorPod.root, "/etc/hubcensus/admin-token/token");
      const r = run(["crawl", "list", `--coordinator=127.0.0.1:${coordinatorPort}`,
                     `--admin_token_file=${tokenFile}`, ...clientTls]);
      if (r.code !== 0) fail(`crawl list with the admin token failed: ${r.out}`);
      log("the coordinator refuses operator RPCs without the admin token and with a wrong one");
      if (clientTls.length) {
        // mTLS: the right token is not enough without a client certificate from the CA.
        const aggregatorPort = cluster.serviceAddress("hubcensus-aggregator", 7003);
        const attempts = [
          ["crawl", "list", `--coordinator=127.0.0.1:${coordinatorPort}`,
           `--admin_token_file=${tokenFile}`],
          ["crawl", "list", `--coordinator=127.0.0.1:${coordinatorPort}`,
           `--admin_token_file=${tokenFile}`, clientTls[0]],
          ["query", "crawls", `--aggregator=127.0.0.1:${aggregatorPort}`],
          ["query", "crawls", `--aggregator=127.0.0.1:${aggregatorPort}`, clientTls[0]],
        ];
        for (const argv of attempts) {
          const refused = run(argv, 20000);
          if (refused.code === 0) {
            fail(`\`hubcensus ${argv.join(" ")}\` succeeded without a client certificate`);
          }
        }
        // The ingest port (the crawlers' --store) holds the same line: a SnapshotStore call that
        // trusts the CA but presents no certificate is refused in the handshake.
        const ingestPort = cluster.serviceAddress("hubcensus-aggregator", 7004);
        const ingestCode = await snapshotStoreAbortCode(ingestPort, [clientTls[0]]);
        if (ingestCode !== 14) {
          fail(`SnapshotStore on the ingest port without a client certificate answered code ${
              ingestCode}, not 14 (UNAVAILABLE: refused in the handshake)`);
        }
        // A client certificate is not enough for ingest: the worker token from the manifests'
        // Secret is needed too (UNAUTHENTICATED, 16, without it).
        const aggregatorPod = cluster.pods.find((p) => p.workload === aggregatorWorkload);
        const workerToken = fs.readFileSync(
            path.join(aggregatorPod.root, "/etc/hubcensus/worker-token/token"), "utf8").trim();
        const tokenless = await snapshotStoreAbortCode(ingestPort, clientTls);
        if (tokenless !== 16) {
          fail(`SnapshotStore Abort with a client certificate but no worker token answered code ${
              tokenless}, not 16 (UNAUTHENTICATED)`);
        }
        const withToken = await snapshotStoreAbortCode(ingestPort, clientTls, workerToken);
        if (withToken === 16 || withToken === 14) {
          fail(`SnapshotStore Abort with a client certificate and the worker token answered code ${
              withToken}`);
        }
        log("ingest needs the worker token besides a client certificate");
        const allowed = run(["query", "crawls", `--aggregator=127.0.0.1:${aggregatorPort}`,
                             ...clientTls]);
        if (allowed.code !== 0) fail(`query crawls with a client certificate failed: ${allowed.out}`);
        log("mTLS: calls without a client certificate are refused by the coordinator and both " +
            "of the aggregator's ports; with one they pass");
      }
    }
    // The aggregator's Service ports as a pod reaches them: ingest (the coordinator's and the
    // crawlers' --store) serves only SnapshotStore, the query port only Census.
    {
      const storeFlag = (w) => splitArgv(w.spec.template.spec.containers[0]).flags
          .find((f) => f.name === "store")?.value ?? "";
      const store = storeFlag(coordinatorWorkload);
      const [, storeService, storePort] = /^([a-z0-9-]+):(\d+)$/.exec(store) ?? [];
      if (storeService !== "hubcensus-aggregator" || storeFlag(crawlerWorkload) !== store) {
        fail(`the coordinator and the crawlers must dial the same store Service port (--store=${
            storeFlag(coordinatorWorkload)}, --store=${storeFlag(crawlerWorkload)})`);
      }
      const ingestPort = cluster.serviceAddress(storeService, Number(storePort));
      const queryPort = cluster.serviceAddress("hubcensus-aggregator", 7003);
      if (ingestPort === queryPort) fail("the store's ingest and query ports are one port");
      const census = run(["query", "crawls", `--aggregator=127.0.0.1:${ingestPort}`, ...clientTls]);
      if (census.code === 0 || !/UNIMPLEMENTED/.test(census.out)) {
        fail(`Census on the ingest port ${storePort} was not UNIMPLEMENTED (exit ${census.code}): ${
            census.out}`);
      }
      const code = await snapshotStoreAbortCode(queryPort, clientTls);
      if (code !== 12) {
        fail(`SnapshotStore on the query port 7003 answered code ${code}, not 12 (UNIMPLEMENTED)`);
      }
      log(`the aggregator serves SnapshotStore only on ${storePort} and Census only on 7003`);
    }
    if (untilServers) {
      await terminateRoles(cluster);
      checkNoSecretInLogs(cluster, secrets);
      log(`${cluster.pods.length} servers started from the manifests, passed their probes and ` +
          "stopped on SIGTERM");
      ok = true;
      return;
    }
    const crawlers = [];
    for (let i = 0; i < replicasOf(crawlerWorkload); ++i) {
      const pod = await cluster.addPod(crawlerWorkload);
      pod.start();
      crawlers.push(pod);
    }
    for (const pod of crawlers) await waitReady(pod);
    log(`${cluster.pods.length} pods ready`);

    // The CronJob's pod.
    const job = await cluster.addPod(cron);
    job.start();
    const coordinatorPort = cluster.serviceAddress("hubcensus-coordinator", 7001);
    const tokenFile = path.join(job.root, "/etc/hubcensus/admin-token/token");

    // Remove a crawler mid-crawl: SIGTERM (Kubernetes' way), then another with SIGKILL; the
    // Deployment starts a replacement each time.
    async function removeCrawlerMidCrawl(signal, afterPages) {
      const deadline = Date.now() + 120000;
      let status;
      for (;;) {
        status = crawlStatus(coordinatorPort, tokenFile, clientTls);
        if (status.state && status.state !== "RUNNING") {
          fail(`the crawl reached ${status.state} before a crawler could be removed with ${
              signal}: raise --repos\n${status.raw}`);
        }
        if (status.state === "RUNNING" && status.pages >= afterPages) break;
        if (job.exited) fail(`crawl start exited (${job.exitCode}) early:\n${job.tail()}`);
        if (Date.now() > deadline) fail(`the crawl made no progress:\n${status.raw}`);
        await sleep(100);
      }
      const victim = cluster.pods.find((p) => p.workload === crawlerWorkload && !p.exited);
      log(`crawl at ${status.pages} pages: removing ${victim.name} with ${signal}`);
      const replacement = await cluster.addPod(crawlerWorkload);
      let result;
      if (signal === "SIGTERM") {
        result = await victim.terminate();
        if (result.code !== 0) {
          fail(`${victim.name} did not exit 0 after SIGTERM within its grace period (code ${
              result.code}, signal ${result.signal}):\n${victim.tail()}`);
        }
      } else {
        victim.kill("SIGKILL");
        result = await victim.done;
      }
      log(`${victim.name} gone (code ${result.code}, signal ${result.signal}); ` +
          `replacement ${replacement.name}`);
      replacement.start();
      await waitReady(replacement);
      return status.pages;
    }
    const pagesAtTerm = await removeCrawlerMidCrawl("SIGTERM", 3);
    await removeCrawlerMidCrawl("SIGKILL", pagesAtTerm + 3);

    const jobResult = await Promise.race([job.done, sleep(240000).then(() => null)]);
    if (!jobResult) fail(`crawl start --wait did not finish:\n${job.tail()}`);
    if (jobResult.code !== 0) fail(`the CronJob's command exited ${jobResult.code}:\n${job.tail()}`);
    const final = crawlStatus(coordinatorPort, tokenFile, clientTls);
    if (final.state !== "COMMITTED") fail(`crawl not committed:\n${final.raw}`);
    log(`crawl committed:\n${final.raw}`);

    // The committed census against fakehub's ground truth.
    const fakehubPort = cluster.serviceAddress("hubcensus-fakehub", 8080);
    const truthResponse = await fetch(
        `http://127.0.0.1:${fakehubPort}/_sim/truth?date=${FAKEHUB_OVERRIDES.date}`);
    if (!truthResponse.ok) fail(`fakehub truth: HTTP ${truthResponse.status}`);
    const truth = await truthResponse.json();
    const aggregatorPort = cluster.serviceAddress("hubcensus-aggregator", 7003);
    const census = run(["query", "families", `--aggregator=127.0.0.1:${aggregatorPort}`,
                        "--format=json", ...clientTls]);
    if (census.code !== 0) fail(`query families: ${census.out}`);
    const diffs = diffFigures(censusFigures(JSON.parse(census.stdout)),
                              censusFigures(truth.families));
    if (diffs.length) fail(`census differs from fakehub's truth:\n  ${diffs.slice(0, 40).join("\n  ")}`);
    // The monthly new-derivative shares over the months the truth covers.
    const months = (truth.shares?.months ?? []).map((m) => m.month);
    if (!months.length) fail("fakehub's truth has no monthly shares");
    const shares = run(["query", "shares", `--aggregator=127.0.0.1:${aggregatorPort}`,
                        `--from=${months[0]}`, `--to=${months[months.length - 1]}`,
                        "--format=json", ...clientTls]);
    if (shares.code !== 0) fail(`query shares: ${shares.out}`);
    const byMonth = (j) => Object.fromEntries((j.months ?? []).map(({ month, ...rest }) =>
        [month, rest]));
    const shareDiffs = diffFigures(byMonth(JSON.parse(shares.stdout)), byMonth(truth.shares));
    if (shareDiffs.length) {
      fail(`shares differ from fakehub's truth:\n  ${shareDiffs.slice(0, 40).join("\n  ")}`);
    }
    log(`census equals fakehub's truth for ${
        Object.keys(censusFigures(truth.families).families).length} families, ${
        Object.keys(censusFigures(truth.families).regions).length} regions and ${
        months.length} months of shares`);

    // SIGTERM every remaining pod, as a rollout would; each should exit cleanly.
    await terminateRoles(cluster);

    // No Secret value in any log line of the whole crawl.
    checkNoSecretInLogs(cluster, secrets);
    ok = true;
  } finally {
    cluster.stopAll();
    if (ok && !args.keep) fs.rmSync(root, { recursive: true, force: true });
    else log(`logs kept in ${root}/logs`);
  }
}

main().then(() => process.exit(0)).catch((e) => {
  if (!/REHEARSAL FAILED/.test(String(e))) console.error(e.stack ?? String(e));
  process.exit(1);
});
