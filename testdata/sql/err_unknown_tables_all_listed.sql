CREATE SOURCE src WITH (type = 'mariadb', host = '127.0.0.1', port = 3307, user = 'root');
CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092');
CREATE PROJECT golden FROM src TO kafka;
SYNC TABLE golden_shop.orderz TO TOPIC 'orders';
SYNC TABLE golden_shop.customerz TO TOPIC 'customers';
