-- Extensions the schema relies on. gen_random_uuid() is built in (no uuid-ossp in the bundle).
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS citext;
