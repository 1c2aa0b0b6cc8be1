-- ML Metadata's database beside Airflow's, with a role of its own (docker-compose.yml: metadata-init).
-- Idempotent: run at every `docker compose up`; the role's password follows MLMD_DB_PASSWORD. The password is read
-- from the environment (psql's \getenv), so it never appears on a command line.
\set ON_ERROR_STOP on
\getenv mlmd_password MLMD_DB_PASSWORD
SELECT 'CREATE ROLE mlmd LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mlmd')
\gexec
ALTER ROLE mlmd PASSWORD :'mlmd_password';
SELECT 'CREATE DATABASE mlmd OWNER mlmd' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mlmd')
\gexec
