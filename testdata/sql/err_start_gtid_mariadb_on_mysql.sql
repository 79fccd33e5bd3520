CREATE SOURCE src WITH (type = 'mysql', host = '127.0.0.1', port = 3308, user = 'root');
CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092');
CREATE PROJECT golden FROM src TO kafka WITH (sync = 'incremental', start_gtid = '0-1-42');
SYNC TABLE golden_shop.orders TO TOPIC 'orders';
