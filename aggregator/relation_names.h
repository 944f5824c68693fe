// The Hub's relation words (base_model:<relation>:<id>) for the Relation enum.
#ifndef HUBCENSUS_AGGREGATOR_RELATION_NAMES_H_
#define HUBCENSUS_AGGREGATOR_RELATION_NAMES_H_

#include "hubcensus/v1/repo.pb.h"

namespace hubcensus::aggregator {

inline const char* RelationName(v1::Relation relation) {
  switch (relation) {
    case v1::RELATION_FINETUNE:
      return "finetune";
    case v1::RELATION_ADAPTER:
      return "adapter";
    case v1::RELATION_QUANTIZED:
      return "quantized";
    case v1::RELATION_MERGE:
      return "merge";
    default:
      return "unknown";
  }
}

}  // namespace hubcensus::aggregator

#endif  // HUBCENSUS_AGGREGATOR_RELATION_NAMES_H_
