CREATE SOURCE src WITH (type = 'mariadb', host = '127.0.0.1', port = 3307, user = 'root',
  password = env('TRIBUTARY_GOLDEN_PASSWORD'));
CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092', 'linger.ms' = 20, 'enable.idempotence' = true);
CREATE PROJECT golden FROM src TO kafka;
SYNC TABLE golden_shop.users TO TOPIC 'users';
