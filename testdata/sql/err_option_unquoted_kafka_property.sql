CREATE SOURCE src WITH (type = 'mariadb', host = '127.0.0.1', port = 3307);
CREATE SINK kafka WITH (type = 'kafka', linger_ms = 5, 'bootstrap.servers' = '127.0.0.1:9092');
CREATE PROJECT golden FROM src TO kafka;
SYNC TABLE golden_shop.orders TO TOPIC 'orders';
