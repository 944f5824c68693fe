// The deploy tests (ctest prefix Deploy): render every overlay, validate each object against the
// Kubernetes schemas offline, check that the manifests agree with the hubcensus binary, the
// Dockerfile with scripts/setup, and the families copy with config/.
//
//   node deploy_check.mjs <render|validate|consistency|broken-flag|broken-port|
//                          broken-ingest-policy|broken-worker-token|image|families>
//        --source=DIR --tools=DIR [--binary=PATH] [--deploy=DIR]
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  binaryFlags, binarySubcommands, flagValue, importNodeTool, listeningPorts, parseAll,
  podTemplate, render, resolvePort, selects, splitArgv,
} from "./manifests.mjs";

const OVERLAYS = ["dev", "prod"];

function parseArgs(argv) {
  const out = { _: [] };
  for (const a of argv) {
    const m = /^--([a-z_]+)=(.*)$/.exec(a);
    if (m) out[m[1]] = m[2];
    else out._.push(a);
  }
  for (const k of ["source", "tools", "binary", "deploy"]) if (out[k]) out[k] = path.resolve(out[k]);
  return out;
}

class Problems {
  constructor() { this.list = []; }
  add(where, what) { this.list.push(`${where}: ${what}`); }
  exitIfAny(label) {
    if (this.list.length) {
      console.error(`${label}: ${this.list.length} problem(s)`);
      for (const p of this.list) console.error(`  - ${p}`);
      process.exit(1);
    }
  }
}

function where(overlay, obj, container) {
  return `${overlay}/${obj.kind}/${obj.metadata?.name}${container ? `/${container.name}` : ""}`;
}

async function loadYaml(tools) {
  return (await importNodeTool(tools, "yaml/dist/index.js")).default ??
      (await importNodeTool(tools, "yaml/dist/index.js"));
}

async function renderOverlays(deploy, YAML) {
  const rendered = {};
  for (const overlay of OVERLAYS) {
    rendered[overlay] = parseAll(YAML, render(path.join(deploy, "overlays", overlay)));
  }
  return rendered;
}

