-- The relay's own tables: organizations and their users, tunnels, agent presence, the
-- relay's signing keys and a few installation-wide settings.
-- Secrets are stored only as hex SHA-256 hashes; private keys only encrypted (master key).

create table relay_settings (
  key   text primary key,
  value text not null
);

create table organizations (
  id          uuid primary key,
  name        text not null unique,
  secret_hash text not null unique,
  created_at  timestamptz not null default now()
);

create table users (
  id          uuid primary key,
  org_id      uuid not null references organizations (id) on delete cascade,
  name        text not null,
  secret_hash text not null unique,
  created_at  timestamptz not null default now(),
  unique (org_id, name)
);

create table tunnels (
  id         uuid primary key,
  org_id     uuid not null references organizations (id) on delete cascade,
  name       text not null,
  -- The jti of the only token that is currently valid for this tunnel (rotation replaces it).
  token_jti  text not null,
  created_at timestamptz not null default now(),
  unique (org_id, name)
);

-- One row per connected agent session, written by the relay node that holds the session.
create table agent_presence (
  session_id     text primary key,
  tunnel_id      uuid not null references tunnels (id) on delete cascade,
  node_id        text not null,
  version        text,
  hostname       text,
  remote_address text,
  connected_at   timestamptz not null,
  last_seen      timestamptz not null
);
create index agent_presence_tunnel on agent_presence (tunnel_id);
create index agent_presence_node on agent_presence (node_id);

create table signing_keys (
  kid             text primary key,
  algorithm       text not null,
  public_jwk      jsonb not null,
  -- PKCS#8 PEM of the private key, encrypted with the master key (crypto.ts format).
  private_key_enc text not null,
  created_at      timestamptz not null default now(),
  retired_at      timestamptz
);
