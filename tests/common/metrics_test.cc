#include "common/metrics.h"

#include <curl/curl.h>
#include <gtest/gtest.h>

namespace hubcensus {
namespace {

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string Get(const std::string& url, long* status) {
  CURL* curl = curl_easy_init();
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  CURLcode rc = curl_easy_perform(curl);
  EXPECT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
  curl_easy_cleanup(curl);
  return body;
}

TEST(MetricsExposer, ServesRegistryOverHttp) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& family = prometheus::BuildCounter()
                     .Name("hubcensus_test_pages_total")
                     .Help("Pages fetched in the test")
                     .Register(*registry);
  family.Add({{"stream", "createdAt"}}).Increment(42);
  auto exposer = MetricsExposer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(exposer.ok()) << exposer.status();
  ASSERT_GT((*exposer)->port(), 0);
  long status = 0;
  std::string body =
      Get("http://127.0.0.1:" + std::to_string((*exposer)->port()) + "/metrics", &status);
  EXPECT_EQ(status, 200);
  EXPECT_NE(body.find("# TYPE hubcensus_test_pages_total counter"), std::string::npos) << body;
  EXPECT_NE(body.find("hubcensus_test_pages_total{stream=\"createdAt\"} 42"), std::string::npos)
      << body;
}

TEST(MetricsExposer, PortInUseIsAClearError) {
  auto first = MetricsExposer::Start("127.0.0.1:0");
  ASSERT_TRUE(first.ok());
  auto second = MetricsExposer::Start("127.0.0.1:" + std::to_string((*first)->port()));
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("cannot listen"), std::string::npos);
}

}  // namespace
}  // namespace hubcensus