// --- render: the overlays render, and hold the objects the design needs -----------------------
function checkShape(rendered, source, problems) {
  const families = fs.readFileSync(path.join(source, "config/families.textproto"), "utf8");
  for (const [overlay, objs] of Object.entries(rendered)) {
    const find = (kind, name) => objs.find((o) => o.kind === kind && o.metadata.name === name);
    const coord = find("Deployment", "hubcensus-coordinator");
    if (!coord) problems.add(overlay, "no Deployment hubcensus-coordinator");
    else {
      if (coord.spec.replicas !== 1) problems.add(overlay, "coordinator replicas must be 1");
      if (coord.spec.strategy?.type !== "Recreate") {
        problems.add(overlay, "coordinator strategy must be Recreate (one RocksDB owner)");
      }
      const claim = (coord.spec.template.spec.volumes ?? []).find((v) => v.persistentVolumeClaim);
      if (!claim || !find("PersistentVolumeClaim", claim.persistentVolumeClaim.claimName)) {
        problems.add(overlay, "coordinator has no PersistentVolumeClaim of its own");
      }
    }
    const crawler = find("Deployment", "hubcensus-crawler");
    if (!crawler) problems.add(overlay, "no Deployment hubcensus-crawler");
    else if (!(crawler.spec.replicas >= 2)) problems.add(overlay, "crawler replicas below 2");
    const pdb = objs.find((o) => o.kind === "PodDisruptionBudget" &&
                                 crawler && selects(o.spec.selector.matchLabels,
                                                    crawler.spec.template.metadata.labels));
    if (!pdb) problems.add(overlay, "no PodDisruptionBudget selects the crawlers");
    const agg = find("StatefulSet", "hubcensus-aggregator");
    if (!agg) problems.add(overlay, "no StatefulSet hubcensus-aggregator");
    else if (!(agg.spec.volumeClaimTemplates ?? []).length) {
      problems.add(overlay, "aggregator has no volumeClaimTemplates");
    }
    const cron = objs.find((o) => o.kind === "CronJob");
    if (!cron) problems.add(overlay, "no CronJob");
    else {
      if (cron.spec.concurrencyPolicy !== "Forbid") {
        problems.add(overlay, "CronJob concurrencyPolicy must be Forbid");
      }
      const c = cron.spec.jobTemplate.spec.template.spec.containers[0];
      const { words, flags } = splitArgv(c);
      if (words.join(" ") !== "crawl start" || flagValue(flags, "date") !== "today" ||
          !flags.some((f) => f.name === "wait")) {
        problems.add(overlay, `CronJob must run crawl start --date=today --wait, runs ${
            [...words, ...flags.map((f) => f.raw)].join(" ")}`);
      }
    }
    const cm = objs.find((o) => o.kind === "ConfigMap" &&
                                o.metadata.name.startsWith("hubcensus-families"));
    if (!cm) problems.add(overlay, "no hubcensus-families ConfigMap");
    else if (cm.data?.["families.textproto"] !== families) {
      problems.add(overlay, "the families ConfigMap differs from config/families.textproto");
    }
    if (!objs.some((o) => o.kind === "NetworkPolicy")) problems.add(overlay, "no NetworkPolicy");
    for (const obj of objs) {
      const tpl = podTemplate(obj);
      if (!tpl) continue;
      const ann = tpl.metadata?.annotations ?? {};
      const pod = tpl.spec;
      for (const c of pod.containers) {
        const { words, flags } = splitArgv(c);
        const ports = listeningPorts(words, flags);
        const metrics = [...ports].find(([, kind]) => kind === "metrics");
        if (metrics && (ann["prometheus.io/scrape"] !== "true" ||
                        Number(ann["prometheus.io/port"]) !== metrics[0])) {
          problems.add(where(overlay, obj, c),
                       `serves metrics on ${metrics[0]} but prometheus.io annotations disagree`);
        }
        if (!c.resources?.requests || !c.resources?.limits) {
          problems.add(where(overlay, obj, c), "resource requests and limits are required");
        }
        const sc = c.securityContext ?? {};
        if (sc.readOnlyRootFilesystem !== true) {
          problems.add(where(overlay, obj, c), "readOnlyRootFilesystem must be true");
        }
        if (sc.allowPrivilegeEscalation !== false) {
          problems.add(where(overlay, obj, c), "allowPrivilegeEscalation must be false");
        }
      }
      if (pod.securityContext?.runAsNonRoot !== true) {
        problems.add(where(overlay, obj), "pod securityContext.runAsNonRoot must be true");
      }
      // Secret files are root-owned: the non-root user reads them through fsGroup.
      for (const v of pod.volumes ?? []) {
        if (!v.secret) continue;
        const mode = v.secret.defaultMode ?? 0o644;
        if (!(mode & 0o004) && !((mode & 0o040) && pod.securityContext?.fsGroup != null)) {
          problems.add(where(overlay, obj), `secret volume ${v.name} (mode ${
              mode.toString(8)}) is unreadable by the non-root user`);
        }
      }
    }
  }
}

// --- validate: every object against the Kubernetes OpenAPI schemas (kubernetes-models) --------
async function knownFieldNames(tools) {
  // kubernetes-models ships compiled validators that accept unknown fields; the union of every
  // property any schema names catches misspelt keys (readinesProbe, replicass).
  const names = new Set();
  for (const dir of ["kubernetes-models/_schemas", "@kubernetes-models/apimachinery/_schemas"]) {
    const full = path.join(tools, "node_modules", dir);
    for (const f of fs.readdirSync(full)) {
      if (!f.endsWith(".js")) continue;
      const text = fs.readFileSync(path.join(full, f), "utf8");
      for (const m of text.matchAll(/data\.([A-Za-z_$][A-Za-z0-9_$]*)/g)) names.add(m[1]);
      for (const m of text.matchAll(/missingProperty:"([^"]+)"/g)) names.add(m[1]);
      for (const m of text.matchAll(/data\["([^"]+)"\]/g)) names.add(m[1]);
    }
  }
  return names;
}

// Keys under these are user data (labels, ConfigMap data, quantities), not schema fields.
const FREE_FORM = new Set(["labels", "annotations", "data", "stringData", "binaryData",
                           "matchLabels", "requests", "limits", "nodeSelector", "selector"]);

function unknownKeys(value, known, trail, out) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => unknownKeys(v, known, `${trail}[${i}]`, out));
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (!known.has(k)) out.push(`${trail}.${k}`);
      // Service spec.selector is free-form; a LabelSelector's is {matchLabels, ...}.
      if (FREE_FORM.has(k) && !(k === "selector" && v && (v.matchLabels || v.matchExpressions))) {
        continue;
      }
      unknownKeys(v, known, `${trail}.${k}`, out);
    }
  }
}

