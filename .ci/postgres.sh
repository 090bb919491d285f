#!/usr/bin/env bash
# Start a PostgreSQL server on 127.0.0.1 for the tests that need one (the feedback store
# and Optuna studies shared by several processes), with Debian's packages; print the URL
# the tests read from CHATFORGE_TEST_POSTGRES. Needs root (CI runs as root).
#
#   export CHATFORGE_TEST_POSTGRES=$(bash .ci/postgres.sh)
set -euo pipefail
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  apt-get update -q >&2 && apt-get install -y -q postgresql >&2
fi
read -r version cluster _ < <(pg_lsclusters --no-header | head -n 1) || true
if [ -z "${version:-}" ]; then
  version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
  cluster=main
  pg_createcluster "$version" "$cluster" >&2
fi
pg_ctlcluster "$version" "$cluster" start >&2 2>/dev/null || true  # already running is fine
for _ in $(seq 1 50); do
  runuser -u postgres -- psql -qtAc "select 1" >/dev/null 2>&1 && break
  sleep 0.2
done
port=$(pg_lsclusters --no-header | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c {print $3}')
# A password that appears nowhere else, so tests can check that it never reaches a log or a
# report (tests/reliability/test_secrets.py).
password=cf-pg-Secr3t-4417
runuser -u postgres -- psql -qtAc "select 1 from pg_roles where rolname = 'chatforge'" | grep -q 1 ||
  runuser -u postgres -- psql -qc "create role chatforge login createdb" >&2
runuser -u postgres -- psql -qc "alter role chatforge password '${password}'" >&2
runuser -u postgres -- psql -qtAc "select 1 from pg_database where datname = 'chatforge_test'" | grep -q 1 ||
  runuser -u postgres -- createdb -O chatforge chatforge_test >&2
echo "postgresql://chatforge:${password}@127.0.0.1:${port}/chatforge_test"
