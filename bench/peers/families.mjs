// Reads a hubcensus families file (config/families.textproto; proto/hubcensus/v1/config.proto's
// FamilyConfig in protobuf text format) into plain objects, with the defaults hubcensus applies
// (config/family_config.cc WithDefaults). Only the fields FamilyConfig has are accepted: an unknown
// field or a malformed line is an error naming it, so a peer never computes under other rules.
import { readFileSync } from 'node:fs';

function tokenize(text, path) {
  const tokens = [];
  const re = /\s+|#[^\n]*|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([A-Za-z_][A-Za-z0-9_]*)|(-?[0-9][0-9.eE+-]*)|([{}:;,])/y;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new Error(`${path}: cannot read ${JSON.stringify(text.slice(pos, pos + 40))}`);
    pos = re.lastIndex;
    if (m[1] !== undefined || m[2] !== undefined) {
      tokens.push({ str: JSON.parse(`"${(m[1] ?? m[2]).replace(/\\'/g, "'")}"`) });
    } else if (m[3] !== undefined) tokens.push({ ident: m[3] });
    else if (m[4] !== undefined) tokens.push({ num: Number(m[4]) });
    else if (m[5] !== undefined && m[5] !== ';' && m[5] !== ',') tokens.push({ punct: m[5] });
  }
  return tokens;
}

// Parses a message body into {field: [values]} (every field repeated; callers pick).
function parseMessage(tokens, i, path, closing) {
  const fields = {};
  while (i < tokens.length) {
    const t = tokens[i];
    if (t.punct === '}') {
      if (!closing) throw new Error(`${path}: unexpected '}'`);
      return [fields, i + 1];
    }
    if (!t.ident) throw new Error(`${path}: expected a field name, got ${JSON.stringify(t)}`);
    const name = t.ident;
    i++;
    if (tokens[i]?.punct === ':') i++;
    let value;
    if (tokens[i]?.punct === '{') {
      [value, i] = parseMessage(tokens, i + 1, path, true);
    } else {
      const v = tokens[i++];
      if (!v) throw new Error(`${path}: field ${name} has no value`);
      value = v.str ?? v.num ?? v.ident;
    }
    (fields[name] ??= []).push(value);
  }
  if (closing) throw new Error(`${path}: a '{' is never closed`);
  return [fields, i];
}

function only(fields, allowed, where, path) {
  for (const k of Object.keys(fields)) {
    if (!allowed.includes(k)) throw new Error(`${path}: ${where} has no field ${k}`);
  }
}

export function loadFamilies(path) {
  const [top] = parseMessage(tokenize(readFileSync(path, 'utf8'), path), 0, path, false);
  only(top, ['family', 'lineage', 'new_model_filter'], 'FamilyConfig', path);
  const lineage = top.lineage?.[0] ?? {};
  only(lineage, ['parent_policy', 'attribution', 'max_steps'], 'lineage', path);
  const filterGiven = top.new_model_filter !== undefined;
  const filter = top.new_model_filter?.[0] ?? {};
  only(filter, ['pipeline_tag', 'min_downloads_all_time'], 'new_model_filter', path);
  const families = (top.family ?? []).map((f, index) => {
    only(f, ['name', 'region', 'namespace', 'name_regex', 'namespace_pattern'], 'family', path);
    const rules = [];
    const nameRegex = f.name_regex?.[0] || null;
    for (const ns of f.namespace ?? []) rules.push({ ns, regex: nameRegex });
    for (const p of f.namespace_pattern ?? []) {
      only(p, ['namespace', 'name_regex'], 'namespace_pattern', path);
      rules.push({ ns: p.namespace[0], regex: p.name_regex?.[0] ?? '' });
    }
    return { index, name: f.name?.[0] ?? '', region: f.region?.[0] ?? '', rules };
  });
  return {
    families,
    parentPolicy: lineage.parent_policy?.[0] ?? 'FIRST_PARENT',
    attribution: lineage.attribution?.[0] ?? 'NEAREST',
    maxSteps: lineage.max_steps?.[0] || 64,
    // WithDefaults: a file without new_model_filter gets hubcensus's default filter.
    pipelineTags: filterGiven ? filter.pipeline_tag ?? [] : ['text-generation', 'image-text-to-text'],
    minDownloadsAllTime: filterGiven ? filter.min_downloads_all_time?.[0] ?? 0 : 5,
  };
}
