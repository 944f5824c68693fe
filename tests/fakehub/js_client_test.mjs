// The official Hugging Face JS client (@huggingface/hub listModels with hubUrl) lists a generated
// Hub of 25,000 repos from fakehub and must get every id exactly once.
//   node js_client_test.mjs HUBCENSUS_BINARY NODE_TOOLS_DIR
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { once } from "node:events";
import readline from "node:readline";
import path from "node:path";

const [binary, nodeToolsArg] = process.argv.slice(2);
const nodeTools = path.resolve(nodeToolsArg);
const require = createRequire(`${nodeTools}/package.json`);
let hub;
try {
  hub = require("@huggingface/hub");
} catch (e) {
  console.error(`@huggingface/hub is not installed in ${nodeTools}: run scripts/setup-test-tools`);
  process.exit(1);
}

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exitCode = 1;
}

const child = spawn(binary, ["fakehub", "--port=0", "--repos=25000", "--seed=11"], {
  stdio: ["ignore", "pipe", "inherit"],
});
const url = await new Promise((resolve, reject) => {
  const lines = readline.createInterface({ input: child.stdout });
  lines.on("line", (line) => {
    const m = line.match(/fakehub listening on (http:\/\/127\.0\.0\.1:\d+)/);
    if (m) resolve(m[1]);
  });
  child.on("exit", (code) => reject(new Error(`fakehub exited with ${code}`)));
  const timer = setTimeout(() => reject(new Error("fakehub did not start")), 60000);
  // Let the event loop end once started (or failed).
  const clear = () => clearTimeout(timer);
  child.once("exit", clear);
  lines.once("line", clear);
});

try {
  const expected = await (await fetch(`${url}/_sim/ids`)).json();
  if (expected.length < 24000) fail(`only ${expected.length} repos listed`);

  // The default order (trendingScore) and the crawler's (createdAt).
  for (const sort of [undefined, "createdAt"]) {
    const seen = new Map();
    let fields = 0;
    for await (const model of hub.listModels({ hubUrl: url, sort, additionalFields: ["tags"] })) {
      seen.set(model.name, (seen.get(model.name) ?? 0) + 1);
      if (typeof model.id === "string" && model.id.length === 24 && Array.isArray(model.tags) &&
          model.updatedAt instanceof Date && !isNaN(model.updatedAt)) {
        fields++;
      }
    }
    const label = sort ?? "default";
    let twice = 0;
    for (const [, n] of seen) if (n !== 1) twice++;
    let missing = 0;
    for (const id of expected) if (!seen.has(id)) missing++;
    if (seen.size !== expected.length) fail(`${label}: ${seen.size} ids, expected ${expected.length}`);
    if (twice) fail(`${label}: ${twice} ids more than once`);
    if (missing) fail(`${label}: ${missing} ids missing`);
    if (fields !== expected.length) fail(`${label}: ${expected.length - fields} entries malformed`);
    console.log(`${label}: ${seen.size} ids, each exactly once`);
  }

  // modelInfo reads the per-repo endpoint.
  const info = await hub.modelInfo({ name: expected[0], hubUrl: url });
  if (info.name !== expected[0]) fail(`modelInfo returned ${info.name} for ${expected[0]}`);
} catch (e) {
  fail(e.stack ?? String(e));
} finally {
  child.kill("SIGTERM");
  const [code] = await once(child, "exit");
  if (code !== 0) fail(`fakehub exited with ${code} after SIGTERM`);
}
