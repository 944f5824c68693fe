#include "hub/entry_parser.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/dates.h"

namespace hubcensus::hub {
namespace {

namespace od = simdjson::ondemand;
using simdjson::error_code;

absl::string_view View(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Errors that mean the JSON itself is broken (the page is retried); the others mean valid JSON
// that breaks the entry schema (the entry is rejected).
bool IsDocumentError(error_code e) {
  switch (e) {
    case simdjson::INCORRECT_TYPE:
    case simdjson::NUMBER_OUT_OF_RANGE:
    case simdjson::STRING_ERROR:  // e.g. an escaped lone surrogate: valid JSON, not Unicode
    case simdjson::NO_SUCH_FIELD:
      return false;
    default:
      return true;
  }
}

const char* SchemaErrorKind(error_code e) {
  switch (e) {
    case simdjson::NUMBER_OUT_OF_RANGE:
      return "number_out_of_range";
    case simdjson::STRING_ERROR:
      return "invalid_string";
    default:
      return "wrong_type";
  }
}

enum class Outcome { kAccepted, kRejected, kDocumentError };

// Reads one entry object; on rejection `reason` says why, on a document error `error` holds it.
class EntryReader {
 public:
  EntryReader(v1::RepoSnapshot* repo, std::string* reason, error_code* error)
      : repo_(repo), reason_(reason), error_(error) {}

  Outcome Read(od::object& object) {
    for (auto field_result : object) {
      od::field field;
      if (error_code e = std::move(field_result).get(field)) return Fail(e, "entry");
      std::string_view key;
      if (error_code e = field.unescaped_key().get(key)) return Fail(e, "key");
      od::value value = field.value();
      Outcome outcome = ReadField(key, value);
      if (outcome != Outcome::kAccepted) return outcome;
    }
    return Finish();
  }

 private:
  Outcome Fail(error_code e, absl::string_view field) {
    if (IsDocumentError(e)) {
      *error_ = e;
      return Outcome::kDocumentError;
    }
    return Reject(absl::StrCat(SchemaErrorKind(e), ":", field));
  }

  Outcome Reject(std::string reason) {
    *reason_ = std::move(reason);
    return Outcome::kRejected;
  }

  // A string, or null (left empty) when `nullable`.
  Outcome String(od::value& value, absl::string_view field, size_t max_bytes, bool nullable,
                 std::string_view* out, bool* present = nullptr) {
    bool is_null = false;
    if (error_code e = value.is_null().get(is_null)) return Fail(e, field);
    if (is_null) {
      if (!nullable) return Reject(absl::StrCat("wrong_type:", field));
      if (present != nullptr) *present = false;
      *out = std::string_view();
      return Outcome::kAccepted;
    }
    if (error_code e = value.get_string().get(*out)) return Fail(e, field);
    if (out->size() > max_bytes) {
      return Reject(absl::StrCat(field == "id" ? "id_too_long" : "oversized", ":", field));
    }
    if (present != nullptr) *present = true;
    return Outcome::kAccepted;
  }

  Outcome Count(od::value& value, absl::string_view field, int64_t* out, bool* present) {
    bool is_null = false;
    if (error_code e = value.is_null().get(is_null)) return Fail(e, field);
    if (is_null) {
      *present = false;
      return Outcome::kAccepted;
    }
    if (error_code e = value.get_int64().get(*out)) return Fail(e, field);
    if (*out < 0) return Reject(absl::StrCat("negative:", field));
    *present = true;
    return Outcome::kAccepted;
  }

  Outcome Bool(od::value& value, absl::string_view field, bool* out) {
    bool is_null = false;
    if (error_code e = value.is_null().get(is_null)) return Fail(e, field);
    if (is_null) {
      *out = false;
      return Outcome::kAccepted;
    }
    if (error_code e = value.get_bool().get(*out)) return Fail(e, field);
    return Outcome::kAccepted;
  }

  Outcome Timestamp(od::value& value, absl::string_view field, int64_t* out, bool* placeholder) {
    std::string_view text;
    bool present = false;
    Outcome o = String(value, field, 64, /*nullable=*/true, &text, &present);
    if (o != Outcome::kAccepted || !present) return o;
    absl::StatusOr<int64_t> seconds = ParseHubTimestamp(View(text));
    if (!seconds.ok()) return Reject(absl::StrCat("bad_timestamp:", field));
    *out = *seconds;
    if (placeholder != nullptr) *placeholder = IsCreatedAtPlaceholder(View(text));
    return Outcome::kAccepted;
  }

  Outcome ReadField(std::string_view key, od::value& value) {
    std::string_view text;
    bool present = false;
    if (key == "id" || key == "modelId") {
      Outcome o = String(value, "id", kMaxRepoIdBytes, /*nullable=*/false, &text);
      if (o != Outcome::kAccepted) return o;
      // "id" wins over the legacy "modelId" whichever comes first.
      if (key == "id" || !has_id_) id_.assign(text.data(), text.size());
      if (key == "id") has_id_ = true;
      has_any_id_ = true;
      return o;
    }
    if (key == "_id") {
      Outcome o = String(value, "_id", 256, true, &text);
      if (o == Outcome::kAccepted) repo_->set_object_id(text.data(), text.size());
      return o;
    }
    if (key == "author") {
      Outcome o = String(value, "author", kMaxRepoIdBytes, true, &text, &present);
      if (o == Outcome::kAccepted && present) {
        repo_->set_author(text.data(), text.size());
        has_author_ = true;
      }
      return o;
    }
    if (key == "createdAt") {
      bool placeholder = false;
      int64_t seconds = 0;
      Outcome o = Timestamp(value, "createdAt", &seconds, &placeholder);
      repo_->set_created_at(seconds);
      repo_->set_created_at_placeholder(placeholder);
      return o;
    }
    if (key == "lastModified") {
      int64_t seconds = 0;
      Outcome o = Timestamp(value, "lastModified", &seconds, nullptr);
      repo_->set_last_modified(seconds);
      return o;
    }
    if (key == "downloads") {
      int64_t n = 0;
      Outcome o = Count(value, "downloads", &n, &present);
      repo_->set_downloads_30d(n);
      return o;
    }
    if (key == "downloadsAllTime") {
      int64_t n = 0;
      Outcome o = Count(value, "downloadsAllTime", &n, &present);
      if (o == Outcome::kAccepted && present) repo_->set_downloads_all_time(n);
      return o;
    }
    if (key == "likes") {
      int64_t n = 0;
      Outcome o = Count(value, "likes", &n, &present);
      repo_->set_likes(n);
      return o;
    }
    if (key == "trendingScore") {
      bool is_null = false;
      if (error_code e = value.is_null().get(is_null)) return Fail(e, "trendingScore");
      if (is_null) return Outcome::kAccepted;
      double score = 0;
      if (error_code e = value.get_double().get(score)) return Fail(e, "trendingScore");
      repo_->set_trending_score(score);
      return Outcome::kAccepted;
    }
    if (key == "pipeline_tag") {
      Outcome o = String(value, "pipeline_tag", kMaxFieldBytes, true, &text);
      if (o == Outcome::kAccepted) repo_->set_pipeline_tag(text.data(), text.size());
      return o;
    }
    if (key == "library_name") {
      Outcome o = String(value, "library_name", kMaxFieldBytes, true, &text);
      if (o == Outcome::kAccepted) repo_->set_library_name(text.data(), text.size());
      return o;
    }
    if (key == "sha") {
      Outcome o = String(value, "sha", 256, true, &text);
      if (o == Outcome::kAccepted) repo_->set_sha(text.data(), text.size());
      return o;
    }
    if (key == "private") {
      bool b = false;
      Outcome o = Bool(value, "private", &b);
      repo_->set_is_private(b);
      return o;
    }
    if (key == "disabled") {
      bool b = false;
      Outcome o = Bool(value, "disabled", &b);
      repo_->set_disabled(b);
      return o;
    }
    if (key == "gated") return Gated(value);
    if (key == "tags") return Tags(value);
    if (key == "cardData") return CardData(value);
    return Outcome::kAccepted;  // a property the metrics do not need: skipped unread
  }

  Outcome Gated(od::value& value) {
    od::json_type type;
    if (error_code e = value.type().get(type)) return Fail(e, "gated");
    if (type == od::json_type::null) {
      repo_->set_gated(v1::GATED_NONE);
    } else if (type == od::json_type::boolean) {
      bool gated = false;
      if (error_code e = value.get_bool().get(gated)) return Fail(e, "gated");
      // `true` is not a documented value; the Hub's default gating mode is "auto".
      repo_->set_gated(gated ? v1::GATED_AUTO : v1::GATED_NONE);
    } else if (type == od::json_type::string) {
      std::string_view mode;
      if (error_code e = value.get_string().get(mode)) return Fail(e, "gated");
      if (mode == "auto") {
        repo_->set_gated(v1::GATED_AUTO);
      } else if (mode == "manual") {
        repo_->set_gated(v1::GATED_MANUAL);
      } else {
        return Reject("bad_value:gated");
      }
    } else {
      return Reject("wrong_type:gated");
    }
    return Outcome::kAccepted;
  }

  Outcome Tags(od::value& value) {
    bool is_null = false;
    if (error_code e = value.is_null().get(is_null)) return Fail(e, "tags");
    if (is_null) return Outcome::kAccepted;
    od::array tags;
    if (error_code e = value.get_array().get(tags)) return Fail(e, "tags");
    tags_.clear();
    for (auto tag_result : tags) {
      od::value tag_value;
      if (error_code e = tag_result.get(tag_value)) return Fail(e, "tags");
      std::string_view tag;
      if (error_code e = tag_value.get_string().get(tag)) return Fail(e, "tags");
      if (tag.size() > kMaxFieldBytes) return Reject("oversized:tags");
      if (tags_.size() >= kMaxTags) return Reject("too_many:tags");
      // Views stay valid until the parser's next document.
      tags_.push_back(View(tag));
    }
    return Outcome::kAccepted;
  }

  // cardData is the author's YAML: only base_model is read, and an odd type there is ignored
  // rather than costing the repo.
  Outcome CardData(od::value& value) {
    od::json_type type;
    if (error_code e = value.type().get(type)) return Fail(e, "cardData");
    if (type == od::json_type::null) return Outcome::kAccepted;
    if (type != od::json_type::object) return Reject("wrong_type:cardData");
    od::object card;
    if (error_code e = value.get_object().get(card)) return Fail(e, "cardData");
    for (auto field_result : card) {
      od::field field;
      if (error_code e = std::move(field_result).get(field)) return Fail(e, "cardData");
      std::string_view key;
      if (error_code e = field.unescaped_key().get(key)) return Fail(e, "cardData");
      if (key != "base_model") continue;
      od::value base = field.value();
      od::json_type base_type;
      if (error_code e = base.type().get(base_type)) return Fail(e, "cardData");
      card_base_models_.clear();
      if (base_type == od::json_type::string) {
        std::string_view id;
        if (error_code e = base.get_string().get(id)) return Fail(e, "cardData");
        card_base_models_.push_back(View(id));
      } else if (base_type == od::json_type::array) {
        od::array list;
        if (error_code e = base.get_array().get(list)) return Fail(e, "cardData");
        for (auto item_result : list) {
          od::value item;
          if (error_code e = item_result.get(item)) return Fail(e, "cardData");
          od::json_type item_type;
          if (error_code e = item.type().get(item_type)) return Fail(e, "cardData");
          if (item_type != od::json_type::string) continue;
          std::string_view id;
          if (error_code e = item.get_string().get(id)) return Fail(e, "cardData");
          card_base_models_.push_back(View(id));
        }
      }
    }
    return Outcome::kAccepted;
  }

  Outcome Finish() {
    if (!has_any_id_) return Reject("missing_id");
    absl::string_view id = id_;
    if (id.empty() || id.front() == '/' || id.back() == '/' || id.find("//") != id.npos ||
        std::count(id.begin(), id.end(), '/') > 1) {
      return Reject("bad_id");
    }
    for (unsigned char c : id) {
      if (c <= 0x20 || c == 0x7f) return Reject("bad_id");
    }
    repo_->set_id(id_);
    size_t slash = id.find('/');
    if (!has_author_) {
      repo_->set_author(std::string(slash == id.npos ? absl::string_view() : id.substr(0, slash)));
    }
    for (v1::Parent& parent : DeriveParents(tags_, card_base_models_)) {
      *repo_->add_parents() = std::move(parent);
    }
    return Outcome::kAccepted;
  }

  v1::RepoSnapshot* repo_;
  std::string* reason_;
  error_code* error_;
  std::string id_;
  bool has_id_ = false;
  bool has_any_id_ = false;
  bool has_author_ = false;
  std::vector<absl::string_view> tags_;
  std::vector<absl::string_view> card_base_models_;
};

absl::Status DocumentError(error_code e, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat(what, " is not valid JSON: ", simdjson::error_message(e)));
}

// The byte spans of a top-level array's elements, found without decoding (used only when the
// body holds invalid UTF-8, so the valid entries can still be parsed). False when the brackets
// do not balance or something follows the array.
bool SplitTopLevelArray(absl::string_view body, std::vector<absl::string_view>* elements) {
  size_t i = 0;
  auto skip_space = [&]() {
    while (i < body.size() && absl::ascii_isspace(static_cast<unsigned char>(body[i]))) ++i;
  };
  skip_space();
  if (i >= body.size() || body[i] != '[') return false;
  ++i;
  skip_space();
  if (i < body.size() && body[i] == ']') {
    ++i;
    skip_space();
    return i == body.size();
  }
  size_t start = i;
  int depth = 0;
  bool in_string = false;
  for (; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > 256) return false;
    } else if (c == ']' || c == '}') {
      if (depth == 0) {
        if (c != ']') return false;
        elements->push_back(absl::StripAsciiWhitespace(body.substr(start, i - start)));
        ++i;
        skip_space();
        return i == body.size();
      }
      --depth;
    } else if (c == ',' && depth == 0) {
      elements->push_back(absl::StripAsciiWhitespace(body.substr(start, i - start)));
      start = i + 1;
    }
  }
  return false;
}

}  // namespace

