#include "fakehub/listing.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/dates.h"
#include "fakehub/json_text.h"
#include "simdjson.h"

namespace hubcensus::fakehub {
namespace {

struct PropertyInfo {
  Property property;
  const char* name;
  bool listing;  // accepted by the listing's expand (else per-repo only, or not expandable)
  bool per_repo;
};

constexpr PropertyInfo kProperties[] = {
    {Property::kAuthor, "author", true, true},
    {Property::kCardData, "cardData", true, true},
    {Property::kConfig, "config", true, true},
    {Property::kCreatedAt, "createdAt", true, true},
    {Property::kDisabled, "disabled", true, true},
    {Property::kDownloads, "downloads", true, true},
    {Property::kDownloadsAllTime, "downloadsAllTime", true, true},
    {Property::kEvalResults, "evalResults", true, true},
    {Property::kGated, "gated", true, true},
    {Property::kGguf, "gguf", true, true},
    {Property::kInference, "inference", true, true},
    {Property::kInferenceProviderMapping, "inferenceProviderMapping", true, true},
    {Property::kLastModified, "lastModified", true, true},
    {Property::kLibraryName, "library_name", true, true},
    {Property::kLikes, "likes", true, true},
    {Property::kMaskToken, "mask_token", true, true},
    {Property::kModelIndex, "model-index", true, true},
    {Property::kPipelineTag, "pipeline_tag", true, true},
    {Property::kPrivate, "private", true, true},
    {Property::kSafetensors, "safetensors", true, true},
    {Property::kSha, "sha", true, true},
    {Property::kSiblings, "siblings", true, true},
    {Property::kSpaces, "spaces", true, true},
    {Property::kTags, "tags", true, true},
    {Property::kTransformersInfo, "transformersInfo", true, true},
    {Property::kTrendingScore, "trendingScore", true, true},
    {Property::kWidgetData, "widgetData", true, true},
    {Property::kResourceGroup, "resourceGroup", true, true},
    {Property::kBaseModels, "baseModels", false, true},
    {Property::kChildrenModelCount, "childrenModelCount", false, true},
    {Property::kUsedStorage, "usedStorage", false, true},
    {Property::kModelId, "modelId", false, false},
};

bool IsDateKey(SortField f) { return f == SortField::kCreatedAt || f == SortField::kLastModified; }

absl::Status BadRequest(absl::string_view message) { return absl::InvalidArgumentError(message); }

}  // namespace

const char* PropertyName(Property p) {
  for (const auto& info : kProperties) {
    if (info.property == p) return info.name;
  }
  return "";
}

std::optional<Property> ParseExpand(absl::string_view value, bool per_repo) {
  for (const auto& info : kProperties) {
    if (value == info.name && (per_repo ? info.per_repo : info.listing)) return info.property;
  }
  return std::nullopt;
}

std::vector<std::string> ExpandNames(bool per_repo) {
  std::vector<std::string> out;
  for (const auto& info : kProperties) {
    if (per_repo ? info.per_repo : info.listing) out.push_back(info.name);
  }
  return out;
}

const FieldList& DefaultListingFields() {
  static const FieldList* fields =
      new FieldList{Property::kLikes,       Property::kTrendingScore, Property::kPrivate,
                    Property::kDownloads,   Property::kTags,          Property::kPipelineTag,
                    Property::kLibraryName, Property::kCreatedAt,     Property::kModelId};
  return *fields;
}

const FieldList& FullListingFields() {
  static const FieldList* fields =
      new FieldList{Property::kAuthor,       Property::kGated,       Property::kInference,
                    Property::kLastModified, Property::kLikes,       Property::kTrendingScore,
                    Property::kPrivate,      Property::kSha,         Property::kDownloads,
                    Property::kTags,         Property::kPipelineTag, Property::kLibraryName,
                    Property::kDisabled,     Property::kCreatedAt,   Property::kModelId,
                    Property::kSiblings};
  return *fields;
}

const FieldList& DefaultRepoFields() {
  static const FieldList* fields = new FieldList{Property::kPrivate,
                                                 Property::kPipelineTag,
                                                 Property::kLibraryName,
                                                 Property::kTags,
                                                 Property::kDownloads,
                                                 Property::kLikes,
                                                 Property::kModelId,
                                                 Property::kAuthor,
                                                 Property::kSha,
                                                 Property::kLastModified,
                                                 Property::kGated,
                                                 Property::kDisabled,
                                                 Property::kWidgetData,
                                                 Property::kModelIndex,
                                                 Property::kConfig,
                                                 Property::kCardData,
                                                 Property::kTransformersInfo,
                                                 Property::kSiblings,
                                                 Property::kSpaces,
                                                 Property::kCreatedAt,
                                                 Property::kSafetensors,
                                                 Property::kUsedStorage};
  return *fields;
}

absl::StatusOr<SortField> ParseSortField(absl::string_view text) {
  if (text.empty() || text == "trendingScore" || text == "trending") {
    return SortField::kTrendingScore;
  }
  if (text == "createdAt") return SortField::kCreatedAt;
  if (text == "lastModified") return SortField::kLastModified;
  if (text == "downloads") return SortField::kDownloads;
  if (text == "likes") return SortField::kLikes;
  return absl::InvalidArgumentError(absl::StrCat(
      "\"sort\" must be one of [trendingScore, createdAt, lastModified, downloads, likes], got \"",
      text, "\""));
}

const char* SortFieldName(SortField field) {
  switch (field) {
    case SortField::kTrendingScore:
      return "trendingScore";
    case SortField::kCreatedAt:
      return "createdAt";
    case SortField::kLastModified:
      return "lastModified";
    case SortField::kDownloads:
      return "downloads";
    case SortField::kLikes:
      return "likes";
  }
  return "trendingScore";
}

std::string ObjectId::Hex() const {
  static const char* kHex = "0123456789abcdef";
  std::string out(24, '0');
  for (int i = 0; i < 8; ++i) out[i] = kHex[(time >> (28 - 4 * i)) & 15];
  for (int i = 0; i < 16; ++i) out[8 + i] = kHex[(rest >> (60 - 4 * i)) & 15];
  return out;
}

std::optional<ObjectId> ObjectId::FromHex(absl::string_view hex) {
  if (hex.size() != 24) return std::nullopt;
  ObjectId oid;
  for (int i = 0; i < 24; ++i) {
    char c = hex[i];
    int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (v < 0) return std::nullopt;
    if (i < 8) {
      oid.time = (oid.time << 4) | static_cast<uint32_t>(v);
    } else {
      oid.rest = (oid.rest << 4) | static_cast<uint64_t>(v);
    }
  }
  return oid;
}

namespace {

absl::StatusOr<FieldList> ParseExpandValues(const std::vector<std::string>& values, bool per_repo) {
  std::vector<bool> seen(static_cast<size_t>(Property::kModelId) + 1, false);
  for (size_t k = 0; k < values.size(); ++k) {
    auto p = ParseExpand(values[k], per_repo);
    if (!p) {
      return BadRequest(absl::StrCat("\"expand[", k, "]\" must be one of [",
                                     absl::StrJoin(ExpandNames(per_repo), ", "), "], got \"",
                                     values[k], "\""));
    }
    seen[static_cast<size_t>(*p)] = true;
  }
  FieldList fields;
  for (size_t i = 0; i < seen.size(); ++i) {
    if (seen[i]) fields.push_back(static_cast<Property>(i));
  }
  return fields;
}

std::vector<std::string> ExpandValues(const std::vector<std::pair<std::string, std::string>>& query,
                                      bool* present) {
  std::vector<std::string> values;
  *present = false;
  for (const auto& [k, v] : query) {
    if (k == "expand" || k == "expand[]") {
      *present = true;
      values.push_back(v);
    }
  }
  return values;
}

}  // namespace

absl::StatusOr<ListingRequest> ParseListingRequest(
    const std::vector<std::pair<std::string, std::string>>& query) {
  ListingRequest request;
  bool full = false, card_data = false, config = false;
  for (const auto& [k, v] : query) {
    if (k == "sort") {
      auto sort = ParseSortField(v);
      if (!sort.ok()) return sort.status();
      request.sort = *sort;
    } else if (k == "limit") {
      int limit = 0;
      if (!absl::SimpleAtoi(v, &limit) || limit < 1) {
        return BadRequest(absl::StrCat("\"limit\" must be a positive integer, got \"", v, "\""));
      }
      request.limit = std::min(limit, kMaxPageSize);
    } else if (k == "search") {
      request.filter.search = v;
    } else if (k == "author") {
      request.filter.author = v;
    } else if (k == "filter" || k == "filter[]") {
      for (absl::string_view t : absl::StrSplit(v, ',', absl::SkipEmpty())) {
        request.filter.tags.emplace_back(t);
      }
    } else if (k == "pipeline_tag") {
      request.filter.pipeline_tag = v;
    } else if (k == "cursor") {
      request.cursor = v;
    } else if (k == "full") {
      full = v.empty() || v == "true" || v == "1";
    } else if (k == "cardData") {
      card_data = v.empty() || v == "true" || v == "1";
    } else if (k == "config") {
      config = v.empty() || v == "true" || v == "1";
    }
    // direction is deprecated and ignored; other parameters are ignored as the Hub does.
  }
  bool has_expand = false;
  std::vector<std::string> expand = ExpandValues(query, &has_expand);
  if (has_expand) {
    if (full || card_data || config) {
      return BadRequest("\"expand\" cannot be combined with \"full\", \"cardData\" or \"config\"");
    }
    auto fields = ParseExpandValues(expand, /*per_repo=*/false);
    if (!fields.ok()) return fields.status();
    request.fields = *std::move(fields);
  } else {
    request.fields = full ? FullListingFields() : DefaultListingFields();
    if (config) request.fields.push_back(Property::kConfig);
    if (card_data) request.fields.push_back(Property::kCardData);
  }
  if (!request.cursor.empty()) {
    auto keyset = DecodeCursor(request.cursor, request.sort);
    if (!keyset.ok()) return keyset.status();
  }
  return request;
}

absl::StatusOr<std::optional<FieldList>> ParseRepoExpand(
    const std::vector<std::pair<std::string, std::string>>& query) {
  bool has_expand = false;
  std::vector<std::string> expand = ExpandValues(query, &has_expand);
  if (!has_expand) return std::optional<FieldList>();
  auto fields = ParseExpandValues(expand, /*per_repo=*/true);
  if (!fields.ok()) return fields.status();
  return std::optional<FieldList>(*std::move(fields));
}

std::string EncodeCursor(SortField sort, double key, const ObjectId& oid) {
  std::string value;
  if (IsDateKey(sort)) {
    value = JsonString(FormatHubTimestamp(static_cast<int64_t>(key)));
  } else {
    value = JsonNumber(key);
  }
  const char* name = SortFieldName(sort);
  std::string json =
      absl::StrCat(R"({"$or":[{")", name, "\":", value, R"(,"_id":{"$gt":")", oid.Hex(),
                   R"("}},{")", name, R"(":{"$lt":)", value, R"(}},{")", name, R"(":null}]})");
  return absl::Base64Escape(json);
}

