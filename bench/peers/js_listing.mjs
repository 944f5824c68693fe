// The JS client peer of issue 15: the Hugging Face JS client (`@huggingface/hub` listModels)
// lists a Hub (a fakehub on loopback) to the end, as a user's listing loop would, and counts
// the pages and repos it saw.
//
//   node js_listing.mjs --hub_url=http://127.0.0.1:PORT [--page_size=1000]
//
// It asks what the crawler asks (sort=createdAt, hubcensus's expand list: common/listing.cc
// DefaultListingExpand) so the server does the same work per entry. listModels always sends
// limit=500; --page_size rewrites that in the request (a fetch wrapper, which the client takes
// as an option) so both clients read the same pages (the crawler's are 1,000 entries); 0 keeps
// the client's own 500. Prints one JSON line: repos, pages, seconds (first request to last
// entry), ms_per_page.
import { listModels } from '@huggingface/hub';

const flags = Object.fromEntries(process.argv.slice(2).map((a) => {
  const m = /^--([a-z_]+)=(.*)$/.exec(a);
  if (!m) throw new Error(`unknown argument ${JSON.stringify(a)}`);
  return [m[1], m[2]];
}));
if (!flags.hub_url) {
  console.error('usage: node js_listing.mjs --hub_url=URL [--page_size=1000]');
  process.exit(2);
}
const pageSize = Number(flags.page_size ?? 1000);
const CRAWLER_EXPAND = ['author', 'createdAt', 'lastModified', 'downloads', 'downloadsAllTime',
  'likes', 'trendingScore', 'tags', 'pipeline_tag', 'library_name', 'private', 'disabled', 'gated',
  'sha'];
// listModels already expands these; the rest go through additionalFields.
const CLIENT_EXPANDS = ['pipeline_tag', 'private', 'gated', 'downloads', 'likes', 'lastModified'];

let pages = 0;
const countingFetch = (url, init) => {
  pages++;
  const u = new URL(url);
  if (pageSize > 0 && u.searchParams.get('limit') === '500') u.searchParams.set('limit', String(pageSize));
  return fetch(u.toString(), init);
};

const ids = new Set();
let repos = 0;
const t0 = performance.now();
for await (const m of listModels({
  hubUrl: flags.hub_url,
  sort: 'createdAt',
  additionalFields: CRAWLER_EXPAND.filter((e) => !CLIENT_EXPANDS.includes(e)),
  fetch: countingFetch,
})) {
  repos++;
  ids.add(m.name);
}
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ repos, distinct_ids: ids.size, pages, seconds,
                             ms_per_page: pages ? (seconds * 1000) / pages : 0 }));