int64_t ParsedEntries::rejected() const {
  int64_t total = 0;
  for (const auto& [reason, n] : rejected_by_reason) total += n;
  return total;
}

bool IsCreatedAtPlaceholder(absl::string_view created_at) {
  return created_at == kCreatedAtPlaceholder || created_at == kCreatedAtPlaceholder2;
}

std::vector<v1::Parent> DeriveParents(const std::vector<absl::string_view>& tags,
                                      const std::vector<absl::string_view>& card_base_models) {
  std::vector<v1::Parent> related;
  std::vector<v1::Parent> bare;
  absl::flat_hash_set<absl::string_view> related_ids;
  absl::flat_hash_set<absl::string_view> bare_ids;
  for (absl::string_view tag : tags) {
    absl::string_view rest = tag;
    if (!absl::ConsumePrefix(&rest, "base_model:") || rest.empty()) continue;
    size_t colon = rest.find(':');
    v1::Relation relation = v1::RELATION_UNKNOWN;
    if (colon != absl::string_view::npos) {
      absl::string_view name = rest.substr(0, colon);
      if (name == "finetune") relation = v1::RELATION_FINETUNE;
      if (name == "adapter") relation = v1::RELATION_ADAPTER;
      if (name == "quantized") relation = v1::RELATION_QUANTIZED;
      if (name == "merge") relation = v1::RELATION_MERGE;
    }
    if (relation != v1::RELATION_UNKNOWN) {
      absl::string_view id = rest.substr(colon + 1);
      if (id.empty() || id.size() > kMaxRepoIdBytes || !related_ids.insert(id).second) continue;
      v1::Parent& parent = related.emplace_back();
      parent.set_id(std::string(id));
      parent.set_relation(relation);
    } else if (related.empty() && rest.size() <= kMaxRepoIdBytes && bare_ids.insert(rest).second) {
      // An unknown relation word stays part of the id (ids hold no ':'), as a bare tag's.
      v1::Parent& parent = bare.emplace_back();
      parent.set_id(std::string(rest));
      parent.set_relation(v1::RELATION_UNKNOWN);
    }
  }
  std::vector<v1::Parent> parents = related.empty() ? std::move(bare) : std::move(related);
  absl::flat_hash_set<std::string> seen;
  for (const v1::Parent& parent : parents) seen.insert(parent.id());
  for (absl::string_view raw : card_base_models) {
    absl::string_view id = absl::StripAsciiWhitespace(raw);
    if (id.empty() || id.size() > kMaxRepoIdBytes || !seen.insert(std::string(id)).second) continue;
    v1::Parent& parent = parents.emplace_back();
    parent.set_id(std::string(id));
    parent.set_relation(v1::RELATION_UNKNOWN);
  }
  return parents;
}

