-- Element instances (DESIGN 5.4): one database reached direct or through a tunnel, one element
-- token. The configuration is kept in clear except the password, which is encrypted with the
-- master key; the element token is stored only as its hex SHA-256.

create table instances (
  id                 uuid primary key,
  org_id             uuid not null references organizations (id) on delete cascade,
  name               text not null,
  element_key        text not null default 'postgresql',
  tags               text[] not null default '{}',
  -- Every configuration key but "password", as the user sent it.
  configuration      jsonb not null,
  password_enc       text not null,
  -- The resolved tunnel of a ground2cloud instance: a tunnel cannot be deleted while used.
  tunnel_id          uuid references tunnels (id),
  token_hash         text not null unique,
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now()
);
create index instances_org on instances (org_id);
create index instances_tunnel on instances (tunnel_id);