absl::StatusOr<Keyset> DecodeCursor(absl::string_view cursor, SortField sort) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("Invalid cursor: ", why));
  };
  std::string json;
  if (!absl::Base64Unescape(cursor, &json)) return invalid("not base64");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS) return invalid("not JSON");
  // Exactly the Hub's keyset: {"$or":[{k:v,"_id":{"$gt":id}},{k:{"$lt":v}},{k:null}]}.
  simdjson::dom::object root;
  simdjson::dom::array alternatives;
  if (doc.get(root) != simdjson::SUCCESS || root.size() != 1 ||
      root["$or"].get(alternatives) != simdjson::SUCCESS || alternatives.size() != 3) {
    return invalid("not a three-branch $or keyset");
  }
  const char* name = SortFieldName(sort);
  simdjson::dom::object after, before, null_branch;
  if (alternatives.at(0).get(after) != simdjson::SUCCESS || after.size() != 2 ||
      alternatives.at(1).get(before) != simdjson::SUCCESS || before.size() != 1 ||
      alternatives.at(2).get(null_branch) != simdjson::SUCCESS || null_branch.size() != 1) {
    return invalid("bad keyset branches");
  }
  simdjson::dom::element value, lt_value, null_value;
  if (after[name].get(value) != simdjson::SUCCESS ||
      before[name]["$lt"].get(lt_value) != simdjson::SUCCESS ||
      null_branch[name].get(null_value) != simdjson::SUCCESS) {
    return invalid(absl::StrCat("the cursor is not for sort=", name));
  }
  simdjson::dom::object lt_object;
  if (before[name].get(lt_object) != simdjson::SUCCESS || lt_object.size() != 1 ||
      !null_value.is_null() || simdjson::minify(value) != simdjson::minify(lt_value)) {
    return invalid("inconsistent keyset branches");
  }
  Keyset keyset;
  if (IsDateKey(sort)) {
    std::string_view text;
    if (value.get(text) != simdjson::SUCCESS) return invalid("bad date");
    auto t = ParseHubTimestamp(absl::string_view(text.data(), text.size()));
    if (!t.ok()) return invalid("bad date");
    keyset.key = static_cast<double>(*t);
  } else {
    double v = 0;
    if (value.get(v) != simdjson::SUCCESS) return invalid("bad key");
    keyset.key = v;
  }
  simdjson::dom::object id_object;
  std::string_view id;
  if (after["_id"].get(id_object) != simdjson::SUCCESS || id_object.size() != 1 ||
      id_object["$gt"].get(id) != simdjson::SUCCESS) {
    return invalid("no _id");
  }
  auto oid = ObjectId::FromHex(absl::string_view(id.data(), id.size()));
  if (!oid) return invalid("bad _id");
  keyset.oid = *oid;
  return keyset;
}

