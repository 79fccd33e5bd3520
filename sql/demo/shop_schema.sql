-- The demo's sample shop schema: four related tables with a realistic mix of types. Works on
-- MariaDB, MySQL and OceanBase (MySQL mode); sql/demo/shop_data.sql fills it on MariaDB.
CREATE DATABASE IF NOT EXISTS shop;
USE shop;

CREATE TABLE IF NOT EXISTS customers (
  id          INT UNSIGNED PRIMARY KEY,
  email       VARCHAR(120) NOT NULL UNIQUE,
  name        VARCHAR(80)  NOT NULL,
  country     CHAR(2)      NOT NULL,
  tier        ENUM('free', 'plus', 'pro') NOT NULL,
  marketing   SET('email', 'sms', 'push'),
  birth_date  DATE,
  created_at  DATETIME(3)  NOT NULL,
  updated_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
);

CREATE TABLE IF NOT EXISTS products (
  id          INT PRIMARY KEY,
  sku         CHAR(12)      NOT NULL,
  title       VARCHAR(200)  NOT NULL,
  price       DECIMAL(10,2) NOT NULL,
  weight_kg   FLOAT,
  attributes  JSON,
  in_stock    TINYINT(1)    NOT NULL,
  thumbnail   VARBINARY(16)
);

CREATE TABLE IF NOT EXISTS orders (
  id          BIGINT UNSIGNED PRIMARY KEY,
  customer_id INT UNSIGNED  NOT NULL,
  status      VARCHAR(16)   NOT NULL,
  amount      DECIMAL(12,2) NOT NULL,
  discount    DOUBLE        NOT NULL,
  note        TEXT,
  placed_at   DATETIME(6)   NOT NULL,
  ship_year   YEAR,
  KEY (customer_id)
);

CREATE TABLE IF NOT EXISTS order_items (
  order_id    BIGINT UNSIGNED NOT NULL,
  line_no     SMALLINT       NOT NULL,
  product_id  INT            NOT NULL,
  quantity    MEDIUMINT      NOT NULL,
  unit_price  DECIMAL(10,2)  NOT NULL,
  flags       BIT(8)         NOT NULL,
  PRIMARY KEY (order_id, line_no)
);
