// The DuckDB peer of issue 15: the census definitions of shared/design.md ("Metric definitions")
// written in SQL, over the snapshots `hubcensus export` writes, in DuckDB's own file.
//
//   node duckdb_census.mjs load --jsonl=EXPORT.jsonl --db=FILE.duckdb
//       loads an export (every field, parents as a list) into table `repos` of a new file
//   node duckdb_census.mjs census --db=FILE.duckdb --families=F.textproto --date=YYYY-MM-DD
//       [--from=YYYY-MM --to=YYYY-MM] [--out=FILE.json]
//       families + regions + monthly new-derivative shares of that crawl, as JSON
//
// The rules follow aggregator/census_metrics.cc and aggregator/lineage.cc under the default
// lineage policy (FIRST_PARENT, NEAREST, at most max_steps parent edges); another policy is
// refused rather than computed differently. A first-party repo is the first family in file order
// whose namespace (and name pattern, RE2 partial match: DuckDB's regexp_matches is RE2 too)
// claims it; missing parents are classified by namespace; a cycle never meets a first-party repo,
// so its walk runs out of steps and ends without a family, as in lineage.cc.
import { DuckDBInstance } from '@duckdb/node-api';
import { writeFileSync, existsSync, rmSync } from 'node:fs';
import { loadFamilies } from './families.mjs';

const REGIONS = ['china', 'us', 'eu', 'other', 'unknown'];  // config/family_config.h kRegions
const RELATIONS = ['finetune', 'adapter', 'quantized', 'merge', 'unknown'];
const PLACEHOLDERS = ['2022-03-02T23:29:04.000Z', '2022-03-02T23:29:05.000Z'];

function flags(argv) {
  const out = {};
  for (const a of argv) {
    const m = /^--([a-z_]+)=(.*)$/.exec(a);
    if (!m) throw new Error(`unknown argument ${JSON.stringify(a)}`);
    out[m[1]] = m[2];
  }
  return out;
}

const sqlString = (s) => `'${String(s).replace(/'/g, "''")}'`;

async function load(f) {
  if (!f.jsonl || !f.db) throw new Error('load needs --jsonl and --db');
  for (const p of [f.db, `${f.db}.wal`]) if (existsSync(p)) rmSync(p);
  const t0 = performance.now();
  const db = await DuckDBInstance.create(f.db);
  const c = await db.connect();
  await c.run(`CREATE TABLE repos AS SELECT * FROM read_json(${sqlString(f.jsonl)},
      format = 'newline_delimited',
      columns = {id: 'VARCHAR', object_id: 'VARCHAR', author: 'VARCHAR', created_at: 'VARCHAR',
                 last_modified: 'VARCHAR', downloads_30d: 'BIGINT', downloads_all_time: 'BIGINT',
                 likes: 'BIGINT', trending_score: 'DOUBLE', pipeline_tag: 'VARCHAR',
                 library_name: 'VARCHAR', private: 'BOOLEAN', disabled: 'BOOLEAN', gated: 'VARCHAR',
                 sha: 'VARCHAR', parents: 'STRUCT(id VARCHAR, relation VARCHAR)[]'})`);
  const n = (await c.runAndReadAll('SELECT count(*)::BIGINT AS n FROM repos')).getRowObjects()[0].n;
  await c.run('CHECKPOINT');
  c.closeSync();
  db.closeSync();
  console.log(JSON.stringify({ repos: Number(n), load_seconds: (performance.now() - t0) / 1000 }));
}

