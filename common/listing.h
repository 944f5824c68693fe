// Moved: the Hub's listing vocabulary is hub/listing_query.h (namespace hub). This forwarding
// header keeps the callers outside the Hub client's owners (fakehub, bench, their tests) building
// until they include hub/listing_query.h themselves; new code must not include it.
#ifndef HUBCENSUS_COMMON_LISTING_H_
#define HUBCENSUS_COMMON_LISTING_H_

#include "hub/listing_query.h"

namespace hubcensus {

using hub::DefaultListingExpand;
using hub::FirstListingUrl;
using hub::HubListingExpandValues;
using hub::UrlEncode;
using hub::WithListingDefaults;

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_LISTING_H_
