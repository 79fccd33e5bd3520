-- The tables the golden project files in this folder are planned against. tests/golden_sql.rs
-- creates them in MariaDB before planning; each statement is run as written.
DROP DATABASE IF EXISTS golden_shop;
DROP DATABASE IF EXISTS golden_nonascii;
DROP DATABASE IF EXISTS golden_badcol;
DROP DATABASE IF EXISTS golden_modern;
CREATE DATABASE golden_shop;
CREATE DATABASE golden_nonascii;
CREATE DATABASE golden_badcol;
CREATE DATABASE golden_modern;
CREATE TABLE golden_shop.orders (id BIGINT UNSIGNED PRIMARY KEY, user_id INT NOT NULL, Amount DECIMAL(12,2) NOT NULL, status VARCHAR(16) NOT NULL, created_at DATETIME(3) NOT NULL, note TEXT);
CREATE TABLE golden_shop.users (id INT PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE, name VARCHAR(50), score DOUBLE);
CREATE TABLE golden_shop.log_2024 (ts DATETIME, msg VARCHAR(100));
CREATE TABLE golden_shop.log_2025 (ts DATETIME, msg VARCHAR(100));
CREATE TABLE golden_shop.log_tmp (ts DATETIME, msg VARCHAR(100));
CREATE TABLE golden_shop.events_uk (code CHAR(8) NOT NULL, alt INT, payload JSON, UNIQUE KEY uk_code (code), UNIQUE KEY uk_alt (alt));
CREATE TABLE golden_shop.order_lines (order_id BIGINT UNSIGNED NOT NULL, line_no SMALLINT NOT NULL, qty MEDIUMINT NOT NULL, PRIMARY KEY (order_id, line_no));
CREATE TABLE golden_shop.all_types (id INT PRIMARY KEY, c_bool BOOL, c_tinyint TINYINT, c_tinyint_u TINYINT UNSIGNED, c_smallint SMALLINT, c_smallint_u SMALLINT UNSIGNED, c_mediumint MEDIUMINT, c_mediumint_u MEDIUMINT UNSIGNED, c_int INT, c_int_u INT UNSIGNED, c_bigint BIGINT, c_bigint_u BIGINT UNSIGNED, c_decimal DECIMAL(10,2), c_decimal_wide DECIMAL(65,30), c_float FLOAT, c_double DOUBLE, c_bit BIT(12), c_year YEAR, c_char CHAR(4), c_varchar VARCHAR(20), c_text LONGTEXT, c_binary BINARY(4), c_varbinary VARBINARY(8), c_blob BLOB, c_enum ENUM('a','b'), c_set SET('x','y','z'), c_json JSON, c_date DATE, c_time TIME(6), c_datetime DATETIME(6), c_timestamp TIMESTAMP(3) NULL, c_geometry GEOMETRY);
CREATE TABLE golden_nonascii.`订单` (id INT PRIMARY KEY);
CREATE TABLE golden_nonascii.plain (id INT PRIMARY KEY);
CREATE TABLE golden_badcol.t (id INT PRIMARY KEY, `名字` VARCHAR(10));
CREATE TABLE golden_modern.t (id INT PRIMARY KEY, addr INET6, tag VARCHAR(10));
