-- The example shop database `examples/datasets/shop.yml` describes, as a SQLite file (what
-- `steward demo` makes). The same tables as `schema-postgres.sql`.
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    full_name TEXT,
    phone TEXT,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER REFERENCES customers (id),
    shipping_address TEXT,
    items TEXT NOT NULL,
    total_cents INTEGER NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE TABLE login_events (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    ip TEXT,
    at TIMESTAMP NOT NULL
);
CREATE INDEX login_events_customer ON login_events (customer_id);
