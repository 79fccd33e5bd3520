CREATE SOURCE src WITH (type = 'mariadb', host = '127.0.0.1', port = 3307, user = 'root');
CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092');
CREATE PROJECT golden FROM src TO kafka;
SYNC TABLE golden_shop.orders TO TOPIC 'orders'
  WHERE lower(Status) IN ('paid', 'new') AND note IS NOT NULL
    AND id BETWEEN 1 AND 1000 AND `Amount` >= 10.5 OR created_at >= '2024-01-01 00:00:00';
