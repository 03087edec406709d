-- Fixture of the engine-sql tests: one table per concern, in schema "Engine Sql" so that the
-- schema name itself needs quoting.
CREATE SCHEMA "Engine Sql";
SET search_path TO "Engine Sql";

CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');

CREATE TABLE every_type (
  id         bigserial PRIMARY KEY,
  i2         int2,
  i4         int4,
  i8         int8,
  num        numeric(40,10),
  f8         float8,
  b          bool,
  t          text,
  vc         varchar(20),
  d          date,
  tm         time,
  ts         timestamp,
  tstz       timestamptz,
  iv         interval,
  u          uuid,
  j          json,
  jb         jsonb,
  by         bytea,
  ta         text[],
  ia         int[],
  m          mood,
  ip         inet,
  pt         point,
  created    timestamptz NOT NULL DEFAULT now(),
  doubled    int8 GENERATED ALWAYS AS (i8 * 2) STORED
);

-- A name with a capital, a space and a quote, and columns to match.
CREATE TABLE "Odd ""Name"" Table" (
  "Key" text PRIMARY KEY,
  "First Name" text,
  "say ""hi""" text,
  "camelCase" int
);

CREATE TABLE people (
  id     serial PRIMARY KEY,
  name   text NOT NULL,
  age    int,
  status text,
  email  text
);
INSERT INTO people (name, age, status, email) VALUES
  ('Jon Doe', 35, 'a', 'jon@example.com'),
  ('Jane Roe', 28, 'b', NULL),
  ('O''Brien', 30, 'c', 'ob@example.com'),
  ('back\slash', NULL, 'a', 'bs@example.com'),
  ('Ünïcode ☃', 41, NULL, 'u@example.com'),
  ('%under_score%', 22, 'b', 'us@example.com');

-- No primary key: offset paging.
CREATE TABLE nokey (n int, label text);
INSERT INTO nokey SELECT g, 'row ' || g FROM generate_series(1, 25) g;

CREATE VIEW adults AS SELECT id, name, age FROM people WHERE age >= 30;

-- Must never change, whatever the injection corpus sends.
CREATE TABLE canary (id int PRIMARY KEY, secret text NOT NULL);
INSERT INTO canary VALUES (1, 'tweet'), (2, 'chirp');

-- Columns named like the aliases and output names of the generated SQL.
CREATE TABLE aliases (t int PRIMARY KEY, p text, w text, r text, e text, "row" text, "cursor" text, key text, value text);
INSERT INTO aliases VALUES (1, 'p1', 'w1', 'r1', 'e1', 'row1', 'cursor1', 'key1', NULL), (2, 'p2', NULL, 'r2', 'e2', 'row2', 'cursor2', 'key2', 'value2');

-- A NOT NULL domain whose column has a default: a POST without it must get the default.
CREATE DOMAIN posint AS int NOT NULL CHECK (VALUE > 0);
CREATE TABLE with_domain (id serial PRIMARY KEY, n posint DEFAULT 1, label varchar(5));
