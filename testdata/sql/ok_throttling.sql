CREATE SOURCE src WITH (type = 'mariadb', host = '127.0.0.1', port = 3307, user = 'root');
CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092');
CREATE PROJECT golden FROM src TO kafka WITH (max_rows_per_second = 5000, MAX_BYTES_PER_SECOND = 2000000);
SYNC TABLE golden_shop.orders TO TOPIC 'orders';