async function validateObjects(rendered, tools, problems) {
  const known = await knownFieldNames(tools);
  let count = 0;
  for (const [overlay, objs] of Object.entries(rendered)) {
    for (const obj of objs) {
      const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/")
                                                            : ["", obj.apiVersion];
      const modulePath = `kubernetes-models/${group ? `${group}/` : ""}${version}/${obj.kind}.js`;
      let Model;
      try {
        const mod = await importNodeTool(tools, modulePath);
        Model = mod[obj.kind];
      } catch {
        problems.add(where(overlay, obj), `no schema for ${obj.apiVersion} ${obj.kind}`);
        continue;
      }
      try {
        new Model(obj).validate();
      } catch (e) {
        problems.add(where(overlay, obj), `schema: ${e.message}`);
      }
      const unknown = [];
      unknownKeys(obj, known, "", unknown);
      for (const u of unknown) problems.add(where(overlay, obj), `unknown field ${u}`);
      ++count;
    }
  }
  return count;
}

// --- consistency: the manifests against the binary --------------------------------------------
const SERVERS = new Set(["coordinator", "aggregator"]);
const GRPC_CLIENTS = new Set(["crawler", "crawl"]);

function checkConsistency(rendered, binary, problems) {
  const subcommands = binarySubcommands(binary);
  let containers = 0;
  for (const [overlay, objs] of Object.entries(rendered)) {
    const services = objs.filter((o) => o.kind === "Service");
    const podsOf = []; // {obj, tpl, container, ports}
    for (const obj of objs) {
      const tpl = podTemplate(obj);
      if (!tpl) continue;
      for (const c of [...(tpl.spec.initContainers ?? []), ...tpl.spec.containers]) {
        ++containers;
        const at = where(overlay, obj, c);
        const { words, flags, positional } = splitArgv(c);
        if (!words.length || !subcommands.has(words[0])) {
          problems.add(at, `"${words[0] ?? ""}" is not a hubcensus subcommand (${
              [...subcommands].join(", ")})`);
          continue;
        }
        let help;
        try {
          help = binaryFlags(binary, words);
        } catch (e) {
          problems.add(at, e.message);
          continue;
        }
        if (positional.length) problems.add(at, `stray arguments ${positional.join(" ")}`);
        const env = new Set((c.env ?? []).map((e) => e.name));
        for (const f of flags) {
          const spec = help.flags.get(f.name);
          if (!spec) {
            problems.add(at, `\`hubcensus ${words.join(" ")}\` has no flag --${f.name}${
                help.placeholder ? " (that subcommand is still a placeholder)" : ""}`);
            continue;
          }
          if (!spec.bool && f.value === null) {
            problems.add(at, `--${f.name} takes a value: write --${f.name}=VALUE`);
          }
          for (const ref of (f.value ?? "").matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
            if (!env.has(ref[1])) problems.add(at, `--${f.name} uses $(${ref[1]}), not in env`);
          }
        }
        const ports = listeningPorts(words, flags);
        const pod = { obj, tpl, c, ports, dials: [] };
        podsOf.push(pod);
        for (const p of c.ports ?? []) {
          if (!ports.has(p.containerPort)) {
            problems.add(at, `containerPort ${p.containerPort} (${p.name}) is not a port the ` +
                             `process listens on (${[...ports.keys()].join(", ") || "none"})`);
          }
        }
        for (const kind of ["livenessProbe", "readinessProbe", "startupProbe"]) {
          const probe = c[kind];
          if (!probe) continue;
          const [mech, spec] = ["grpc", "httpGet", "tcpSocket", "exec"]
              .filter((m) => probe[m]).map((m) => [m, probe[m]])[0] ?? [];
          if (mech === "exec" || !mech) continue;
          const port = resolvePort(spec.port, c);
          const kindOf = ports.get(port);
          if (!kindOf) {
            problems.add(at, `${kind} port ${spec.port} is not a port the process listens on (${
                [...ports.keys()].join(", ") || "none"})`);
          } else if (mech === "grpc" && !["grpc", "ingest", "health"].includes(kindOf)) {
            problems.add(at, `${kind} is a gRPC probe on the ${kindOf} port ${port}`);
          } else if (mech === "httpGet" && kindOf !== "metrics" && kindOf !== "http") {
            problems.add(at, `${kind} is an HTTP probe on the gRPC port ${port}`);
          } else if (mech === "grpc" && (kindOf === "grpc" || kindOf === "ingest") &&
                     flagValue(flags, "tls_cert")) {
            problems.add(at, `${kind}: kubelet's gRPC probe cannot speak TLS; probe --health_port`);
          }
        }
        // Addresses of other Services: host:port or http(s)://host:port/... must name a Service
        // port in this overlay.
        for (const f of flags) {
          const m = /^(?:https?:\/\/)?([a-z0-9-]+):(\d+)(?:\/.*)?$/.exec(f.value ?? "");
          if (!m || m[1] === "0.0.0.0" || m[1] === "localhost") continue;
          const svc = services.find((s) => s.metadata.name === m[1]);
          if (!svc) problems.add(at, `--${f.name}=${f.value} names no Service in ${overlay}`);
          else if (!svc.spec.ports.some((p) => p.port === Number(m[2]))) {
            problems.add(at, `--${f.name}=${f.value}: Service ${m[1]} has no port ${m[2]}`);
          } else {
            pod.dials.push({ service: svc, port: Number(m[2]) });
          }
        }
        if (overlay === "prod") checkProdSecurity(at, words, flags, problems);
        checkTokenFilesFromSecrets(at, tpl, c, flags, problems);
      }
    }
    for (const svc of services) {
      const backends = podsOf.filter((p) => selects(svc.spec.selector, p.tpl.metadata.labels));
      if (!backends.length) {
        problems.add(where(overlay, svc), "selects no pod");
        continue;
      }
      for (const sp of svc.spec.ports) {
        for (const b of backends) {
          const target = resolvePort(sp.targetPort ?? sp.port, b.c);
          if (!b.ports.has(target)) {
            problems.add(where(overlay, svc), `targetPort ${sp.targetPort} of port ${sp.port} is ` +
                         `not a port ${b.obj.metadata.name} listens on`);
          }
        }
      }
    }
    for (const np of objs.filter((o) => o.kind === "NetworkPolicy")) {
      const selected = podsOf.filter((p) => selects(np.spec.podSelector.matchLabels,
                                                    p.tpl.metadata.labels));
      for (const rule of np.spec.ingress ?? []) {
        for (const port of rule.ports ?? []) {
          for (const b of selected) {
            const n = resolvePort(port.port, b.c);
            if (n !== undefined && !b.ports.has(n) && typeof port.port === "number") {
              problems.add(where(overlay, np), `ingress port ${port.port} is not a port ${
                  b.obj.metadata.name} listens on`);
            }
          }
        }
      }
    }
    checkIngestPolicies(overlay, objs, podsOf, problems);
  }
  return containers;
}

