// Pins the generated Hub byte for byte: for a few seeds, sizes and access options, a digest of
// every entry (all properties, at three dates, before and after mutation bursts), of every sort
// key and of the lineage graph the truth is computed from. The digests were computed by the
// build of main before the generator was split into phases and its scenario moved to a
// textproto (fakehub/scenario_article.textproto); a change to either that moves any byte of
// the Hub fails here.
#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "config/family_config.h"
#include "fakehub/catalog.h"
#include "fakehub/generated_hub.h"
#include "fakehub/truth.h"

namespace hubcensus::fakehub {
namespace {

// FNV-1a over a byte stream, with typed appends.
class Digest {
 public:
  void Bytes(absl::string_view s) {
    for (unsigned char c : s) {
      h_ ^= c;
      h_ *= 1099511628211ull;
    }
    Int(static_cast<int64_t>(s.size()));
  }
  void Int(int64_t v) {
    for (int k = 0; k < 8; ++k) {
      h_ ^= static_cast<uint8_t>(v >> (8 * k));
      h_ *= 1099511628211ull;
    }
  }
  void Real(double d) { Bytes(absl::StrFormat("%.17g", d)); }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 14695981039346656037ull;
};

FieldList EveryProperty() {
  FieldList all;
  for (int p = 0; p <= static_cast<int>(Property::kModelId); ++p) {
    all.push_back(static_cast<Property>(p));
  }
  return all;
}

void DigestCatalog(const GeneratedHub& hub, Digest* d) {
  static const FieldList kAll = EveryProperty();
  d->Int(hub.Count());
  std::string entry;
  for (int64_t i = 0; i < hub.Count(); ++i) {
    d->Int(hub.Listed(i) | hub.ListedWithToken(i) << 1);
    d->Bytes(hub.Id(i));
    entry.clear();
    hub.AppendEntry(i, kAll, &entry);
    d->Bytes(entry);
    for (SortField f : {SortField::kTrendingScore, SortField::kCreatedAt, SortField::kLastModified,
                        SortField::kDownloads, SortField::kLikes}) {
      d->Real(hub.SortKey(i, f));
    }
  }
}

void DigestGraph(const TruthGraph& g, Digest* d) {
  d->Bytes(g.date);
  d->Int(g.date_month);
  d->Int(static_cast<int64_t>(g.first_party.size()));
  for (size_t k = 0; k < g.first_party.size(); ++k) {
    d->Int(g.first_party[k]);
    d->Int(g.downloads_all_time[k]);
    d->Int(g.has_all_time[k]);
    d->Int(g.downloads_30d[k]);
    d->Int(g.created_month[k]);
    d->Int(g.share_pipeline[k]);
    d->Int(g.first_relation[k]);
  }
  for (uint32_t b : g.parent_begin) d->Int(b);
  for (int32_t p : g.parents) d->Int(p);
}

struct PinCase {
  int64_t repos;
  uint64_t seed;
  double private_fraction;
  double gated_no_access_fraction;
  uint64_t digest;
};

void PrintTo(const PinCase& c, std::ostream* os) {
  *os << c.repos << " repos, seed " << c.seed << ", private " << c.private_fraction << ", gated "
      << c.gated_no_access_fraction;
}

std::string PinCaseName(const ::testing::TestParamInfo<PinCase>& info) {
  return absl::StrFormat("Repos%dSeed%dPrivate%dGated%d", info.param.repos, info.param.seed,
                         static_cast<int>(info.param.private_fraction * 100),
                         static_cast<int>(info.param.gated_no_access_fraction * 100));
}

class GeneratedHubPin : public ::testing::TestWithParam<PinCase> {};

TEST_P(GeneratedHubPin, EveryByteMatchesTheDigestOfMain) {
  const PinCase& c = GetParam();
  const v1::FamilyConfig& config = DefaultFamilyConfig();
  FamilyMatcher matcher(config);
  GeneratedHubOptions options;
  options.repos = c.repos;
  options.seed = c.seed;
  options.private_fraction = c.private_fraction;
  options.gated_no_access_fraction = c.gated_no_access_fraction;
  auto hub = GeneratedHub::Create(options, &config, &matcher);
  ASSERT_TRUE(hub.ok()) << hub.status();
  Digest d;
  for (const char* date : {"2025-12-31", "2025-10-31", "2023-06-30"}) {
    auto day = DayOfDate(date);
    ASSERT_TRUE(day.ok()) << day.status();
    (*hub)->SetDay(*day);
    DigestCatalog(**hub, &d);
    DigestGraph((*hub)->GraphAt(*day), &d);
    for (const std::string& id : (*hub)->ListedIdsAt(*day)) d.Bytes(id);
  }
  (*hub)->SetDay(kLastDay);
  for (uint64_t nonce = 1; nonce <= 3; ++nonce) (*hub)->Mutate(nonce);
  DigestCatalog(**hub, &d);
  DigestGraph((*hub)->GraphAt(kLastDay), &d);
  EXPECT_EQ(d.value(), c.digest) << absl::StrFormat("digest 0x%016x", d.value());
}

INSTANTIATE_TEST_SUITE_P(MainDigests, GeneratedHubPin,
                         ::testing::Values(PinCase{2000, 1, 0, 0, 0x5e75e08716ecef49ull},
                                           PinCase{20000, 1, 0, 0, 0xdd5b4bf60930db32ull},
                                           PinCase{5000, 7, 0.1, 0.3, 0x86d9c75c50b8f654ull},
                                           PinCase{30000, 42, 0, 0.5, 0x97a5a46ea7fe233dull}),
                         PinCaseName);

}  // namespace
}  // namespace hubcensus::fakehub
