-- OceanBase Binlog Service speaks MySQL's GTID sets.
CREATE SOURCE src WITH (type = 'oceanbase', host = '127.0.0.1', port = 2881, user = 'root', binlog_port = 2883);
CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092');
CREATE PROJECT golden FROM src TO kafka WITH (sync = 'incremental',
  start_gtid = '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:9-7');
SYNC TABLE golden_shop.orders TO TOPIC 'orders';
