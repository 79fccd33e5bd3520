-- One table holding every column type with edge values (tests/full_sync.rs and
-- tests/incremental.rs); DB__ is replaced by the test's database.
CREATE DATABASE DB__;
SET SESSION sql_mode = '';
CREATE TABLE DB__.all_types (id INT PRIMARY KEY, c_bool BOOL, c_tiny TINYINT,
  c_utiny TINYINT UNSIGNED, c_small SMALLINT, c_usmall SMALLINT UNSIGNED, c_medium MEDIUMINT,
  c_umedium MEDIUMINT UNSIGNED, c_int INT, c_uint INT UNSIGNED, c_big BIGINT,
  c_ubig BIGINT UNSIGNED, c_dec DECIMAL(10,2), c_wide DECIMAL(65,30), c_float FLOAT,
  c_double DOUBLE, c_bit BIT(12), c_year YEAR, c_char CHAR(4), c_varchar VARCHAR(20), c_text TEXT,
  c_binary BINARY(4), c_varbinary VARBINARY(8), c_blob BLOB, c_enum ENUM('a','b'),
  c_set SET('x','y','z'), c_json JSON, c_date DATE, c_time TIME(6), c_datetime DATETIME(6),
  c_timestamp TIMESTAMP(3) NULL);
INSERT INTO DB__.all_types VALUES
 (1, true, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
  9223372036854775807, 18446744073709551615, 99999999.99,
  99999999999999999999999999999999999.999999999999999999999999999999, 3.40282e38,
  1.7976931348623157e308, b'101010101010', 2155, 'ab', 'héllo 😀', 'line1\nline2 "q" \\',
  0x00000001, 0x00, '', 'b', 'x,z', '{"a": [1, 2]}', '9999-12-31', '838:59:59.000000',
  '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999'),
 (2, false, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
  -99999999.99, -0.000000000000000000000000000001, -1.17549e-38, -2.2250738585072014e-308,
  b'0', 1901, '', '', '', 0x00000000, '', 0x0000, 'a', '', 'null', '1000-01-01',
  '-838:59:59.000000', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5, 0.000000000000000000000000000001, 0, 0, b'1', 0,
  'a  ', 'x ', 'x', 0x61, 0x62, 0x63, 'a', 'x', '[]', '0000-00-00', '00:00:00.000001',
  '0000-00-00 00:00:00', '0000-00-00 00:00:00.000')
