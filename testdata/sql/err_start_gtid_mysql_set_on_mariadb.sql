CREATE SOURCE src WITH (type = 'mariadb', host = '127.0.0.1', port = 3307, user = 'root');
CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092');
CREATE PROJECT golden FROM src TO kafka WITH (sync = 'incremental', start_gtid = '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5');
SYNC TABLE golden_shop.orders TO TOPIC 'orders';
