// Reads the PNG screenshots headless Chromium takes, so a test can tell a drawn page from a
// blank one.
#ifndef HUBCENSUS_TESTS_TESTING_PNG_H_
#define HUBCENSUS_TESTS_TESTING_PNG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hubcensus::testing {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint32_t> rgb;  // 0xRRGGBB per pixel, row-major
};

// 8-bit RGB or RGBA, non-interlaced (what Chromium writes).
absl::StatusOr<Image> DecodePng(const std::string& bytes);

// Pixels that differ from the most common colour, and how many distinct colours there are.
struct ImageStats {
  int64_t non_background_pixels = 0;
  int64_t distinct_colours = 0;
};
ImageStats Analyse(const Image& image);

}  // namespace hubcensus::testing

#endif  // HUBCENSUS_TESTS_TESTING_PNG_H_
