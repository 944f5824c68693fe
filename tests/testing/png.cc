#include "tests/testing/png.h"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace hubcensus::testing {
namespace {

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

int Paeth(int a, int b, int c) {
  int p = a + b - c;
  int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  if (pb <= pc) return b;
  return c;
}

}  // namespace

absl::StatusOr<Image> DecodePng(const std::string& bytes) {
  static const unsigned char kSignature[8] = {137, 80, 78, 71, 13, 10, 26, 10};
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 8 || std::memcmp(data, kSignature, 8) != 0) {
    return absl::InvalidArgumentError("not a PNG file");
  }
  Image img;
  int bit_depth = 0, colour_type = 0, interlace = 0;
  std::string idat;
  size_t pos = 8;
  while (pos + 8 <= bytes.size()) {
    uint32_t len = BigEndian32(data + pos);
    std::string type(bytes.data() + pos + 4, 4);
    if (pos + 12 + len > bytes.size()) return absl::InvalidArgumentError("truncated PNG chunk");
    const unsigned char* body = data + pos + 8;
    if (type == "IHDR") {
      img.width = static_cast<int>(BigEndian32(body));
      img.height = static_cast<int>(BigEndian32(body + 4));
      bit_depth = body[8];
      colour_type = body[9];
      interlace = body[12];
    } else if (type == "IDAT") {
      idat.append(reinterpret_cast<const char*>(body), len);
    } else if (type == "IEND") {
      break;
    }
    pos += 12 + len;
  }
  if (bit_depth != 8 || (colour_type != 2 && colour_type != 6) || interlace != 0) {
    return absl::UnimplementedError(
        absl::StrCat("PNG kind not handled: depth ", bit_depth, " colour type ", colour_type));
  }
  int bpp = colour_type == 6 ? 4 : 3;
  size_t stride = static_cast<size_t>(img.width) * bpp;
  uLongf raw_size = (stride + 1) * img.height;
  std::string raw(raw_size, '\0');
  if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &raw_size,
                 reinterpret_cast<const Bytef*>(idat.data()), idat.size()) != Z_OK) {
    return absl::InvalidArgumentError("PNG image data does not inflate");
  }
  std::vector<unsigned char> prev(stride, 0), cur(stride);
  img.rgb.resize(static_cast<size_t>(img.width) * img.height);
  for (int y = 0; y < img.height; ++y) {
    const auto* row = reinterpret_cast<const unsigned char*>(raw.data()) + y * (stride + 1);
    int filter = row[0];
    for (size_t x = 0; x < stride; ++x) {
      int a = x >= static_cast<size_t>(bpp) ? cur[x - bpp] : 0;
      int b = prev[x];
      int c = x >= static_cast<size_t>(bpp) ? prev[x - bpp] : 0;
      int v = row[1 + x];
      switch (filter) {
        case 1:
          v += a;
          break;
        case 2:
          v += b;
          break;
        case 3:
          v += (a + b) / 2;
          break;
        case 4:
          v += Paeth(a, b, c);
          break;
        default:
          break;
      }
      cur[x] = static_cast<unsigned char>(v);
    }
    for (int x = 0; x < img.width; ++x) {
      const unsigned char* px = cur.data() + x * bpp;
      img.rgb[static_cast<size_t>(y) * img.width + x] =
          (uint32_t{px[0]} << 16) | (uint32_t{px[1]} << 8) | px[2];
    }
    std::swap(prev, cur);
  }
  return img;
}

ImageStats Analyse(const Image& image) {
  std::unordered_map<uint32_t, int64_t> counts;
  for (uint32_t p : image.rgb) ++counts[p];
  ImageStats stats;
  stats.distinct_colours = static_cast<int64_t>(counts.size());
  int64_t most = 0;
  for (const auto& [colour, n] : counts) most = std::max(most, n);
  stats.non_background_pixels = static_cast<int64_t>(image.rgb.size()) - most;
  return stats;
}

}  // namespace hubcensus::testing
