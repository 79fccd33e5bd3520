CREATE SOURCE src WITH (type = 'mariadb', host = '127.0.0.1', port = 3307, user = 'root');
CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092');
CREATE PROJECT every_option FROM src TO kafka WITH (
  sync = 'schema, full, incremental',
  incremental = 'dml, ddl',
  dml = 'insert, delete',
  format = 'maxwell',
  partitioning = 'one',
  partition = 2,
  business_system_id = 'shop',
  topic_partitions = 6,
  topic_replication = 1,
  full_concurrency = 8,
  batch_rows = 1000,
  exactly_once = true
);
SYNC TABLE golden_shop.users TO TOPIC 'users';
SYNC TABLE golden_shop.orders TO TOPIC 'orders' WITH (partitioning = 'hash', format = 'debezium');