// The aggregator's ingest port (--ingest_listen) is for the workloads that dial it (their
// --store=SERVICE:PORT reaches it): NetworkPolicies must admit exactly those, from this namespace,
// and let them out to it. A Census client, another namespace or an address block admitted to
// the ingest port is a mistake.
function checkIngestPolicies(overlay, objs, podsOf, problems) {
  const policies = objs.filter((o) => o.kind === "NetworkPolicy");
  const labelsOf = (p) => p.tpl.metadata.labels ?? {};
  const selectsPod = (selector, p) => selects(selector?.matchLabels ?? {}, labelsOf(p));
  const covers = (rule, target, port) => !(rule.ports ?? []).length ||
      rule.ports.some((x) => resolvePort(x.port, target.c) === port);
  const describe = (peer) => JSON.stringify(peer);
  for (const server of podsOf) {
    for (const [port, kind] of server.ports) {
      if (kind !== "ingest") continue;
      const at = `${where(overlay, server.obj)}: ingest port ${port}`;
      const dialers = podsOf.filter((p) => p.dials.some(({ service, port: sp }) => {
        const spec = service.spec.ports.find((x) => x.port === sp);
        return selects(service.spec.selector, labelsOf(server)) &&
            resolvePort(spec.targetPort ?? spec.port, server.c) === port;
      }));
      if (!dialers.length) problems.add(at, "no workload dials it (--store=SERVICE:PORT)");
      const ingressPolicies = policies.filter(
          (np) => selectsPod(np.spec.podSelector, server) &&
                  (np.spec.policyTypes ?? ["Ingress"]).includes("Ingress"));
      const admitted = new Set();
      for (const np of ingressPolicies) {
        for (const rule of np.spec.ingress ?? []) {
          if (!covers(rule, server, port)) continue;
          if (!(rule.from ?? []).length) {
            problems.add(at, `NetworkPolicy ${np.metadata.name} admits every source`);
            continue;
          }
          for (const peer of rule.from) {
            if (peer.ipBlock || peer.namespaceSelector || !peer.podSelector) {
              problems.add(at, `NetworkPolicy ${np.metadata.name} admits ${describe(peer)}: ` +
                           "only pods of this namespace that dial it may reach it");
              continue;
            }
            const selected = podsOf.filter((p) => selectsPod(peer.podSelector, p));
            const outsiders = selected.filter((p) => !dialers.includes(p));
            if (!selected.length || outsiders.length) {
              const names = (list) => list.map((p) => p.obj.metadata.name).join(", ");
              problems.add(at, `NetworkPolicy ${np.metadata.name} admits ${describe(peer)}, which ${
                  selected.length ? `selects ${names(outsiders)}`
                                  : "selects no workload of the overlay"} (it is dialed only by ${
                  names(dialers)})`);
            }
            for (const p of selected) admitted.add(p);
          }
        }
      }
      for (const d of dialers) {
        const name = d.obj.metadata.name;
        if (ingressPolicies.length && !admitted.has(d)) {
          problems.add(at, `${name} dials it but no NetworkPolicy admits ${name}`);
        }
        const egressPolicies = policies.filter((np) => selectsPod(np.spec.podSelector, d) &&
                                               (np.spec.policyTypes ?? []).includes("Egress"));
        const out = egressPolicies.some((np) => (np.spec.egress ?? []).some((rule) =>
            covers(rule, server, port) &&
            (!(rule.to ?? []).length || rule.to.some((peer) => peer.podSelector && !peer.ipBlock &&
                                                           selectsPod(peer.podSelector, server)))));
        if (egressPolicies.length && !out) {
          problems.add(at, `${name} dials it but its NetworkPolicies do not let it out to ${port}`);
        }
      }
    }
  }
}

