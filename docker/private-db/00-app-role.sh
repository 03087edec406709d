#!/bin/sh
# Runs once, when the private database's volume is empty (postgres image's initdb hook), before
# 10-crm.sql: the role the g2c instance logs in as. It may read and write the CRM's rows, and
# nothing else: it owns no table and cannot create any.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_password="$CRM_APP_PASSWORD" <<'SQL'
CREATE ROLE app LOGIN PASSWORD :'app_password';
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO app;
SQL
