// Issue 15's comparison in one run: hubcensus against its peers on this machine, as a user would
// run each (fresh processes, fakehub on loopback), printing the issue's table. Started by
// scripts/bench, which installs Node.js and the peers first; see docs/performance.md.
//
//   node bench/peers/run.mjs [--small] [--with_5m] [--work_dir=DIR] [--bin=PATH] [--load_bin=PATH]
//
// --small (CI): the equality checks only, on small Hubs, no timing printed as a result:
//   the JS client lists as many repos as hubcensus's crawl committed; DuckDB's census equals
//   hubcensus's (stored rollups and an ad-hoc families file); the load generator's calls all
//   succeed with whole answers. Ends with `bench: N passed, M failed`; exit 1 on a failure.
// Sizes (defaults in brackets): --race_repos [296000], --latency_repos [50000],
//   --scale=N,N,.. [500000,1000000,2200000], --worker_repos [1000000: the scale point that also
//   runs a separate crawler worker], --storage_repos [100000], --load_crawls [365],
//   --load_repos [20000], --race_rounds [2], --only=race,scale,storage,load [all].
// Full: also the crawl race, the scale ladder (0.5M, 1M, 2.2M repos; 5M with --with_5m), peak
//   memory of `local` and of a crawler worker, bytes on disk after 30 daily crawls, and the
//   Census under load over 365 daily crawls. Every census is checked equal before it is timed.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, openSync, closeSync, readFileSync, writeFileSync, existsSync,
         readdirSync, statSync } from 'node:fs';
import { loadavg, cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const args = Object.fromEntries(process.argv.slice(2).map((a) => {
  const m = /^--([a-z_0-9]+)(?:=(.*))?$/.exec(a);
  if (!m) throw new Error(`unknown argument ${JSON.stringify(a)}`);
  return [m[1], m[2] ?? true];
}));
const SMALL = Boolean(args.small);
const BIN = resolve(args.bin ?? join(root, 'build/release/bin/hubcensus'));
const LOAD_BIN = resolve(args.load_bin ?? join(root, 'build/release/bench/census_load'));
const WORK = resolve(args.work_dir ?? '/tmp/hubcensus-bench');
const DEFAULT_FAMILIES = join(root, 'config/families.textproto');
const OTHER_FAMILIES = join(here, 'families_other.textproto');
const DATE = '2025-12-31';
const node = process.execPath;
// --only=race,scale,storage,load: the parts of the full run to do (default: all).
const ONLY = new Set(String(args.only ?? 'race,scale,storage,load').split(','));

let passed = 0, failed = 0;
const rows = [];     // the issue's table: [what, hubcensus, peer, ratio]
const notes = [];    // extra figures printed under the table
function check(name, ok, detail) {
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
}
const load = () => loadavg()[0].toFixed(1);
const fmt = (s) => (s >= 10 ? s.toFixed(1) : s.toFixed(2));
const ratio = (peer, ours) => (ours > 0 ? `${(peer / ours).toFixed(2)}x` : '?');
const mb = (kb) => `${(kb / 1024).toFixed(0)} MB`;

function log(msg) { console.log(`[${new Date().toISOString().slice(11, 19)} load ${load()}] ${msg}`); }

// Runs a command to the end under /usr/bin/time -v; stdout/stderr to files in WORK/logs.
let runCount = 0;
function run(name, cmd, argv, { allowFail = false, cwd = root, timeVerbose = true } = {}) {
  const logs = join(WORK, 'logs');
  mkdirSync(logs, { recursive: true });
  const base = join(logs, `${String(++runCount).padStart(3, '0')}-${name}`);
  const out = openSync(`${base}.out`, 'w'), err = openSync(`${base}.err`, 'w');
  const loadBefore = load();
  const t0 = performance.now();
  const r = timeVerbose
    ? spawnSync('/usr/bin/time', ['-v', cmd, ...argv], { stdio: ['ignore', out, err], cwd })
    : spawnSync(cmd, argv, { stdio: ['ignore', out, err], cwd });
  const seconds = (performance.now() - t0) / 1000;
  closeSync(out); closeSync(err);
  const stdout = readFileSync(`${base}.out`, 'utf8'), stderr = readFileSync(`${base}.err`, 'utf8');
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1] ?? 0);
  if (r.status !== 0 && !allowFail) {
    throw new Error(`${name} exited ${r.status ?? r.signal}: ${stderr.split('\n').filter((l) =>
      !/^\s/.test(l) && !/Command being timed/.test(l)).slice(-5).join(' | ').slice(0, 600)} ` +
      `(logs: ${base}.out/.err)`);
  }
  return { status: r.status, seconds, rss, stdout, stderr, load: loadBefore, base };
}

