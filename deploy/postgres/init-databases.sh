#!/usr/bin/env bash
# Runs once, on the first start of an empty PostgreSQL data directory (docker-entrypoint-initdb.d),
# as the superuser POSTGRES_USER: one login role and one database per service, the database
# owned by its role, with the role's password from <SERVICE>_DB_PASSWORD (deploy/.env). Nobody
# else may connect to a service's database (CONNECT revoked from PUBLIC), so each service reaches
# its own data only, never as the superuser. A role `monitor` (pg_monitor, password
# POSTGRES_MONITOR_PASSWORD) is postgres-exporter's. Safe to run again: it creates what is
# missing and resets the passwords to the environment's.
set -euo pipefail
psql_admin() {
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres "$@"
}
role() { # name password
  psql_admin -v role="$1" -v password="$2" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'role', :'password') \gexec
SQL
}
for service in ${MPP_DATABASES:-queue payment rating gateway}; do
  variable="${service^^}_DB_PASSWORD"
  password="${!variable:?set $variable in deploy/.env}"
  role "$service" "$password"
  psql_admin -v db="$service" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'db')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'db') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SQL
done
role monitor "${POSTGRES_MONITOR_PASSWORD:?set POSTGRES_MONITOR_PASSWORD in deploy/.env}"
psql_admin -c "GRANT pg_monitor TO monitor"
