-- OceanBase (seekdb, MySQL mode) into Kafka: schema and full sync. Incremental sync from
-- OceanBase reads the OceanBase Binlog Service: set binlog_host / binlog_port to it and add
-- 'incremental' to sync.

CREATE SOURCE ob WITH (
  type = 'oceanbase',
  host = '127.0.0.1', port = 2881,
  user = 'root', password = '',
  timezone = '+08:00'
);

CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092');

CREATE PROJECT ob_to_kafka FROM ob TO kafka WITH (
  sync = 'schema, full',
  format = 'default',
  partitioning = 'hash'
);

SYNC TABLE shop.* TO TOPIC 'ob_${database}_${table}';