// A long-running server: resolves once its "listening on" line appears.
function serve(name, cmd, argv, pattern) {
  mkdirSync(join(WORK, 'logs'), { recursive: true });
  const errPath = join(WORK, 'logs', `${name}.err`);
  const err = openSync(errPath, 'w');
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', err] });
  return new Promise((resolveServe, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${name}: no "${pattern}" within 300 s`)), 300000);
    proc.stdout.on('data', (d) => {
      text += d;
      const m = pattern.exec(text);
      if (m) { clearTimeout(timer); resolveServe({ proc, match: m, stop: () => stop(proc) }); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); closeSync(err);
      reject(new Error(`${name} exited ${code} before serving: ${readFileSync(errPath, 'utf8').slice(-400)}`)); });
  });
}
function stop(proc) {
  return new Promise((res) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return res();
    proc.removeAllListeners('exit');
    proc.on('exit', () => res());
    proc.kill('SIGTERM');
  });
}

async function fakehub(repos, extra = []) {
  const t0 = performance.now();
  const s = await serve(`fakehub-${repos}`, BIN, ['fakehub', '--port=0', `--repos=${repos}`,
    '--rate_limit=off', '--log_level=warn', ...extra], /fakehub listening on (http:\/\/\S+)/);
  s.url = s.match[1];
  s.startSeconds = (performance.now() - t0) / 1000;
  return s;
}

// The JSON log's timestamps split a `local` run: crawl (started -> items done), commit (items
// done -> committed with its families).
function phases(stderr) {
  const ts = {};
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    let e; try { e = JSON.parse(line); } catch { continue; }
    const t = Date.parse(e.ts);
    if (e.event === 'crawl_started' && !ts.start) ts.start = t;
    if (e.event === 'crawl_items_done') ts.items = t;
    if (e.event === 'crawl_committed' && e.families !== undefined) ts.committed = t;
  }
  return {
    crawl: ts.start && ts.items ? (ts.items - ts.start) / 1000 : NaN,
    commit: ts.items && ts.committed ? (ts.committed - ts.items) / 1000 : NaN,
  };
}

function localCrawl(name, url, dataDir, date = DATE, extra = []) {
  const r = run(name, BIN, ['local', `--hub_url=${url}`, `--data_dir=${dataDir}`, `--date=${date}`,
    '--workers=2', '--hub_quota=off', '--log_format=json', '--format=csv', ...extra]);
  return { ...r, ...phases(r.stderr) };
}

function crawlRepos(dataDir) {
  const r = run('query-crawls', BIN, ['query', 'crawls', `--data_dir=${dataDir}`, '--format=json'],
                { timeVerbose: false });
  const crawls = JSON.parse(r.stdout).crawls;
  return crawls.length ? Number(crawls[crawls.length - 1].repos) : 0;
}

function jsListing(url) {
  const r = run('js-listing', node, [join(here, 'js_listing.mjs'), `--hub_url=${url}`]);
  return { ...JSON.parse(r.stdout.trim().split('\n').pop()), rss: r.rss, load: r.load };
}

// hubcensus's census (families + shares, each a fresh process) against DuckDB's; asserts that
// they agree, then returns both times. `families` null: the served families' stored rollups.
function censusPair(tag, dataDir, duckDb, families) {
  const fam = families ? [`--families=${families}`] : [];
  const hf = run(`${tag}-families`, BIN, ['query', 'families', `--data_dir=${dataDir}`,
    '--format=json', ...fam]);
  const hs = run(`${tag}-shares`, BIN, ['query', 'shares', `--data_dir=${dataDir}`,
    '--format=json', '--from=1970-01', `--to=${DATE.slice(0, 7)}`, ...fam]);
  writeFileSync(join(WORK, `${tag}-hc-families.json`), hf.stdout);
  writeFileSync(join(WORK, `${tag}-hc-shares.json`), hs.stdout);
  const dd = run(`${tag}-duckdb`, node, [join(here, 'duckdb_census.mjs'), 'census',
    `--db=${duckDb}`, `--families=${families ?? DEFAULT_FAMILIES}`, `--date=${DATE}`,
    '--from=1970-01', `--to=${DATE.slice(0, 7)}`, `--out=${join(WORK, `${tag}-duckdb.json`)}`]);
  const cmp = run(`${tag}-compare`, node, [join(here, 'compare.mjs'),
    join(WORK, `${tag}-hc-families.json`), join(WORK, `${tag}-hc-shares.json`),
    join(WORK, `${tag}-duckdb.json`)], { allowFail: true, timeVerbose: false });
  check(`${tag}: hubcensus census == DuckDB census`, cmp.status === 0, cmp.stdout.trim().split('\n').slice(0, 6).join(' | '));
  const inner = JSON.parse(readFileSync(join(WORK, `${tag}-duckdb.json`), 'utf8')).seconds;
  return { families: hf.seconds, shares: hs.seconds, duckdb: dd.seconds, duckdbInner: inner,
           equal: cmp.status === 0, compared: cmp.stdout.trim(), load: hf.load, rss: Math.max(hf.rss, hs.rss) };
}

function exportToDuckdb(tag, dataDir) {
  const jsonl = join(WORK, `${tag}.jsonl`), db = join(WORK, `${tag}.duckdb`);
  const ex = run(`${tag}-export`, BIN, ['export', `--data_dir=${dataDir}`, `--out=${jsonl}`]);
  const ld = run(`${tag}-duckdb-load`, node, [join(here, 'duckdb_census.mjs'), 'load',
    `--jsonl=${jsonl}`, `--db=${db}`]);
  rmSync(jsonl, { force: true });
  return { db, exportSeconds: ex.seconds, loadSeconds: ld.seconds };
}

function duBytes(path) {
  let total = 0;
  const walk = (p) => {
    const st = statSync(p);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    else total += st.blocks * 512;
  };
  if (existsSync(path)) walk(path);
  return total;
}

async function censusUnderLoad(crawls, repos, requests, seconds) {
  const dir = join(WORK, `load-${crawls}x${repos}`);
  rmSync(dir, { recursive: true, force: true });
  const agg = await serve('aggregator-load', BIN, ['aggregator', `--data_dir=${dir}`,
    '--listen=127.0.0.1:0', '--log_level=warn'], /aggregator listening on (\S+)/);
  try {
    const addr = agg.match[1];
    const fill = run('load-fill', LOAD_BIN, [`--aggregator=${addr}`, '--fill', `--crawls=${crawls}`,
      `--repos=${repos}`]);
    log(fill.stdout.trim());
    const lg = run('load', LOAD_BIN, [`--aggregator=${addr}`, `--requests=${requests}`,
      `--seconds=${seconds}`, '--concurrency=1,8'], { allowFail: true });
    const table = {};
    for (const line of lg.stdout.split('\n')) {
      const m = /^(Families|SeriesColumns|Series|Shares)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)/.exec(line);
      if (m) table[`${m[1]}/${m[2]}`] = { calls: +m[3], p50: +m[4], p99: +m[5], max: +m[6], qps: +m[7], failed: +m[8], answer: +m[9] };
    }
    return { fill, lg, table, load: lg.load };
  } finally {
    await agg.stop();
  }
}

async function small() {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  log(`small: equality checks in ${WORK}`);
  const hub = await fakehub(3000);
  try {
    const js = jsListing(hub.url);
    const dataDir = join(WORK, 'small-data');
    localCrawl('small-local', hub.url, dataDir);
    const committed = crawlRepos(dataDir);
    check('JS listing repo count == hubcensus crawl count', js.repos === committed && js.distinct_ids === committed,
          `JS ${js.repos} (${js.distinct_ids} distinct, ${js.pages} pages), hubcensus ${committed}`);
    const { db } = exportToDuckdb('small', dataDir);
    censusPair('small-rollups', dataDir, db, null);
    censusPair('small-adhoc', dataDir, db, OTHER_FAMILIES);
  } finally {
    await hub.stop();
  }
  const l = await censusUnderLoad(5, 1000, 20, 30);
  const families = l.table['Families/8']?.answer ?? 0;
  const seriesOk = ['Families', 'Series', 'SeriesColumns', 'Shares'].every((k) => [1, 8].every((c) => {
    const t = l.table[`${k}/${c}`]; return t && t.failed === 0 && t.calls === 20; }));
  check('census_load: every call of every kind succeeded', l.lg.status === 0 && seriesOk,
        l.lg.stdout.trim().split('\n').slice(1).join(' | '));
  check('census_load: Series answers every family at every crawl',
        l.table['Series/1']?.answer === 5 * families && families > 0,
        `${l.table['Series/1']?.answer} points for ${families} families x 5 crawls`);
  check('census_load: Series in columns answers as many figures as in points',
        l.table['SeriesColumns/1']?.answer === l.table['Series/1']?.answer,
        `${l.table['SeriesColumns/1']?.answer} values against ${l.table['Series/1']?.answer} points`);
}

async function full() {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  log(`full run in ${WORK}: ${cpus().length} cores, hubcensus ${BIN}`);

  // 1. The crawl race: a 296k-repo fakehub, the JS client's bare listing against `local`.
  if (ONLY.has('race')) {
    // Rounds alternate the peers (the JS client at its own 500 a page and at the crawler's
    // 1,000, then `local`) and each keeps its best: the machine is shared, so one slow moment
    // must not decide a ratio. The peer's figure is its faster page size.
    const hub = await fakehub(Number(args.race_repos ?? 296000));
    try {
      let best = null, bestLocal = null, committed = 0;
      for (let round = 0; round < Number(args.race_rounds ?? 2); round++) {
        for (const pageSize of [0, 1000]) {
          const r = run(`js-listing-${pageSize || 500}`, node, [join(here, 'js_listing.mjs'),
            `--hub_url=${hub.url}`, `--page_size=${pageSize}`]);
          const js = { ...JSON.parse(r.stdout.trim().split('\n').pop()), load: r.load, pageSize: pageSize || 500 };
          if (!best || js.seconds < best.seconds) best = js;
        }
        const dataDir = join(WORK, `race-data-${round}`);
        const lc = localCrawl(`race-local-${round}`, hub.url, dataDir);
        committed = crawlRepos(dataDir);
        check(`race ${round}: JS listing repo count == hubcensus crawl count`, best.repos === committed, `${best.repos} vs ${committed}`);
        if (!bestLocal || lc.seconds < bestLocal.seconds) bestLocal = lc;
        if (round > 0) rmSync(dataDir, { recursive: true, force: true });
      }
      const js = best, lc = bestLocal;
      const pages = Math.ceil(committed / 1000);
      rows.push([`crawl of a ${(committed / 1000).toFixed(0)}k-repo fakehub (\`--rate_limit=off\`), list+parse+store+commit vs list only (best of ${args.race_rounds ?? 2} rounds each)`,
        `\`local --workers=2 --hub_quota=off\`: ${fmt(lc.seconds)} s (${(lc.seconds * 1000 / pages).toFixed(1)} ms a page; crawl ${fmt(lc.crawl)} s, commit ${fmt(lc.commit)} s; load ${lc.load})`,
        `\`@huggingface/hub\` \`listModels\`: ${fmt(js.seconds)} s (${js.ms_per_page.toFixed(1)} ms a page, ${js.pages} pages of ${js.pageSize}; load ${js.load})`,
        `${ratio(js.seconds, lc.seconds)} (target ≥ 1.0x)`]);
    } finally { await hub.stop(); }
    // With the Hub's own pace: 300 ms a page.
    const slow = await fakehub(Number(args.latency_repos ?? 50000), ['--page_latency_ms=300']);
    try {
      const dataDir = join(WORK, 'latency-data');
      const lc = localCrawl('latency-local', slow.url, dataDir);
      const committed = crawlRepos(dataDir);
      const floor = Math.ceil(committed / 1000) * 0.3;
      rows.push([`crawl with \`--page_latency_ms=300\` (${committed} repos, ${Math.ceil(committed / 1000)} pages)`,
        `${fmt(lc.seconds)} s (crawl ${fmt(lc.crawl)} s)`, `pages x latency: ${fmt(floor)} s`,
        `${((lc.crawl / floor - 1) * 100).toFixed(0)}% over (target: within 5%)`]);
    } finally { await slow.stop(); }
  }

  // 2. Scale: crawl, commit, ad-hoc census at each size, and DuckDB on the same data.
  const sizes = !ONLY.has('scale') ? [] : args.scale ? String(args.scale).split(',').map(Number)
      : [500000, 1000000, 2200000, ...(args.with_5m ? [5000000] : [])];
  const workerAt = Number(args.worker_repos ?? 1000000);
  const scale = [];
  for (const n of sizes) {
    const hub = await fakehub(n);
    log(`fakehub ${n} repos up in ${fmt(hub.startSeconds)} s`);
    try {
      const dataDir = join(WORK, `scale-${n}`);
      const lc = localCrawl(`scale-${n}-local`, hub.url, dataDir);
      const committed = crawlRepos(dataDir);
      // Right after `local`: a stored-rollup query, then the ad-hoc census (fresh processes).
      const rollup = run(`scale-${n}-rollup`, BIN, ['query', 'families', `--data_dir=${dataDir}`, '--format=json']);
      const { db, exportSeconds, loadSeconds } = exportToDuckdb(`scale-${n}`, dataDir);
      const adhoc = censusPair(`scale-${n}-adhoc`, dataDir, db, OTHER_FAMILIES);
      // Then with the store flushed: an aggregator opened on it and stopped (RocksDB writes the
      // WAL `local` left into tables), as a served store is.
      const agg = await serve(`scale-${n}-flush`, BIN, ['aggregator', `--data_dir=${join(dataDir, 'store')}`,
        '--listen=127.0.0.1:0', '--log_level=warn'], /aggregator listening on (\S+)/);
      await agg.stop();
      const rollupFlushed = run(`scale-${n}-rollup-flushed`, BIN, ['query', 'families', `--data_dir=${dataDir}`, '--format=json']);
      const again = censusPair(`scale-${n}-adhoc-flushed`, dataDir, db, OTHER_FAMILIES);
      let worker = null;
      if (n === workerAt) worker = await distributedCrawl(hub.url, n);
      scale.push({ n, committed, lc, rollup: rollup.seconds, rollupFlushed: rollupFlushed.seconds, adhoc, again, exportSeconds, loadSeconds,
                   store: duBytes(join(dataDir, 'store')) });
      log(`scale ${n}: crawl ${fmt(lc.crawl)} s, commit ${fmt(lc.commit)} s, local ${fmt(lc.seconds)} s ` +
          `${mb(lc.rss)}, rollup query ${fmt(rollup.seconds)} s, ad-hoc ${fmt(adhoc.families)}+${fmt(adhoc.shares)} s ` +
          `vs DuckDB ${fmt(adhoc.duckdb)} s`);
      if (worker) notes.push(worker);
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(db, { force: true });
    } finally { await hub.stop(); }
  }
  const at = (n) => scale.find((s) => s.n === n) ?? scale[scale.length - 1];
  const big = at(2200000);
  if (big) rows.push([`families + shares of a ${(big.committed / 1e6).toFixed(1)}M-repo crawl under another families file, fresh processes (store as \`local\` left it; flushed)`,
    `\`query families\` + \`query shares --families=F\`: ${fmt(big.adhoc.families)} + ${fmt(big.adhoc.shares)} s; flushed ${fmt(big.again.families)} + ${fmt(big.again.shares)} s (load ${big.adhoc.load})`,
    `DuckDB (\`@duckdb/node-api\`, same definitions in SQL, its own file): ${fmt(big.adhoc.duckdb)} s for both (${fmt(big.adhoc.duckdbInner)} s in-process); ${fmt(big.again.duckdb)} s in the second run`,
    `${ratio(big.adhoc.duckdb, big.adhoc.families + big.adhoc.shares)} / ${ratio(big.again.duckdb, big.again.families + big.again.shares)} (target ≥ 3x)`]);
  if (big) rows.push([`the same from stored rollups, right after \`local\`; flushed`, `${fmt(big.rollup)} s; ${fmt(big.rollupFlushed)} s (target < 0.1 s)`, '—', '—']);
  if (big) rows.push([`commit of the ${(big.committed / 1e6).toFixed(1)}M-repo crawl (every metric)`, `${fmt(big.lc.commit)} s (target < 1 s)`, '—', '—']);
  if (big) rows.push([`peak RSS of \`local\` crawling that Hub`, `${mb(big.lc.rss)} (target ≤ 512 MB)`, '—', '—']);

  // 3. Storage after 30 daily crawls.
  const storageRepos = Number(args.storage_repos ?? 100000);
  if (ONLY.has('storage')) {
    const hub = await fakehub(storageRepos, ['--date=2025-12-02']);
    try {
      const dataDir = join(WORK, 'storage-data');
      let committed = 0;
      for (let d = 2; d <= 31; d++) {
        const date = `2025-12-${String(d).padStart(2, '0')}`;
        const r = await fetch(`${hub.url}/_sim/clock?date=${date}`, { method: 'POST' });
        if (!r.ok) throw new Error(`fakehub clock ${date}: ${r.status}`);
        localCrawl(`storage-${date}`, hub.url, dataDir, date);
        committed += crawlRepos(dataDir);
      }
      const bytes = duBytes(join(dataDir, 'store'));
      rows.push([`storage after 30 daily crawls of a ${(storageRepos / 1000).toFixed(0)}k-repo Hub (store folder, \`du\`)`,
        `${(bytes / committed).toFixed(1)} bytes per repo per crawl (${(bytes / 1e6).toFixed(0)} MB for ${committed} repo-crawls; target ≤ 14)`, '—', '—']);
      rmSync(dataDir, { recursive: true, force: true });
    } finally { await hub.stop(); }
  }

  // 4. The Census under load: 365 daily crawls of a 20k-repo Hub.
  if (ONLY.has('load')) {
    const loadCrawls = Number(args.load_crawls ?? 365), loadRepos = Number(args.load_repos ?? 20000);
    const l = await censusUnderLoad(loadCrawls, loadRepos, 2000, 20);
    const cell = (k) => { const t = l.table[k]; return t ? `p50 ${t.p50.toFixed(2)} ms, p99 ${t.p99.toFixed(2)} ms, ${t.qps.toFixed(0)}/s${t.failed ? `, ${t.failed} FAILED` : ''}` : 'no answer'; };
    for (const k of ['Families', 'Series', 'SeriesColumns', 'Shares']) {
      const what = k === 'Series' ? `Series\` (every family, ${loadCrawls} crawls, in points)`
        : k === 'SeriesColumns' ? `Series\` (the same, \`columns: true\`)` : `${k}\``;
      rows.push([`Census \`${what} on an aggregator holding ${loadCrawls} daily crawls of ${loadRepos / 1000}k repos (census_load)`,
        `1 in flight: ${cell(`${k}/1`)}; 8 in flight: ${cell(`${k}/8`)} (load ${l.load})`, '—', 'target p99 < 2 ms']);
    }
    notes.push(`census_load fill: ${l.fill.stdout.trim()}`);
  }

  // Scale table.
  const lines = ['', '| repos | crawl | commit | `local` wall | `local` peak RSS | rollup query (flushed) | ad-hoc families + shares (flushed) | DuckDB | ratio (flushed) | export + DuckDB load | store bytes/repo |', '|---|---|---|---|---|---|---|---|---|---|---|'];
  for (const s of scale) {
    lines.push(`| ${(s.committed / 1e6).toFixed(2)}M | ${fmt(s.lc.crawl)} s | ${fmt(s.lc.commit)} s | ${fmt(s.lc.seconds)} s | ${mb(s.lc.rss)} | ${fmt(s.rollup)} s (${fmt(s.rollupFlushed)} s) | ${fmt(s.adhoc.families)} + ${fmt(s.adhoc.shares)} s (${fmt(s.again.families)} + ${fmt(s.again.shares)} s) | ${fmt(s.adhoc.duckdb)} s | ${ratio(s.adhoc.duckdb, s.adhoc.families + s.adhoc.shares)} (${ratio(s.again.duckdb, s.again.families + s.again.shares)}) | ${fmt(s.exportSeconds)} + ${fmt(s.loadSeconds)} s | ${(s.store / s.committed).toFixed(1)} |`);
  }
  notes.push(lines.join('\n'));
}

