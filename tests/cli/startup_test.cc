// What the binary loads when it starts. A `query --data_dir` is a fresh process, so the shared
// libraries the dynamic linker maps and relocates are part of every answer's time (issue 15):
// release builds (HUBCENSUS_STATIC_DEPS) link gRPC, protobuf, Abseil and RE2 in, and load libcurl
// only when a role first speaks HTTP (cmake/libcurl_on_demand.c).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/testing/subprocess.h"

namespace hubcensus {
namespace {

using ::testing::HasSubstr;
using testing::HubcensusBinary;
using testing::RunToCompletion;

// The libraries the dynamic linker loads for the binary, by file name (what ldd lists).
std::vector<std::string> LoadedLibraries(std::string* listing) {
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "--version"}, listing, absl::Seconds(60),
                            {"LD_TRACE_LOADED_OBJECTS=1"}),
            0)
      << *listing;
  std::vector<std::string> names;
  for (absl::string_view line : absl::StrSplit(*listing, '\n', absl::SkipWhitespace())) {
    line = absl::StripAsciiWhitespace(line);
    names.emplace_back(line.substr(0, line.find_first_of(" \t")));
  }
  return names;
}

TEST(Startup, LoadsNeitherGrpcProtobufAbseilNorCurl) {
#ifndef HUBCENSUS_STATIC_DEPS
  GTEST_SKIP() << "built without HUBCENSUS_STATIC_DEPS (the release preset sets it)";
#endif
  std::string listing;
  std::vector<std::string> libraries = LoadedLibraries(&listing);
  ASSERT_THAT(listing, HasSubstr("libc.so")) << "not the dynamic linker's listing";
  for (const std::string& name : libraries) {
    for (const char* linked_in : {"libgrpc", "libgpr", "libupb", "libprotobuf", "libabsl_",
                                  "libre2", "libcares", "libcurl"}) {
      EXPECT_NE(name.rfind(linked_in, 0), 0u) << name << " is loaded at start:\n" << listing;
    }
  }
}

}  // namespace
}  // namespace hubcensus
