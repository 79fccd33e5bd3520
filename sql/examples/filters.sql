-- Row filters, column filters, sharding columns and per-table options on the sample shop.

CREATE SOURCE shop_db WITH (type = 'mariadb', host = '127.0.0.1', port = 3307, user = 'root');
CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092', 'linger.ms' = 20);

CREATE PROJECT shop_filters FROM shop_db TO kafka WITH (
  sync = 'schema, full, incremental',
  dml = 'insert, update',          -- deletes are not sent
  format = 'debezium',
  business_system_id = 'shop'
);

-- Paying customers in two countries, without personal columns, ordered per country.
SYNC TABLE shop.customers TO TOPIC 'vip_customers'
  COLUMNS (id, country, tier, created_at)
  WHERE country IN ('CN', 'JP') AND tier <> 'free'
  SHARD BY (country);

-- Large orders since March; an UPDATE that crosses the filter becomes an INSERT or a DELETE.
SYNC TABLE shop.orders TO TOPIC 'big_orders'
  WHERE amount > 100 AND placed_at >= '2024-03-01 00:00:00';

-- The rest of the order tables, in Canal format, one partition per table.
SYNC TABLE shop.order_% EXCEPT shop.orders TO TOPIC 'Topic_${database}_${table}'
  WITH (format = 'canal', partitioning = 'table');
