-- About 1M rows for the sample shop (sql/demo/shop_schema.sql), generated inside MariaDB from its
-- Sequence engine (seq_1_to_N), so loading takes seconds. Not written to the binlog: it is the
-- data the snapshot finds, not a stream of changes.
SET SESSION sql_log_bin = 0;
USE shop;
TRUNCATE customers;
TRUNCATE products;
TRUNCATE orders;
TRUNCATE order_items;

INSERT INTO customers
SELECT seq,
       CONCAT('customer', seq, '@example.com'),
       CONCAT(ELT(1 + seq % 6, 'Ada', 'Linus', 'Grace', 'Ken', 'Barbara', 'Edsger'), ' #', seq),
       ELT(1 + seq % 5, 'CN', 'US', 'DE', 'BR', 'JP'),
       ELT(1 + seq % 3, 'free', 'plus', 'pro'),
       ELT(1 + seq % 4, NULL, 'email', 'email,sms', 'push'),
       IF(seq % 7 = 0, NULL, DATE('1960-01-01') + INTERVAL (seq * 37) % 16000 DAY),
       TIMESTAMP('2024-01-01 00:00:00') + INTERVAL seq * 61 SECOND + INTERVAL seq % 1000 * 1000 MICROSECOND,
       TIMESTAMP('2025-06-01 00:00:00') + INTERVAL seq * 17 SECOND
FROM seq_1_to_50000;

INSERT INTO products
SELECT seq,
       CONCAT('SKU-', LPAD(seq, 8, '0')),
       CONCAT(ELT(1 + seq % 4, 'Blue', 'Red', 'Large', 'Organic'), ' ',
              ELT(1 + seq % 5, 'kettle', 'notebook', 'lamp', 'tea', 'backpack'), ' ', seq),
       ROUND(1 + (seq * 7919) % 50000 / 100, 2),
       IF(seq % 9 = 0, NULL, (seq % 300) / 10),
       JSON_OBJECT('color', ELT(1 + seq % 3, 'blue', 'red', 'green'), 'tags', JSON_ARRAY('demo', seq % 10)),
       seq % 5 <> 0,
       UNHEX(MD5(seq))
FROM seq_1_to_5000;

INSERT INTO orders
SELECT seq,
       1 + (seq * 7919) % 50000,
       ELT(1 + seq % 5, 'new', 'paid', 'shipped', 'delivered', 'test'),
       ROUND((seq * 104729) % 100000 / 100, 2),
       (seq % 20) / 100,
       IF(seq % 4 = 0, CONCAT('gift wrap, note ', seq, ' ✓'), NULL),
       TIMESTAMP('2024-01-01 00:00:00') + INTERVAL seq * 50 SECOND + INTERVAL seq % 999983 MICROSECOND,
       IF(seq % 3 = 0, NULL, 2024 + seq % 2)
FROM seq_1_to_600000;

INSERT INTO order_items
SELECT o.seq, l.seq,
       1 + (o.seq * l.seq * 31) % 5000,
       1 + (o.seq + l.seq) % 4,
       ROUND(1 + (o.seq * 13 + l.seq) % 20000 / 100, 2),
       (o.seq + l.seq) % 256
FROM seq_1_to_175000 AS o CROSS JOIN seq_1_to_2 AS l;

SELECT 'customers' AS `table`, COUNT(*) AS `rows` FROM customers
UNION ALL SELECT 'products', COUNT(*) FROM products
UNION ALL SELECT 'orders', COUNT(*) FROM orders
UNION ALL SELECT 'order_items', COUNT(*) FROM order_items;
