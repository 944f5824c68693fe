// Shared by the deploy tests: render kustomize overlays, read the hubcensus binary's flags and
// walk the workloads of a rendered manifest.
import { execFileSync, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

export function loadNodeTool(toolsDir, name) {
  const require = createRequire(path.join(toolsDir, "package.json"));
  try {
    return require.resolve(name);
  } catch {
    throw new Error(
      `${name} is not installed in ${toolsDir}: run scripts/setup-test-tools <build folder>`);
  }
}

export async function importNodeTool(toolsDir, specifier) {
  const require = createRequire(path.join(toolsDir, "package.json"));
  let resolved;
  try {
    resolved = require.resolve(specifier);
  } catch {
    // ESM-only packages: resolve through node_modules directly.
    resolved = path.join(toolsDir, "node_modules", specifier);
    if (!fs.existsSync(resolved) && !fs.existsSync(resolved + ".js")) {
      throw new Error(`${specifier} is not installed in ${toolsDir}: run ` +
                      "scripts/setup-test-tools <build folder>");
    }
  }
  return import(resolved);
}

export function kubectl() {
  const which = spawnSync("sh", ["-c", "command -v kubectl"], { encoding: "utf8" });
  if (which.status !== 0) {
    throw new Error("kubectl is not on PATH (it renders the kustomize overlays offline)");
  }
  return which.stdout.trim();
}

// `kubectl kustomize DIR` -> the rendered YAML text.
export function render(dir) {
  const result = spawnSync(kubectl(), ["kustomize", dir], { encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(`kubectl kustomize ${dir} failed: ${result.stderr}`);
  }
  return result.stdout;
}

export function parseAll(YAML, text) {
  return YAML.parseAllDocuments(text).map((d) => {
    if (d.errors.length) throw new Error(`YAML: ${d.errors[0].message}`);
    return d.toJSON();
  }).filter((o) => o != null);
}

// The pod spec and labels of any workload kind, or null.
export function podTemplate(obj) {
  switch (obj.kind) {
    case "Deployment":
    case "StatefulSet":
    case "DaemonSet":
    case "ReplicaSet":
      return obj.spec.template;
    case "Job":
      return obj.spec.template;
    case "CronJob":
      return obj.spec.jobTemplate.spec.template;
    case "Pod":
      return { metadata: obj.metadata, spec: obj.spec };
    default:
      return null;
  }
}

export function replicasOf(obj) {
  if (obj.kind === "Deployment" || obj.kind === "StatefulSet") return obj.spec.replicas ?? 1;
  return 1;
}

// `hubcensus <words> --help` -> Map(flag name -> {bool}), or throws with the output.
const helpCache = new Map();
export function binaryFlags(binary, words) {
  const key = words.join(" ");
  if (helpCache.has(key)) return helpCache.get(key);
  const result = spawnSync(binary, [...words, "--help"], { encoding: "utf8", timeout: 30000 });
  const out = `${result.stdout}${result.stderr}`;
  if (result.status !== 0) {
    throw new Error(`\`hubcensus ${key} --help\` exited ${result.status}: ${out.trim()}`);
  }
  const flags = new Map();
  for (const line of out.split("\n")) {
    const m = /^  --([A-Za-z0-9_]+)(=VALUE)?(\s|$)/.exec(line);
    if (m) flags.set(m[1], { bool: !m[2] });
  }
  if (flags.size === 0) {
    throw new Error(`\`hubcensus ${key} --help\` lists no flags: ${out.trim()}`);
  }
  const entry = { flags, placeholder: /not available yet/i.test(out), help: out };
  helpCache.set(key, entry);
  return entry;
}

// The top-level subcommands, from `hubcensus help`.
export function binarySubcommands(binary) {
  const out = execFileSync(binary, ["help"], { encoding: "utf8" });
  const names = new Set();
  let inCommands = false;
  for (const line of out.split("\n")) {
    if (/^commands:/.test(line)) inCommands = true;
    else if (inCommands) {
      const m = /^  ([a-z][a-z0-9-]*)\s/.exec(line);
      if (m) names.add(m[1]);
      else if (line.trim() === "") inCommands = false;
    }
  }
  return names;
}

// Splits a container's argv (command + args, image ENTRYPOINT hubcensus) into the subcommand
// words (before the first flag) and the flags: [{name, value|null, raw}].
export function splitArgv(container) {
  const argv = [...(container.command ?? []), ...(container.args ?? [])];
  if (argv.length && /(^|\/)hubcensus$/.test(argv[0])) argv.shift();
  const words = [];
  const flags = [];
  let i = 0;
  for (; i < argv.length && !argv[i].startsWith("-"); ++i) words.push(argv[i]);
  const positional = [];
  for (; i < argv.length; ++i) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    flags.push(eq < 0 ? { name: a.slice(2), value: null, raw: a }
                      : { name: a.slice(2, eq), value: a.slice(eq + 1), raw: a });
  }
  return { argv, words, flags, positional };
}

export function flagValue(flags, name) {
  const f = flags.find((x) => x.name === name);
  return f ? f.value : undefined;
}

// Ports the process listens on, from its flags:
// {port -> "grpc"|"ingest"|"metrics"|"health"|"http"}. "ingest" is the aggregator's
// --ingest_listen (SnapshotStore only; it serves grpc.health.v1 too).
export function listeningPorts(words, flags) {
  const ports = new Map();
  // --listen=HOST:PORT (gRPC servers; fakehub accepts HOST with --port=PORT).
  const listen = flagValue(flags, "listen");
  if (listen) {
    const m = /:(\d+)$/.exec(listen);
    if (m) ports.set(Number(m[1]), words[0] === "fakehub" ? "http" : "grpc");
  }
  const ingest = flagValue(flags, "ingest_listen");
  if (ingest) {
    const m = /:(\d+)$/.exec(ingest);
    if (m) ports.set(Number(m[1]), "ingest");
  }
  const port = flagValue(flags, "port");
  if (port && words[0] === "fakehub") ports.set(Number(port), "http");
  const metrics = flagValue(flags, "metrics_port");
  if (metrics && Number(metrics) > 0) ports.set(Number(metrics), "metrics");
  const health = flagValue(flags, "health_port");
  if (health && Number(health) > 0) ports.set(Number(health), "health");
  return ports;
}

// A probe's or Service's port: a number, or a container port name.
export function resolvePort(port, container) {
  if (typeof port === "number") return port;
  if (/^\d+$/.test(String(port))) return Number(port);
  const named = (container.ports ?? []).find((p) => p.name === port);
  return named ? named.containerPort : undefined;
}

export function selects(selector, labels) {
  if (!selector) return false;
  return Object.entries(selector).every(([k, v]) => (labels ?? {})[k] === v);
}