std::shared_ptr<const ListingEngine::Order> ListingEngine::OrderFor(SortField field) {
  absl::MutexLock lock(&mu_);
  auto& slot = orders_[static_cast<int>(field)];
  uint64_t version = catalog_->KeyVersion(field);
  if (slot != nullptr && slot->version == version) return slot;
  auto order = std::make_shared<Order>();
  order->version = version;
  int64_t n = catalog_->Count();
  std::vector<double> keys(static_cast<size_t>(n));
  std::vector<ObjectId> oids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    keys[i] = catalog_->SortKey(i, field);
    oids[i] = catalog_->Oid(i);
  }
  order->index.resize(static_cast<size_t>(n));
  std::iota(order->index.begin(), order->index.end(), 0u);
  std::sort(order->index.begin(), order->index.end(), [&](uint32_t a, uint32_t b) {
    if (keys[a] != keys[b]) return keys[a] > keys[b];
    return oids[a] < oids[b];
  });
  order->key.resize(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) order->key[k] = keys[order->index[k]];
  slot = order;
  return slot;
}

absl::StatusOr<ServedPage> ListingEngine::Page(const ListingRequest& request) {
  std::shared_ptr<const Order> order = OrderFor(request.sort);
  size_t n = order->index.size();
  size_t pos = 0;
  if (!request.cursor.empty()) {
    auto keyset = DecodeCursor(request.cursor, request.sort);
    if (!keyset.ok()) return keyset.status();
    // First position after the keyset: key < k, or key == k and _id > oid.
    size_t lo = 0, hi = n;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      double k = order->key[mid];
      bool after =
          k < keyset->key || (k == keyset->key && keyset->oid < catalog_->Oid(order->index[mid]));
      if (after) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    pos = lo;
  }
  ServedPage page;
  const ListingFilter& filter = request.filter;
  bool filtered = !filter.search.empty() || !filter.author.empty() || !filter.tags.empty() ||
                  !filter.pipeline_tag.empty();
  auto wanted = [&](int64_t i) {
    bool listed = request.with_token ? catalog_->ListedWithToken(i) : catalog_->Listed(i);
    return listed && (!filtered || catalog_->Matches(i, filter));
  };
  // The listed entry just before the page, for the repeated-entry fault.
  for (size_t back = pos, steps = 0; back > 0 && steps < 10000; --back, ++steps) {
    int64_t i = order->index[back - 1];
    if (wanted(i)) {
      page.previous_index = i;
      break;
    }
  }
  int64_t last = -1;
  size_t last_pos = 0;
  for (; pos < n && static_cast<int>(page.entries.size()) < request.limit; ++pos) {
    int64_t i = order->index[pos];
    if (!wanted(i)) continue;
    std::string entry;
    catalog_->AppendEntry(i, request.fields, &entry);
    page.entries.push_back(std::move(entry));
    page.indices.push_back(i);
    last = i;
    last_pos = pos;
  }
  if (last >= 0 && static_cast<int>(page.entries.size()) == request.limit) {
    // A next page only when another entry exists after this one.
    for (size_t p = pos; p < n; ++p) {
      if (wanted(order->index[p])) {
        page.next_cursor = EncodeCursor(request.sort, order->key[last_pos], catalog_->Oid(last));
        break;
      }
    }
  }
  return page;
}

}  // namespace hubcensus::fakehub
