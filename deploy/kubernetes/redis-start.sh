#!/bin/sh
# Starts one container of a nines-redis pod: `redis-start.sh redis` or `redis-start.sh sentinel`.
# The primary is the one the Sentinels name when any of them answers; with none answering (the
# first start) it is pod 0. Journals live for journal.ttl_ms, so Redis keeps nothing on disk: a
# pod that restarts comes back as a replica and resynchronises. Every pod may become the primary,
# so each has the primary's settings (README, "More than one gateway"): nothing evicted (a full
# Redis refuses writes, and the gateway marks the copies it could not write), and no write taken
# without a replica less than a second behind.
set -eu

role=${1:?usage: redis-start.sh redis|sentinel}
: "${SET:?the StatefulSet name}" "${SERVICE:?its headless Service}" "${MASTER:?the master name}"
: "${REPLICAS:=3}" "${QUORUM:=2}" "${MAXMEMORY:=1gb}" "${DATA:=/data}"
self="$(hostname).${SERVICE}"

primary=""
i=0
while [ "$i" -lt "$REPLICAS" ]; do
  peer="${SET}-${i}.${SERVICE}"
  # The first line of the answer is the primary's host.
  answer=$(timeout 2 redis-cli -h "$peer" -p 26379 --raw \
    SENTINEL get-master-addr-by-name "$MASTER" 2>/dev/null | head -n 1) || answer=""
  if [ -n "$answer" ]; then
    primary=$answer
    break
  fi
  i=$((i + 1))
done
[ -n "$primary" ] || primary="${SET}-0.${SERVICE}"

case "$role" in
  redis)
    cat > "${DATA}/redis.conf" <<CONF
port 6379
bind * -::*
protected-mode no
dir ${DATA}
save ""
appendonly no
maxmemory ${MAXMEMORY}
maxmemory-policy noeviction
min-replicas-to-write 1
min-replicas-max-lag 1
replica-announce-ip ${self}
CONF
    if [ "$primary" != "$self" ]; then
      echo "replicaof ${primary} 6379" >> "${DATA}/redis.conf"
    fi
    exec redis-server "${DATA}/redis.conf"
    ;;
  sentinel)
    # Sentinel rewrites its file: it lives in the pod's own folder, not in the ConfigMap.
    cat > "${DATA}/sentinel.conf" <<CONF
port 26379
bind * -::*
protected-mode no
dir ${DATA}
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip ${self}
sentinel monitor ${MASTER} ${primary} 6379 ${QUORUM}
sentinel down-after-milliseconds ${MASTER} 5000
sentinel failover-timeout ${MASTER} 30000
sentinel parallel-syncs ${MASTER} 1
CONF
    exec redis-sentinel "${DATA}/sentinel.conf"
    ;;
  *)
    echo "redis-start.sh: unknown role ${role} (redis or sentinel)" >&2
    exit 2
    ;;
esac
