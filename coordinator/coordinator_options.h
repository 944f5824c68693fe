// How a coordinator runs: its state, its store, its Hub and the limits of a crawl.
#ifndef HUBCENSUS_COORDINATOR_COORDINATOR_OPTIONS_H_
#define HUBCENSUS_COORDINATOR_COORDINATOR_OPTIONS_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "common/clock.h"
#include "hub/hub_quota.h"
#include "hubcensus/v1/store.grpc.pb.h"

namespace hubcensus::coordinator {

using hub::HubQuota;

struct CoordinatorOptions {
  // Its own RocksDB (required).
  std::string state_dir;
  // The aggregator's SnapshotStore: a gRPC address, or an injected stub (wins when set).
  std::string store_target;
  std::shared_ptr<v1::SnapshotStore::StubInterface> store;
  // Credentials for store_target (TLS/mTLS, common/tls.h); null: insecure.
  std::shared_ptr<grpc::ChannelCredentials> store_credentials;
  // Hub endpoint for StartCrawl requests that name none (e.g. http://127.0.0.1:8080).
  std::string hub_url;
  absl::Duration lease_duration = absl::Seconds(30);
  // Non-retryable failures of one item that fail the whole crawl (retryable ones: ten times as
  // many, since the worker already retried each with backoff).
  int32_t max_item_failures = 5;
  Clock* clock = Clock::Real();
  // When set, operator RPCs must carry `authorization: Bearer <token>`.
  std::string admin_token;
  // When set (--worker_token_file), worker RPCs (AcquireLease, RenewLease, CompleteLease,
  // FailLease) must carry `authorization: Bearer <token>`, and the coordinator sends it with its
  // own calls to the store (Commit, Abort).
  std::string worker_token;
  // A crawl whose rejected entries exceed this fraction of its entries (repos + rejected) fails
  // instead of committing, naming the counts by reason.
  double max_rejected_fraction = 0.01;
  // A listing chain that returns this many pages in a row with no entry but a next link fails
  // the crawl (a Hub that never reaches the end).
  int32_t max_empty_pages = 5;
  // Connection-level failures to reach the Hub (FailLease.connection_failure) that last this long
  // with no successful completion in between fail the crawl.
  absl::Duration unreachable_hub_timeout = absl::Seconds(60);
  // How long a store call waits for the store's channel to connect before the attempt counts as
  // the store being unavailable (then retried after store_unavailable_retry, the crawl open).
  absl::Duration store_connect_timeout = absl::Seconds(5);
  absl::Duration store_unavailable_retry = absl::Seconds(1);
  // The quota of a Hub endpoint before any worker has reported its RateLimit headers.
  HubQuota hub_quota;
  // Requests handed to a lease at a time (topped up on renewal).
  int32_t budget_chunk = 8;
  // REPO_DETAIL shards (listing.fetch_details): repo ids per shard.
  int32_t detail_shard_size = 100;
  // Start the crawl of the UTC date by itself at this minute of the day (HH*60+MM); -1: off.
  int32_t schedule_minute_utc = -1;
  absl::Duration commit_timeout = absl::Minutes(5);
  absl::Duration max_commit_backoff = absl::Minutes(5);
  absl::Duration max_retry_backoff = absl::Seconds(60);
  // AcquireLease without a lease: when to ask again if work is expected soon / if idle.
  absl::Duration busy_retry_after = absl::Milliseconds(250);
  absl::Duration idle_retry_after = absl::Seconds(2);
  // How often the background thread ticks when nothing wakes it.
  absl::Duration tick_interval = absl::Milliseconds(500);
  // fsync every state change (a machine crash, not only a process kill, loses nothing).
  bool sync_writes = true;
};

}  // namespace hubcensus::coordinator

#endif  // HUBCENSUS_COORDINATOR_COORDINATOR_OPTIONS_H_
