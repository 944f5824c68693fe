#include "fakehub/fixture_hub.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/checksum.h"
#include "common/dates.h"
#include "fakehub/json_text.h"
#include "hub/entry_parser.h"
#include "simdjson.h"

namespace hubcensus::fakehub {
namespace {

absl::string_view View(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// The Hub's placeholder createdAt values, 2022-03-02T23:29:04.000Z and ...:05.000Z.
bool IsPlaceholderCreated(int64_t t) { return t == 1646263744 || t == 1646263745; }

Relation RelationOf(v1::Relation relation) {
  switch (relation) {
    case v1::RELATION_FINETUNE:
      return Relation::kFinetune;
    case v1::RELATION_ADAPTER:
      return Relation::kAdapter;
    case v1::RELATION_QUANTIZED:
      return Relation::kQuantized;
    case v1::RELATION_MERGE:
      return Relation::kMerge;
    default:
      return Relation::kUnknown;
  }
}

int MonthOfUnix(int64_t t) {
  absl::CivilSecond c = absl::ToCivilSecond(absl::FromUnixSeconds(t), absl::UTCTimeZone());
  return static_cast<int>(c.year() * 12 + c.month() - 1);
}

}  // namespace

absl::StatusOr<std::unique_ptr<FixtureHub>> FixtureHub::Load(const std::string& path,
                                                             const v1::FamilyConfig* config,
                                                             const FamilyMatcher* matcher) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("--fixture: cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(text).get(doc); err != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not JSON (", simdjson::error_message(err), ")"));
  }
  simdjson::dom::array array;
  if (doc.get(array) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": expected a JSON array of entries"));
  }
  std::unique_ptr<FixtureHub> hub(new FixtureHub(config, matcher));
  size_t k = 0;
  for (simdjson::dom::element element : array) {
    simdjson::dom::object object;
    if (element.get(object) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": entry ", k, " is not an object"));
    }
    Entry e;
    for (auto field : object) {
      std::string key(field.key);
      e.raw.emplace_back(key, simdjson::minify(field.value));
      std::string_view s;
      if (key == "id" || key == "modelId") {
        if (field.value.get(s) == simdjson::SUCCESS && e.id.empty()) e.id = std::string(s);
      } else if (key == "_id") {
        if (field.value.get(s) == simdjson::SUCCESS) {
          if (auto oid = ObjectId::FromHex(View(s))) e.oid = *oid;
        }
      } else if (key == "author") {
        if (field.value.get(s) == simdjson::SUCCESS) e.author = std::string(s);
      } else if (key == "pipeline_tag") {
        if (field.value.get(s) == simdjson::SUCCESS) e.pipeline_tag = std::string(s);
      } else if (key == "createdAt" || key == "lastModified") {
        if (field.value.get(s) == simdjson::SUCCESS) {
          auto t = ParseHubTimestamp(View(s));
          if (t.ok()) (key == "createdAt" ? e.created : e.last_modified) = *t;
        }
      } else if (key == "downloads" || key == "likes" || key == "downloadsAllTime") {
        int64_t v = 0;
        if (field.value.get(v) == simdjson::SUCCESS) {
          if (key == "downloads") e.downloads = v;
          if (key == "likes") e.likes = v;
          if (key == "downloadsAllTime") {
            e.all_time = v;
            e.has_all_time = true;
          }
        }
      } else if (key == "trendingScore") {
        double v = 0;
        if (field.value.get(v) == simdjson::SUCCESS) e.trending = v;
      } else if (key == "private" || key == "disabled") {
        bool v = false;
        if (field.value.get(v) == simdjson::SUCCESS)
          (key == "private" ? e.is_private : e.disabled) = v;
      } else if (key == "tags") {
        simdjson::dom::array tags;
        if (field.value.get(tags) == simdjson::SUCCESS) {
          for (auto t : tags) {
            if (t.get(s) == simdjson::SUCCESS) e.tags.emplace_back(s);
          }
        }
      }
    }
    if (e.id.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": entry ", k, " has no id"));
    }
    if (e.oid.time == 0) {
      e.oid.time = static_cast<uint32_t>(e.created);
      e.oid.rest = Fnv1a64(e.id);
    }
    if (e.author.empty() && e.id.find('/') != std::string::npos) {
      e.author = e.id.substr(0, e.id.find('/'));
    }
    if (!hub->by_id_.emplace(e.id, static_cast<int64_t>(hub->entries_.size())).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": entry ", k, " repeats id \"", e.id, "\""));
    }
    hub->entries_.push_back(std::move(e));
    ++k;
  }
  return hub;
}

bool FixtureHub::Listed(int64_t i) const {
  return !entries_[i].is_private && entries_[i].created <= end_of_day_;
}

// A recorded private entry is one the recording token could see: listed to token requests.
bool FixtureHub::ListedWithToken(int64_t i) const { return entries_[i].created <= end_of_day_; }

double FixtureHub::SortKey(int64_t i, SortField field) const {
  const Entry& e = entries_[i];
  switch (field) {
    case SortField::kCreatedAt:
      return static_cast<double>(e.created);
    case SortField::kLastModified:
      return static_cast<double>(e.last_modified);
    case SortField::kDownloads:
      return static_cast<double>(e.downloads);
    case SortField::kLikes:
      return static_cast<double>(e.likes);
    case SortField::kTrendingScore:
      return e.trending;
  }
  return 0;
}

