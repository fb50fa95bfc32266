#!/usr/bin/env bash
# Installs and starts Debian's PostgreSQL and creates the database that the
# store's PostgreSQL tests use, then prints its DSN on standard output (and
# only that: everything else goes to standard error). Run as root; safe to
# run again. .ci/run uses it as:
#
#	DMARCD_TEST_POSTGRES=$(bash report/store/ci-postgres.sh)
#	export DMARCD_TEST_POSTGRES
set -euo pipefail
exec 3>&1 1>&2

role=dmarcd_test
password=dmarcd_test
db=dmarcd_test
port=5432

export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s postgresql >/dev/null 2>&1; then
	apt-get update -q
	apt-get install -y -q --no-install-recommends postgresql
fi

# The newest installed major version, and its "main" cluster (the package
# creates it; a machine where it was dropped gets a new one).
version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" { found = 1 } END { exit !found }'; then
	pg_createcluster --port "$port" "$version" main 3>&- </dev/null
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" && $4 ~ /^online/ { up = 1 } END { exit !up }'; then
	# 3>&-: the server must not inherit the pipe of the caller's $(...),
	# which would then wait for it to exit, forever.
	pg_ctlcluster "$version" main start 3>&- </dev/null
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" { print $3 }')

# Wait until it takes connections (pg_ctlcluster waits already; this covers
# a cluster that another process started a moment ago).
for _ in $(seq 1 30); do
	su postgres -c "pg_isready -q -p $port" && break
	sleep 1
done

psql_admin() { su postgres -c "psql -v ON_ERROR_STOP=1 -q -X -p $port -d postgres $*"; }
psql_admin "-tAc \"SELECT 1 FROM pg_roles WHERE rolname = '$role'\"" | grep -q 1 ||
	psql_admin "-c \"CREATE ROLE $role LOGIN PASSWORD '$password'\""
psql_admin "-tAc \"SELECT 1 FROM pg_database WHERE datname = '$db'\"" | grep -q 1 ||
	psql_admin "-c \"CREATE DATABASE $db OWNER $role\""

echo "postgres://$role:$password@127.0.0.1:$port/$db?sslmode=disable" >&3
