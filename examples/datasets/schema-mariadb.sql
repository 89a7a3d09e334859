-- The example support desk `examples/datasets/support.yml` describes (MariaDB / MySQL).
CREATE TABLE tickets (
    id BIGINT PRIMARY KEY,
    requester_email VARCHAR(320) NOT NULL,
    customer_ref BIGINT,
    subject_line VARCHAR(500) NOT NULL,
    INDEX tickets_email (requester_email),
    INDEX tickets_customer (customer_ref)
) ENGINE = InnoDB;
CREATE TABLE ticket_messages (
    id BIGINT PRIMARY KEY,
    ticket_id BIGINT NOT NULL,
    author_phone VARCHAR(40),
    sent_at DATETIME(3) NOT NULL,
    FOREIGN KEY (ticket_id) REFERENCES tickets (id)
) ENGINE = InnoDB;
