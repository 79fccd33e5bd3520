-- Quick start: the sample shop database in MariaDB (scripts/demo loads it) into Kafka.
-- tributary check sql/examples/quickstart.sql     # precheck against the running services
-- tributary explain sql/examples/quickstart.sql   # what goes where

CREATE SOURCE shop_db WITH (
  type = 'mariadb',
  host = '127.0.0.1', port = 3307,
  user = 'root', password = '',
  server_id = 5701
);

CREATE SINK kafka WITH (
  type = 'kafka',
  'bootstrap.servers' = '127.0.0.1:9092'
);

CREATE PROJECT quickstart FROM shop_db TO kafka WITH (
  sync = 'schema, full, incremental',
  incremental = 'dml, ddl',
  format = 'default',
  partitioning = 'hash',
  topic_partitions = 3, topic_replication = 1,
  full_concurrency = 4, batch_rows = 8192
);

-- Every table of the shop, each to its own topic; test orders stay out of Kafka.
SYNC TABLE shop.* EXCEPT shop.orders TO TOPIC 'shop.${table}';
SYNC TABLE shop.orders TO TOPIC 'shop.orders' WHERE status <> 'test';