simdjson::padded_string_view EntryParser::Pad(absl::string_view body) {
  if (buffer_.size() < body.size() + simdjson::SIMDJSON_PADDING) {
    buffer_.resize(body.size() + simdjson::SIMDJSON_PADDING);
  }
  if (!body.empty()) std::memcpy(buffer_.data(), body.data(), body.size());
  std::memset(buffer_.data() + body.size(), ' ', simdjson::SIMDJSON_PADDING);
  return simdjson::padded_string_view(buffer_.data(), body.size(), buffer_.size());
}

absl::Status EntryParser::ParseListing(absl::string_view body, ParsedEntries* out) {
  absl::Status status = ParseArray(body, out);
  if (absl::IsFailedPrecondition(status)) return ParseArrayKeepingValidUtf8(body, out);
  return status;
}

// FAILED_PRECONDITION (internal to this file) means: the body holds invalid UTF-8.
absl::Status EntryParser::ParseArray(absl::string_view body, ParsedEntries* out) {
  od::document doc;
  error_code e = parser_.iterate(Pad(body)).get(doc);
  if (e == simdjson::UTF8_ERROR) return absl::FailedPreconditionError("invalid UTF-8");
  if (e) return DocumentError(e, "listing page");
  od::array entries;
  e = doc.get_array().get(entries);
  if (e == simdjson::INCORRECT_TYPE) {
    return absl::DataLossError("listing page is not a JSON array");
  }
  if (e) return DocumentError(e, "listing page");
  ParsedEntries page;
  for (auto entry_result : entries) {
    od::value entry;
    if ((e = entry_result.get(entry))) return DocumentError(e, "listing page");
    od::object object;
    e = entry.get_object().get(object);
    if (e == simdjson::INCORRECT_TYPE) {
      ++page.rejected_by_reason["not_an_object"];
      continue;
    }
    if (e) return DocumentError(e, "listing page");
    v1::RepoSnapshot repo;
    std::string reason;
    EntryReader reader(&repo, &reason, &e);
    switch (reader.Read(object)) {
      case Outcome::kAccepted:
        page.repos.push_back(std::move(repo));
        break;
      case Outcome::kRejected:
        ++page.rejected_by_reason[reason];
        break;
      case Outcome::kDocumentError:
        return DocumentError(e, "listing page");
    }
  }
  for (auto& repo : page.repos) out->repos.push_back(std::move(repo));
  for (const auto& [reason, n] : page.rejected_by_reason) out->rejected_by_reason[reason] += n;
  return absl::OkStatus();
}

