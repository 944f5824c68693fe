#include "embedded/truth_check.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace hubcensus {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string Show(element e) {
  std::string s = simdjson::minify(e);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

bool IsNumber(element_type t) {
  return t == element_type::INT64 || t == element_type::UINT64 || t == element_type::DOUBLE;
}

double AsDouble(element e) {
  switch (e.type()) {
    case element_type::INT64:
      return static_cast<double>(int64_t(e));
    case element_type::UINT64:
      return static_cast<double>(uint64_t(e));
    default:
      return double(e);
  }
}

class Walker {
 public:
  Walker(const std::vector<std::string>& ignored, int max) : ignored_(ignored), max_(max) {}

  void Compare(element a, element b, const std::string& path) {
    if (static_cast<int>(diffs_.size()) >= max_) return;
    element_type ta = a.type(), tb = b.type();
    if (IsNumber(ta) && IsNumber(tb)) {
      double x = AsDouble(a), y = AsDouble(b);
      double scale = std::max({1.0, std::fabs(x), std::fabs(y)});
      if (std::fabs(x - y) > 1e-9 * scale) Add(path, Show(a), Show(b));
      return;
    }
    if (ta != tb) {
      Add(path, Show(a), Show(b));
      return;
    }
    switch (ta) {
      case element_type::OBJECT: {
        std::map<std::string, element> ka, kb;
        simdjson::dom::object oa, ob;
        if (a.get_object().get(oa) || b.get_object().get(ob)) return;
        for (auto field : oa) ka[std::string(field.key)] = field.value;
        for (auto field : ob) kb[std::string(field.key)] = field.value;
        for (const auto& [k, v] : ka) {
          if (Ignored(k)) continue;
          std::string sub = path.empty() ? k : absl::StrCat(path, ".", k);
          auto it = kb.find(k);
          if (it == kb.end()) {
            Add(sub, Show(v), "(absent)");
          } else {
            Compare(v, it->second, sub);
          }
        }
        for (const auto& [k, v] : kb) {
          if (!Ignored(k) && ka.find(k) == ka.end()) {
            Add(path.empty() ? k : absl::StrCat(path, ".", k), "(absent)", Show(v));
          }
        }
        return;
      }
      case element_type::ARRAY: {
        simdjson::dom::array aa, ab;
        if (a.get_array().get(aa) || b.get_array().get(ab)) return;
        std::vector<element> ea, eb;
        for (element e : aa) ea.push_back(e);
        for (element e : ab) eb.push_back(e);
        if (ea.size() != eb.size()) {
          Add(absl::StrCat(path, ".length"), absl::StrCat(ea.size()), absl::StrCat(eb.size()));
        }
        for (size_t i = 0; i < std::min(ea.size(), eb.size()); ++i) {
          Compare(ea[i], eb[i], Label(path, ea[i], i));
        }
        return;
      }
      case element_type::STRING:
        if (std::string_view(a) != std::string_view(b)) Add(path, Show(a), Show(b));
        return;
      case element_type::BOOL:
        if (bool(a) != bool(b)) Add(path, Show(a), Show(b));
        return;
      default:
        return;
    }
  }

  std::vector<std::string> diffs() && { return std::move(diffs_); }

 private:
  // "families[Qwen]" reads better than "families[0]" when the element names itself.
  static std::string Label(const std::string& path, element e, size_t i) {
    if (e.type() == element_type::OBJECT) {
      for (const char* key : {"family", "region", "month"}) {
        std::string_view v;
        if (!e[key].get(v)) return absl::StrCat(path, "[", std::string(v), "]");
      }
    }
    return absl::StrCat(path, "[", i, "]");
  }
  bool Ignored(const std::string& k) const {
    return std::find(ignored_.begin(), ignored_.end(), k) != ignored_.end();
  }
  void Add(const std::string& path, const std::string& ours, const std::string& truth) {
    if (static_cast<int>(diffs_.size()) < max_) {
      diffs_.push_back(absl::StrCat(path, ": ", ours, " vs ", truth));
    }
  }

  const std::vector<std::string>& ignored_;
  int max_;
  std::vector<std::string> diffs_;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> JsonDifferences(
    absl::string_view ours, absl::string_view truth, const std::vector<std::string>& ignored_keys,
    int max_differences) {
  simdjson::dom::parser pa, pb;
  element a, b;
  if (auto err = pa.parse(ours.data(), ours.size()).get(a)) {
    return absl::InvalidArgumentError(
        absl::StrCat("our census JSON does not parse: ", simdjson::error_message(err)));
  }
  if (auto err = pb.parse(truth.data(), truth.size()).get(b)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ground-truth JSON does not parse: ", simdjson::error_message(err)));
  }
  Walker w(ignored_keys, max_differences);
  w.Compare(a, b, "");
  return std::move(w).diffs();
}

}  // namespace hubcensus