async function census(f) {
  if (!f.db || !f.families || !f.date) throw new Error('census needs --db, --families and --date');
  const t0 = performance.now();
  const cfg = loadFamilies(f.families);
  if (cfg.parentPolicy !== 'FIRST_PARENT' || cfg.attribution !== 'NEAREST') {
    throw new Error(`${f.families}: the DuckDB peer implements FIRST_PARENT/NEAREST only, ` +
                    `not ${cfg.parentPolicy}/${cfg.attribution}`);
  }
  const steps = {};
  let mark = performance.now();
  const step = (name) => { const now = performance.now(); steps[name] = (now - mark) / 1000; mark = now; };
  const db = await DuckDBInstance.create(f.db, { access_mode: 'READ_ONLY' });
  const c = await db.connect();
  step('open');
  const rules = cfg.families.flatMap((fam) => fam.rules.map((r) =>
      `(${fam.index}, ${sqlString(r.ns)}, ${r.regex === null ? 'NULL' : sqlString(r.regex)})`));
  await c.run(`CREATE TEMP TABLE rules(fam INTEGER, ns VARCHAR, rx VARCHAR)`);
  if (rules.length) await c.run(`INSERT INTO rules VALUES ${rules.join(',')}`);
  // Every repo with what the definitions read: its first-party family, first parent and relation.
  // Nodes are the crawl's repos and the parents missing from it (first-party by namespace only).
  await c.run(`CREATE TEMP TABLE node AS
    WITH ids AS (
      SELECT id, true AS in_crawl, parents[1].id AS p, coalesce(parents[1].relation, 'unknown') AS rel,
             downloads_all_time AS dat, downloads_30d AS d30, pipeline_tag AS tag, created_at
      FROM repos
      UNION ALL
      SELECT DISTINCT u.id, false, NULL, NULL, NULL, NULL, NULL, NULL
      FROM (SELECT unnest(parents).id AS id FROM repos) u ANTI JOIN repos r ON r.id = u.id),
    fp AS (
      SELECT i.id, min(r.fam) AS fam FROM ids i JOIN rules r
        ON r.ns = split_part(i.id, '/', 1) AND strpos(i.id, '/') > 0
       AND (r.rx IS NULL OR regexp_matches(substr(i.id, strpos(i.id, '/') + 1), r.rx))
      GROUP BY i.id)
    SELECT ids.*, fp.fam AS fp FROM ids LEFT JOIN fp USING (id)`);
  step('nodes_and_first_party');
  // The first-parent walk by pointer doubling: a repo that is no family's own and has a parent
  // passes the walk on to its first parent; every other node ends it. jump(id) is where a walk
  // from id stands after min(2^k, steps to its end) steps; k rounds of jump(jump(id)) reach
  // 2^k steps (64 = max_steps in 6 rounds) instead of one join per step. A walk that still
  // passes on after max_steps steps (a cycle or a chain too deep) has no family.
  const maxSteps = Number(cfg.maxSteps);
  if (!Number.isInteger(maxSteps) || maxSteps < 1 || maxSteps > 4096) {
    throw new Error(`${f.families}: max_steps ${cfg.maxSteps} is outside 1..4096`);
  }
  // Only passing repos and the nodes they point at take part: most repos declare no parent.
  await c.run(`CREATE TEMP TABLE jump AS
    WITH pass AS (SELECT id, p FROM node WHERE in_crawl AND fp IS NULL AND p IS NOT NULL)
    SELECT id, p AS dest, 1 AS steps FROM pass
    UNION ALL
    SELECT DISTINCT pass.p, pass.p, 0 FROM pass ANTI JOIN pass q ON q.id = pass.p`);
  // Doubling overshoots max_steps unless it is a power of two: walk whole powers of two first,
  // then the remaining steps one doubling table at a time (binary decomposition).
  const rounds = Math.floor(Math.log2(maxSteps));
  const tables = ['jump'];
  for (let k = 1; k <= rounds; k++) {
    await c.run(`CREATE TEMP TABLE jump${k} AS
      SELECT a.id, b.dest, a.steps + b.steps AS steps
      FROM ${tables[k - 1]} a JOIN ${tables[k - 1]} b ON b.id = a.dest`);
    tables.push(`jump${k}`);
  }
  // walk: from every passing repo, max_steps steps as sums of powers of two.
  let walk = 'SELECT id AS start, id AS cur, 0 AS steps FROM jump WHERE steps = 1';
  for (let k = rounds; k >= 0; k--) {
    if (!(maxSteps & (1 << k))) continue;
    walk = `SELECT w.start, j.dest AS cur, w.steps + j.steps AS steps
            FROM (${walk}) w JOIN ${tables[k]} j ON j.id = w.cur`;
  }
  // Where the walk stands: a node that ends it (family: its own, possibly none), or one that
  // would still pass it on (no family).
  await c.run(`CREATE TEMP TABLE lineage AS
    SELECT w.start AS id, n.fp AS fam FROM (${walk}) w JOIN node n ON n.id = w.cur
    WHERE n.fp IS NOT NULL AND NOT (n.in_crawl AND n.p IS NOT NULL AND n.fp IS NULL)`);
  step('lineage_walk');
  await c.run(`CREATE TEMP TABLE lr AS
    SELECT n.id, n.fp, coalesce(n.fp, l.fam) AS lin, n.rel, coalesce(n.dat, 0) AS dat,
           n.dat IS NULL AS no_dat, coalesce(n.d30, 0) AS d30, n.tag, n.created_at
    FROM node n LEFT JOIN lineage l USING (id) WHERE n.in_crawl`);
  step('per_repo_family');
  const rows = async (sql) => (await c.runAndReadAll(sql)).getRowObjects();
  const firstParty = await rows(`SELECT fp AS fam, count(*)::BIGINT AS n, sum(dat)::BIGINT AS dat,
      sum(d30)::BIGINT AS d30 FROM lr WHERE fp IS NOT NULL GROUP BY fp`);
  const eco = await rows(`SELECT lin AS fam, sum(dat)::BIGINT AS dat FROM lr
      WHERE lin IS NOT NULL GROUP BY lin`);
  const der = await rows(`SELECT lin AS fam, CASE WHEN rel IN ('finetune', 'adapter', 'quantized',
      'merge') THEN rel ELSE 'unknown' END AS rel, count(*)::BIGINT AS n FROM lr
      WHERE fp IS NULL AND lin IS NOT NULL GROUP BY ALL`);
  const tagFilter = cfg.pipelineTags.length
      ? `AND tag IN (${cfg.pipelineTags.map(sqlString).join(',')})` : '';
  const newFilter = `fp IS NULL AND lin IS NOT NULL ${tagFilter}
      AND (no_dat OR dat >= ${Number(cfg.minDownloadsAllTime)})`;
  const placeholders = PLACEHOLDERS.map(sqlString).join(',');
  const crawlMonth = f.date.slice(0, 7);
  const monthly = await rows(`SELECT substr(created_at, 1, 7) AS month, lin AS fam,
      count(*)::BIGINT AS n FROM lr WHERE ${newFilter} AND created_at NOT IN (${placeholders})
      AND substr(created_at, 1, 7) <= ${sqlString(crawlMonth)} GROUP BY ALL`);
  const leftOut = (await rows(`SELECT count(*)::BIGINT AS n FROM lr WHERE ${newFilter}
      AND created_at IN (${placeholders})`))[0].n;
  step('figures_and_shares');
  c.closeSync();
  db.closeSync();

  const empty = () => ({
    first_party_repos: 0, first_party_downloads_all_time: 0, first_party_downloads_30d: 0,
    ecosystem_downloads_all_time: 0,
    derivatives: Object.fromEntries(RELATIONS.map((r) => [r, 0])),
  });
  const figures = cfg.families.map(empty);
  for (const r of firstParty) {
    Object.assign(figures[r.fam], { first_party_repos: Number(r.n),
      first_party_downloads_all_time: Number(r.dat), first_party_downloads_30d: Number(r.d30) });
  }
  for (const r of eco) figures[r.fam].ecosystem_downloads_all_time = Number(r.dat);
  for (const r of der) figures[r.fam].derivatives[r.rel] += Number(r.n);
  const regions = REGIONS.map((region) => {
    const t = empty();
    cfg.families.forEach((fam, i) => {
      if (fam.region !== region) return;
      for (const k of Object.keys(t)) {
        if (k === 'derivatives') for (const r of RELATIONS) t.derivatives[r] += figures[i].derivatives[r];
        else t[k] += figures[i][k];
      }
    });
    return { region, ...t };
  });
  // Months as census_metrics.cc lists them: from the first with a new derivative to the crawl's.
  const byMonth = new Map();
  for (const r of monthly) {
    const m = byMonth.get(r.month) ?? {};
    m[cfg.families[r.fam].name] = (m[cfg.families[r.fam].name] ?? 0) + Number(r.n);
    byMonth.set(r.month, m);
  }
  const months = [];
  if (byMonth.size) {
    let [y, mo] = [...byMonth.keys()].sort()[0].split('-').map(Number);
    for (;;) {
      const name = `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}`;
      if (name > crawlMonth) break;
      const counts = byMonth.get(name) ?? {};
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      if ((!f.from || name >= f.from) && (!f.to || name <= f.to)) {
        months.push({ month: name, total, families: counts });
      }
      if (++mo > 12) { mo = 1; y++; }
    }
  }
  const out = {
    date: f.date,
    families: cfg.families.map((fam, i) => ({ family: fam.name, region: fam.region, ...figures[i] })),
    regions,
    shares: { placeholder_dated_left_out: Number(leftOut), months },
    seconds: (performance.now() - t0) / 1000,
    steps,
  };
  const text = JSON.stringify(out);
  if (f.out) writeFileSync(f.out, text); else console.log(text);
}

const [cmd, ...rest] = process.argv.slice(2);
const f = flags(rest);
if (cmd === 'load') await load(f);
else if (cmd === 'census') await census(f);
else {
  console.error('usage: node duckdb_census.mjs load|census [flags] (see the head of this file)');
  process.exit(2);
}
