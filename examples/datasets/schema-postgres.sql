-- The example shop database `examples/datasets/shop.yml` describes (PostgreSQL).
CREATE TABLE customers (
    id BIGINT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    full_name TEXT,
    phone TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id BIGINT PRIMARY KEY,
    customer_id BIGINT REFERENCES customers (id),
    shipping_address TEXT,
    items TEXT NOT NULL,
    total_cents BIGINT NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE TABLE login_events (
    id BIGINT PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    ip TEXT,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_events_customer ON login_events (customer_id);
