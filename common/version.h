#ifndef HUBCENSUS_COMMON_VERSION_H_
#define HUBCENSUS_COMMON_VERSION_H_

namespace hubcensus {
inline constexpr char kVersion[] = "0.1.0";
// What the Hub sees: it names the project, and never carries a token.
inline constexpr char kUserAgent[] = "hubcensus/0.1.0 (+model census; libcurl)";
}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_VERSION_H_