bool FixtureHub::Matches(int64_t i, const ListingFilter& filter) const {
  const Entry& e = entries_[i];
  if (!filter.author.empty() && e.author != filter.author) return false;
  if (!filter.pipeline_tag.empty() && e.pipeline_tag != filter.pipeline_tag) return false;
  if (!filter.search.empty() && !ContainsIgnoreCase(e.id, filter.search)) return false;
  for (const auto& want : filter.tags) {
    if (std::find(e.tags.begin(), e.tags.end(), want) == e.tags.end()) return false;
  }
  return true;
}

std::vector<std::pair<std::string, Relation>> FixtureHub::Parents(const Entry& e) const {
  // The one reading of the lineage tags (hub/): relation tags, and bare tags only for ids with
  // no relation tag, in tag order. Lineage comes from tags alone (cardData is not requested).
  std::vector<absl::string_view> tags(e.tags.begin(), e.tags.end());
  std::vector<std::pair<std::string, Relation>> parents;
  for (const v1::Parent& p : hub::DeriveParents(tags, {})) {
    parents.emplace_back(p.id(), RelationOf(p.relation()));
  }
  return parents;
}

void FixtureHub::AppendEntry(int64_t i, const FieldList& fields, std::string* out) const {
  const Entry& e = entries_[i];
  absl::StrAppend(out, "{\"_id\":\"", e.oid.Hex(), "\",\"id\":", JsonString(e.id));
  for (Property p : fields) {
    const char* name = PropertyName(p);
    if (p == Property::kModelId) {
      absl::StrAppend(out, ",\"modelId\":", JsonString(e.id));
      continue;
    }
    if (p == Property::kChildrenModelCount) {
      int64_t children = 0;
      for (size_t j = 0; j < entries_.size(); ++j) {
        if (!Listed(static_cast<int64_t>(j))) continue;
        for (const auto& parent : Parents(entries_[j])) {
          if (parent.first == e.id) {
            ++children;
            break;
          }
        }
      }
      absl::StrAppend(out, ",\"childrenModelCount\":", children);
      continue;
    }
    if (p == Property::kBaseModels) {
      auto parents = Parents(e);
      if (parents.empty()) continue;
      absl::StrAppend(out, ",\"baseModels\":{\"relation\":\"",
                      kRelationNames[static_cast<int>(parents[0].second)], "\",\"models\":[");
      for (size_t k = 0; k < parents.size(); ++k) {
        auto it = by_id_.find(parents[k].first);
        absl::StrAppend(out, k ? "," : "", "{");
        if (it != by_id_.end()) {
          absl::StrAppend(out, "\"_id\":\"", entries_[it->second].oid.Hex(), "\",");
        }
        absl::StrAppend(out, "\"id\":", JsonString(parents[k].first), "}");
      }
      out->append("]}");
      continue;
    }
    for (const auto& [key, value] : e.raw) {
      if (key == name) {
        absl::StrAppend(out, ",", JsonString(key), ":", value);
        break;
      }
    }
  }
  out->push_back('}');
}

RepoLookup FixtureHub::Lookup(absl::string_view repo_id) const {
  RepoLookup result;
  auto it = by_id_.find(std::string(repo_id));
  if (it == by_id_.end() || entries_[it->second].created > end_of_day_) return result;
  result.index = it->second;
  result.kind = entries_[it->second].is_private ? RepoLookup::kPrivate : RepoLookup::kFound;
  result.token_visible = entries_[it->second].is_private;
  result.disabled = entries_[it->second].disabled;
  return result;
}

TruthGraph FixtureHub::Graph(const std::string& date) const {
  TruthGraph g;
  g.date = date;
  g.date_month = MonthOfUnix(end_of_day_ == INT64_MAX ? 4102444800 : end_of_day_);
  v1::FamilyConfig config = WithDefaults(*config_);
  std::vector<std::string> pipelines(config.new_model_filter().pipeline_tag().begin(),
                                     config.new_model_filter().pipeline_tag().end());
  std::vector<int32_t> node(entries_.size(), -1);
  int32_t n = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (Listed(static_cast<int64_t>(i))) node[i] = n++;
  }
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (node[i] < 0) continue;
    const Entry& e = entries_[i];
    auto parents = Parents(e);
    bool pipeline_ok =
        std::find(pipelines.begin(), pipelines.end(), e.pipeline_tag) != pipelines.end();
    g.AddNode(
        static_cast<int16_t>(matcher_->FirstPartyFamily(e.id)), e.has_all_time, e.all_time,
        e.downloads,
        IsPlaceholderCreated(e.created) ? TruthGraph::kPlaceholderMonth : MonthOfUnix(e.created),
        pipeline_ok, parents.empty() ? Relation::kUnknown : parents[0].second);
    for (const auto& [pid, relation] : parents) {
      auto it = by_id_.find(pid);
      if (it != by_id_.end() && node[it->second] >= 0) {
        g.AddParent(node[it->second]);
      } else {
        g.AddParent(TruthGraph::MissingParent(matcher_->FirstPartyFamily(pid)));
      }
    }
    g.EndNode();
  }
  return g;
}

std::vector<std::string> FixtureHub::ListedIds() const {
  std::vector<std::string> ids;
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (Listed(static_cast<int64_t>(i))) ids.push_back(entries_[i].id);
  }
  return ids;
}

}  // namespace hubcensus::fakehub
