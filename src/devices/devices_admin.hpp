#pragma once
// The devices role's admin listener (`[admin] listen`, default 127.0.0.1:9903): GET /devices (the
// fleet and every phone, JSON), GET /devices/{serial} (one phone; 404 when unknown), /metrics
// (Prometheus) and /healthz. Beyond loopback every request needs the admin key, as on the
// gateway's admin listener.
//
// Threading: served on the admin thread; it reads the keeper's immutable snapshots only.

#include <optional>
#include <string>

#include "core/access/secret_digest.hpp"
#include "devices/device_keeper.hpp"
#include "net/http_server.hpp"
#include "obs/metrics.hpp"

namespace nines::devices {

std::string devices_json(const devices_snapshot& snap);
std::string device_json(const device_view& d);
// Fleet series always; one series per phone and measure only with `per_device` (cardinality).
std::string devices_metrics(const devices_snapshot& snap, bool per_device);

struct admin_options {
  std::optional<core::secret_digest> admin_key;
  bool per_device_metrics = true;
  const obs::registry* more_metrics = nullptr;  // appended to /metrics (the alerts' series)
};

net::awaitable<void> handle_devices_admin(net::request& request, net::downstream& client,
                                          const device_keeper& keeper,
                                          const admin_options& options);

}  // namespace nines::devices
