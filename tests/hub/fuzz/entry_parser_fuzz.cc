// Any bytes as a listing page and as a detail: never a crash, and the contract holds (an error
// appends nothing; an accepted entry has a valid id).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "hub/entry_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto* parser = new hubcensus::hub::EntryParser();
  absl::string_view body(reinterpret_cast<const char*>(data), size);
  hubcensus::hub::ParsedEntries page;
  absl::Status status = parser->ParseListing(body, &page);
  if (!status.ok() && (!page.repos.empty() || !page.rejected_by_reason.empty())) std::abort();
  for (const auto& repo : page.repos) {
    if (repo.id().empty() || repo.id().size() > hubcensus::hub::kMaxRepoIdBytes) std::abort();
  }
  hubcensus::hub::ParsedEntries detail;
  status = parser->ParseDetail(body, &detail);
  if (status.ok() && detail.repos.size() + detail.rejected() != 1) std::abort();
  return 0;
}