async function distributedCrawl(url, n) {
  // Separate processes, as deployed: the crawler worker's own peak RSS.
  const dir = join(WORK, `dist-${n}`);
  rmSync(dir, { recursive: true, force: true });
  const agg = await serve('dist-aggregator', BIN, ['aggregator', `--data_dir=${dir}/store`,
    '--listen=127.0.0.1:0', '--log_level=warn'], /aggregator listening on (\S+)/);
  const coord = await serve('dist-coordinator', BIN, ['coordinator', `--state_dir=${dir}/coord`,
    `--store=${agg.match[1]}`, '--listen=127.0.0.1:0', '--hub_quota=off', `--hub_url=${url}`,
    '--log_level=warn'], /listening on (\S+)/);
  const coordAddr = coord.match[1].replace(/^http:\/\//, '');
  const err = openSync(join(WORK, 'logs', 'dist-crawler.err'), 'w');
  const crawler = spawn(BIN, ['crawler', `--coordinator=${coordAddr}`, `--store=${agg.match[1]}`,
    '--parallelism=1', '--log_level=warn'], { stdio: ['ignore', 'ignore', err] });
  try {
    const st = run('dist-crawl-start', BIN, ['crawl', 'start', `--coordinator=${coordAddr}`,
      `--date=${DATE}`, '--wait', '--poll_seconds=1'], { timeVerbose: false });
    // The worker's high-water mark of resident memory, read while it still runs.
    const status = readFileSync(`/proc/${crawler.pid}/status`, 'utf8');
    const rss = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
    closeSync(err);
    return `crawler worker peak RSS (VmHWM), separate processes (aggregator, coordinator, one crawler, parallelism 1) crawling ${n} repos: ${mb(rss)} (target ≤ 150 MB); crawl start --wait ${fmt(st.seconds)} s`;
  } finally {
    await stop(crawler);
    await coord.stop();
    await agg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  if (SMALL) await small(); else await full();
} catch (e) {
  failed++;
  console.log(`FAIL ${e.message}`);
}
if (!SMALL && rows.length) {
  const table = ['| what | hubcensus | peer | ratio |', '|---|---|---|---|',
                 ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const text = `${table}\n${notes.map((n) => `\n${n}`).join('\n')}\n\n` +
               `Measured ${new Date().toISOString()} on ${cpus().length} cores; "load" is the 1-minute load average when each timing started.\n`;
  writeFileSync(join(WORK, 'table.md'), text);
  console.log(`\n${text}\n(also in ${join(WORK, 'table.md')})`);
}
console.log(`bench: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