absl::Status EntryParser::ParseArrayKeepingValidUtf8(absl::string_view body, ParsedEntries* out) {
  std::vector<absl::string_view> elements;
  if (!SplitTopLevelArray(body, &elements)) {
    return absl::DataLossError("listing page is not valid JSON: unbalanced array");
  }
  std::string valid = "[";
  int64_t invalid = 0;
  for (absl::string_view element : elements) {
    if (!simdjson::validate_utf8(element.data(), element.size())) {
      ++invalid;
      continue;
    }
    if (valid.size() > 1) valid.push_back(',');
    valid.append(element.data(), element.size());
  }
  valid.push_back(']');
  ParsedEntries page;
  absl::Status status = ParseArray(valid, &page);
  if (!status.ok()) {
    return absl::IsFailedPrecondition(status)
               ? absl::DataLossError("listing page is not valid JSON: invalid UTF-8")
               : status;
  }
  for (auto& repo : page.repos) out->repos.push_back(std::move(repo));
  for (const auto& [reason, n] : page.rejected_by_reason) out->rejected_by_reason[reason] += n;
  if (invalid > 0) out->rejected_by_reason["invalid_utf8"] += invalid;
  return absl::OkStatus();
}

absl::Status EntryParser::ParseDetail(absl::string_view body, ParsedEntries* out) {
  if (!simdjson::validate_utf8(body.data(), body.size())) {
    // The object's braces still have to balance for this to be an entry and not a cut body.
    std::string wrapped = absl::StrCat("[", body, "]");
    std::vector<absl::string_view> elements;
    if (!SplitTopLevelArray(wrapped, &elements) || elements.size() != 1 ||
        !absl::StartsWith(elements[0], "{")) {
      return absl::DataLossError("repo detail is not valid JSON");
    }
    ++out->rejected_by_reason["invalid_utf8"];
    return absl::OkStatus();
  }
  od::document doc;
  error_code e = parser_.iterate(Pad(body)).get(doc);
  if (e) return DocumentError(e, "repo detail");
  od::object object;
  e = doc.get_object().get(object);
  if (e == simdjson::INCORRECT_TYPE) return absl::DataLossError("repo detail is not a JSON object");
  if (e) return DocumentError(e, "repo detail");
  v1::RepoSnapshot repo;
  std::string reason;
  EntryReader reader(&repo, &reason, &e);
  switch (reader.Read(object)) {
    case Outcome::kAccepted:
      out->repos.push_back(std::move(repo));
      break;
    case Outcome::kRejected:
      ++out->rejected_by_reason[reason];
      break;
    case Outcome::kDocumentError:
      return DocumentError(e, "repo detail");
  }
  return absl::OkStatus();
}

}  // namespace hubcensus::hub
