// Asserts that two censuses of one crawl agree figure by figure: hubcensus's
// (`query families --format=json` and `query shares --format=json`) and the DuckDB peer's
// (duckdb_census.mjs census). Prints how many figures agreed, or every disagreement (at most 20)
// and exits 1. Numbers are compared exactly up to a relative 1e-12 (hubcensus keeps doubles).
//
//   node compare.mjs HUBCENSUS_FAMILIES.json HUBCENSUS_SHARES.json DUCKDB.json
import { readFileSync } from 'node:fs';

const [familiesPath, sharesPath, duckPath] = process.argv.slice(2);
if (!duckPath) {
  console.error('usage: node compare.mjs HUBCENSUS_FAMILIES.json HUBCENSUS_SHARES.json DUCKDB.json');
  process.exit(2);
}
const read = (p) => JSON.parse(readFileSync(p, 'utf8'));
const hc = read(familiesPath);
const hs = read(sharesPath);
const dd = read(duckPath);

let compared = 0;
const diffs = [];
function same(what, a, b) {
  compared++;
  const na = Number(a ?? 0), nb = Number(b ?? 0);
  if (na === nb || Math.abs(na - nb) <= 1e-12 * Math.max(Math.abs(na), Math.abs(nb))) return;
  diffs.push(`${what}: hubcensus ${a} duckdb ${b}`);
}
function figures(where, h, d) {
  for (const k of ['first_party_repos', 'first_party_downloads_all_time',
                   'first_party_downloads_30d', 'ecosystem_downloads_all_time']) {
    same(`${where}.${k}`, h?.[k], d?.[k]);
  }
  for (const r of ['finetune', 'adapter', 'quantized', 'merge', 'unknown']) {
    same(`${where}.derivatives.${r}`, h?.derivatives?.[r], d?.derivatives?.[r]);
  }
}
function keyed(list, key) {
  return new Map((list ?? []).map((x) => [x[key], x]));
}

const hf = keyed(hc.families, 'family'), df = keyed(dd.families, 'family');
for (const name of new Set([...hf.keys(), ...df.keys()])) {
  if (!hf.has(name) || !df.has(name)) diffs.push(`family ${name} only in ${hf.has(name) ? 'hubcensus' : 'duckdb'}`);
  figures(`families[${name}]`, hf.get(name), df.get(name));
}
const hr = keyed(hc.regions, 'region'), dr = keyed(dd.regions, 'region');
for (const name of new Set([...hr.keys(), ...dr.keys()])) figures(`regions[${name}]`, hr.get(name), dr.get(name));

same('shares.placeholder_dated_left_out', hs.placeholder_dated_left_out, dd.shares.placeholder_dated_left_out);
const hm = keyed(hs.months, 'month'), dm = keyed(dd.shares.months, 'month');
for (const month of new Set([...hm.keys(), ...dm.keys()])) {
  const h = hm.get(month), d = dm.get(month);
  same(`shares[${month}].total`, h?.total, d?.total);
  const names = new Set([...Object.keys(h?.families ?? {}), ...Object.keys(d?.families ?? {})]);
  for (const n of names) same(`shares[${month}][${n}].count`, h?.families?.[n]?.count, d?.families?.[n]);
}

if (diffs.length) {
  console.log(`census MISMATCH: ${diffs.length} of ${compared} figures differ`);
  for (const d of diffs.slice(0, 20)) console.log(`  ${d}`);
  process.exit(1);
}
console.log(`census equal: ${compared} of ${compared} figures agree ` +
            `(${hf.size} families, ${hr.size} regions, ${hm.size} months)`);