function checkProdSecurity(at, words, flags, problems) {
  const has = (n) => flags.some((f) => f.name === n);
  if (SERVERS.has(words[0])) {
    for (const n of ["tls_cert", "tls_key", "tls_ca", "tls_require_client_cert", "health_port"]) {
      if (!has(n)) problems.add(at, `prod requires --${n} on every gRPC server`);
    }
  }
  if (GRPC_CLIENTS.has(words[0]) || words[0] === "coordinator") {
    for (const n of ["tls_ca", "tls_cert", "tls_key"]) {
      if (!has(n)) problems.add(at, `prod requires --${n} on every gRPC client (mTLS)`);
    }
  }
  if (words[0] === "coordinator" || words.join(" ") === "crawl start") {
    if (!has("admin_token_file")) problems.add(at, "prod requires --admin_token_file");
  }
  // Worker RPCs and store ingest: every role on either side of them carries the worker token.
  if (["coordinator", "aggregator", "crawler"].includes(words[0])) {
    if (!has("worker_token_file")) problems.add(at, "prod requires --worker_token_file");
  }
}

// Every *_file flag of a token (admin, worker, Hub) reads a file mounted from a Secret, never
// from the image or an emptyDir: the value must come from the operator.
function checkTokenFilesFromSecrets(at, tpl, c, flags, problems) {
  for (const f of flags) {
    if (!/token_file$/.test(f.name) || !f.value) continue;
    const mount = (c.volumeMounts ?? []).find((m) => f.value.startsWith(m.mountPath + "/"));
    const volume = mount && (tpl.spec.volumes ?? []).find((v) => v.name === mount.name);
    if (!volume?.secret?.secretName) {
      problems.add(at, `--${f.name}=${f.value} is not in a volume mounted from a Secret`);
    }
  }
}

// A copy of deploy/ with one deliberate mistake: the consistency check must catch it.
function brokenCopy(deploy, edit, file = "base/coordinator.yaml") {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hubcensus-deploy-broken-"));
  fs.cpSync(deploy, dir, { recursive: true });
  const target = path.join(dir, file);
  const before = fs.readFileSync(target, "utf8");
  const after = edit(before);
  if (after === before) throw new Error(`the deliberate mistake did not apply to ${file}`);
  fs.writeFileSync(target, after);
  return dir;
}

