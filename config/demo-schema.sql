-- Created on every shard by `pgshard dev`: the demo's sharded tables and a reference table.
CREATE TABLE IF NOT EXISTS accounts (
  id bigint PRIMARY KEY,
  owner text NOT NULL,
  balance numeric(12, 2) NOT NULL DEFAULT 0,
  country text
);
CREATE TABLE IF NOT EXISTS events (
  tenant text NOT NULL,
  id bigint NOT NULL,
  kind text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, id)
);
CREATE TABLE IF NOT EXISTS sessions (
  id uuid PRIMARY KEY,
  account_id bigint NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS countries (
  code text PRIMARY KEY,
  name text NOT NULL
);
INSERT INTO countries (code, name) VALUES ('FR', 'France'), ('DE', 'Germany'), ('JP', 'Japan'), ('BR', 'Brazil')
  ON CONFLICT (code) DO NOTHING;
GRANT ALL ON accounts, events, sessions, countries TO app;
