// The first error a textproto parse meets, as "LINE:COLUMN: message" (1-based), for the errors
// of every textproto the project reads (the families file, fakehub's scenario).
#ifndef HUBCENSUS_CONFIG_TEXTPROTO_ERROR_H_
#define HUBCENSUS_CONFIG_TEXTPROTO_ERROR_H_

#include <google/protobuf/io/tokenizer.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace hubcensus::config {

class FirstTextprotoError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (first_.empty()) first_ = absl::StrCat(line + 1, ":", column + 1, ": ", message);
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

}  // namespace hubcensus::config

#endif  // HUBCENSUS_CONFIG_TEXTPROTO_ERROR_H_