// --- image: the Dockerfile's package lists --------------------------------------------------
function bashArray(text, name) {
  const m = new RegExp(`^${name}=\\(([^)]*)\\)`, "m").exec(text);
  if (!m) throw new Error(`no ${name}=( ... ) in scripts/setup`);
  return m[1].split(/\s+/).filter(Boolean);
}

function dockerStages(text) {
  const stages = [];
  let current = null;
  const joined = text.replace(/\\\n/g, " ");
  for (const line of joined.split("\n")) {
    if (/^FROM\s/i.test(line)) {
      current = { from: line.trim(), packages: [], lines: [] };
      stages.push(current);
    } else if (current) {
      current.lines.push(line);
      const m = /apt-get install\s+(.*?)(&&|$)/.exec(line);
      if (m) {
        current.packages.push(...m[1].split(/\s+/).filter((w) => w && !w.startsWith("-")));
      }
    }
  }
  return stages;
}

function checkImage(source, binary, problems, dockerfile = null) {
  const setup = bashArray(fs.readFileSync(path.join(source, "scripts/setup"), "utf8"), "PACKAGES");
  dockerfile ??= fs.readFileSync(path.join(source, "deploy/Dockerfile"), "utf8");
  const stages = dockerStages(dockerfile);
  if (stages.length !== 2) problems.add("Dockerfile", `expected 2 stages, found ${stages.length}`);
  const [build, runtime] = stages;
  if (!/^FROM debian:12(\s|$)/.test(build?.from ?? "")) {
    problems.add("Dockerfile", "the build stage must be FROM debian:12");
  }
  if (!/^FROM debian:12(-slim)?(\s|$)/.test(runtime?.from ?? "")) {
    problems.add("Dockerfile", "the runtime stage must be FROM debian:12 or debian:12-slim");
  }
  const a = [...(build?.packages ?? [])].sort().join(" ");
  const b = [...setup].sort().join(" ");
  if (a !== b) {
    problems.add("Dockerfile", `build-stage packages differ from scripts/setup:\n    only in ` +
                 `Dockerfile: ${build.packages.filter((p) => !setup.includes(p)).join(" ")}\n` +
                 `    only in scripts/setup: ${setup.filter((p) => !build.packages.includes(p))
                                                      .join(" ")}`);
  }
  const runtimeText = runtime?.lines.join("\n") ?? "";
  if (!/^USER\s+\d+(:\d+)?\s*$/m.test(runtimeText)) {
    problems.add("Dockerfile", "the runtime stage needs a numeric non-root USER");
  } else if (/^USER\s+0\b/m.test(runtimeText)) {
    problems.add("Dockerfile", "USER 0 is root");
  }
  if (!/^ENTRYPOINT\s+\["[^"]*hubcensus"\]/m.test(runtimeText)) {
    problems.add("Dockerfile", "ENTRYPOINT must be the hubcensus binary");
  }
  if ((runtime?.packages ?? []).some((p) => p.endsWith("-dev") || p === "build-essential")) {
    problems.add("Dockerfile", "the runtime stage installs build packages");
  }
  // Every shared library the built binary loads must come from a runtime package or the base
  // image (packages of priority required).
  const ldd = spawnSync("ldd", [binary], { encoding: "utf8" });
  if (ldd.status !== 0) {
    problems.add("ldd", `cannot read ${binary}: ${ldd.stderr}`);
    return 0;
  }
  // The binary's own NEEDED entries: what they need in turn comes with apt's dependencies.
  const dynamic = spawnSync("objdump", ["-p", binary], { encoding: "utf8" });
  if (dynamic.status !== 0) {
    problems.add("objdump", `cannot read ${binary}: ${dynamic.stderr}`);
    return 0;
  }
  const needed = new Set([...dynamic.stdout.matchAll(/^\s*NEEDED\s+(\S+)/gm)].map((m) => m[1]));
  const resolved = new Map([...ldd.stdout.matchAll(/^\s*(\S+)\s+=>\s+(\/\S+)/gm)]
                               .map((m) => [m[1], m[2]]));
  // The dynamic linker itself (NEEDED by a binary with static archives that use
  // __tls_get_addr): ldd prints its path alone.
  for (const m of ldd.stdout.matchAll(/^\s*(\/\S*\/(ld-linux[^/\s]*))\s+\(/gm)) {
    resolved.set(m[2], m[1]);
  }
  const libs = [];
  for (const name of needed) {
    if (!resolved.has(name)) problems.add("runtime", `${name} (NEEDED) is not found by ldd`);
    else libs.push(resolved.get(name));
  }
  const runtimePackages = new Set(runtime?.packages ?? []);
  for (const lib of libs) {
    // dpkg records one spelling of a path; with merged /usr, /lib and /usr/lib are the same.
    const real = fs.realpathSync(lib);
    const spellings = [...new Set([lib, real].flatMap((p) => [p, p.replace(/^\/usr\//, "/"),
                                                              p.replace(/^\/(lib|lib64)\//, "/usr/$1/")]))];
    let pkg = null;
    for (const p of spellings) {
      const owner = spawnSync("dpkg", ["-S", p], { encoding: "utf8" });
      if (owner.status === 0) {
        pkg = owner.stdout.split(":")[0].trim();
        break;
      }
    }
    if (!pkg) {
      problems.add("runtime", `${lib} belongs to no Debian package`);
      continue;
    }
    // libc6 and libgcc-s1 are in every Debian image (the essential packages depend on them).
    if (runtimePackages.has(pkg) || pkg === "libc6" || pkg === "libgcc-s1") continue;
    const prio = spawnSync("dpkg-query", ["-W", "-f=${Priority} ${Essential}", pkg],
                           { encoding: "utf8" });
    if (!/^required|\byes$/.test(prio.stdout.trim())) {
      problems.add("runtime", `${path.basename(lib)} comes from ${pkg}, which the runtime ` +
                   "stage does not install");
    }
  }
  return libs.length;
}

// --------------------------------------------------------------------------------------------
async function main() {
  const args = parseArgs(process.argv.slice(2));
  const [command] = args._;
  const source = args.source;
  const tools = args.tools;
  const deploy = args.deploy ?? path.join(source, "deploy");
  const problems = new Problems();
  const YAML = tools ? await loadYaml(tools) : null;

  switch (command) {
    case "render": {
      const rendered = await renderOverlays(deploy, YAML);
      checkShape(rendered, source, problems);
      problems.exitIfAny("DeployRender");
      for (const [o, objs] of Object.entries(rendered)) {
        console.log(`rendered ${o}: ${objs.length} objects (${
            [...new Set(objs.map((x) => x.kind))].join(", ")})`);
      }
      break;
    }
    case "validate": {
      const rendered = await renderOverlays(deploy, YAML);
      const n = await validateObjects(rendered, tools, problems);
      problems.exitIfAny("DeployValidate");
      console.log(`validated ${n} objects against the Kubernetes schemas`);
      break;
    }
    case "consistency": {
      const rendered = await renderOverlays(deploy, YAML);
      const n = checkConsistency(rendered, args.binary, problems);
      problems.exitIfAny("DeployConsistency");
      console.log(`${n} containers: subcommands, flags and ports agree with ${args.binary}`);
      break;
    }
    // Negative cases: a deliberately broken copy of deploy/ must fail the consistency check,
    // naming the mistake.
    case "broken-flag":
    case "broken-port":
    case "broken-ingest-policy": {
      // The flag goes into the coordinator; the probe port into the crawler's liveness probe
      // (prod moves the coordinator's probes to its health port, which would hide the mistake);
      // the ingest port into the aggregator's NetworkPolicy rule for Census clients.
      const dir = command === "broken-flag"
          ? brokenCopy(deploy, (t) => t.replace("- --lease_seconds=30",
                                                "- --lease_seconds=30\n            - --no_such_flag=1"))
          : command === "broken-port"
          ? brokenCopy(deploy, (t) => t.replace(/(livenessProbe:\n\s+httpGet:\n\s+path: \/metrics\n\s+port: )metrics/,
                                                "$17999"), "base/crawler.yaml")
          : brokenCopy(deploy, (t) => t.replace(
                /(hubcensus\.io\/census-client: "true"\n\s+ports:\n)(\s+)- protocol: TCP\n\s+port: 7003\n/,
                "$1$2- protocol: TCP\n$2  port: 7003\n$2- protocol: TCP\n$2  port: 7004\n"),
                       "base/networkpolicies.yaml");
      try {
        const rendered = await renderOverlays(dir, YAML);
        checkConsistency(rendered, args.binary, problems);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      const needle = command === "broken-flag" ? "--no_such_flag"
          : command === "broken-port" ? "port 7999" : "census-client";
      const caught = problems.list.filter((p) => p.includes(needle));
      if (caught.length < OVERLAYS.length) {
        console.error(`the consistency check missed the deliberate mistake (${needle}) in ` +
                      `${OVERLAYS.length - caught.length} overlay(s); it reported:\n  ` +
                      problems.list.join("\n  "));
        process.exit(1);
      }
      console.log(`caught the deliberate mistake in every overlay:\n  ${caught.join("\n  ")}`);
      break;
    }
    // prod without the worker token on the crawlers: the consistency check names the crawler.
    case "broken-worker-token": {
      const dir = brokenCopy(deploy, (t) => t.replace(
          "  - path: worker-token.yaml\n    target:\n      kind: Deployment\n" +
          "      name: hubcensus-crawler\n", ""), "overlays/prod/kustomization.yaml");
      try {
        checkConsistency(await renderOverlays(dir, YAML), args.binary, problems);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      const caught = problems.list.filter(
          (p) => p.includes("hubcensus-crawler") && p.includes("--worker_token_file"));
      if (!caught.length) {
        console.error("the consistency check missed the crawler without --worker_token_file in " +
                      `prod; it reported:\n  ${problems.list.join("\n  ")}`);
        process.exit(1);
      }
      console.log(`caught the missing worker token:\n  ${caught.join("\n  ")}`);
      break;
    }
    // The schema check rejects a wrong type and a misspelt field in a broken copy.
    case "broken-schema": {
      const dir = brokenCopy(deploy, (t) => t.replace("  replicas: 1\n", "  replicas: one\n")
                                          .replace("terminationGracePeriodSeconds:", "terminationGracePeriodSecond:"));
      try {
        await validateObjects(await renderOverlays(dir, YAML), tools, problems);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      const wrongType = problems.list.filter((p) => /replicas must be integer/.test(p));
      const misspelt = problems.list.filter((p) => /unknown field .*terminationGracePeriodSecond$/.test(p));
      if (wrongType.length < OVERLAYS.length || misspelt.length < OVERLAYS.length) {
        console.error(`the schema check missed a deliberate mistake; it reported:\n  ${
            problems.list.join("\n  ")}`);
        process.exit(1);
      }
      console.log(`caught both deliberate mistakes in every overlay:\n  ${
          [...wrongType, ...misspelt].join("\n  ")}`);
      break;
    }
    case "image": {
      const n = checkImage(source, args.binary, problems);
      problems.exitIfAny("DeployImage");
      console.log(`Dockerfile agrees with scripts/setup; the ${n} shared libraries ${
          args.binary} needs are in the runtime stage or the base image`);
      break;
    }
    // A Dockerfile missing a build package and a runtime library must fail the image check.
    case "broken-image": {
      const text = fs.readFileSync(path.join(source, "deploy/Dockerfile"), "utf8")
          .replace(" libsimdjson14", "").replace(" python3 ", " ");
      checkImage(source, args.binary, problems, text);
      const caught = [problems.list.some((p) => /only in scripts\/setup: python3/.test(p)),
                      problems.list.some((p) => /libsimdjson14, which the runtime stage/.test(p))];
      if (!caught.every(Boolean)) {
        console.error(`the image check missed a deliberate mistake; it reported:\n  ${
            problems.list.join("\n  ")}`);
        process.exit(1);
      }
      console.log(`caught both deliberate mistakes:\n  ${problems.list.join("\n  ")}`);
      break;
    }
    case "families": {
      const a = fs.readFileSync(path.join(source, "config/families.textproto"), "utf8");
      const b = fs.readFileSync(path.join(deploy, "base/families.textproto"), "utf8");
      if (a !== b) {
        console.error("deploy/base/families.textproto differs from config/families.textproto: " +
                      "run deploy/sync-families");
        process.exit(1);
      }
      console.log("deploy/base/families.textproto equals config/families.textproto");
      break;
    }
    default:
      console.error(`unknown command ${command}`);
      process.exit(2);
  }
}

main().catch((e) => {
  console.error(e.stack ?? String(e));
  process.exit(1);
});
