#!/usr/bin/env bash
# Runs once, on the first start of an empty PostgreSQL data directory (docker-entrypoint-initdb.d):
# one database per service, owned by the application role. Each service migrates its own.
set -euo pipefail
for db in ${MPP_DATABASES:-queue payment rating gateway}; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE DATABASE "$db" OWNER "$POSTGRES_USER";
SQL
done
