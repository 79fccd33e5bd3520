-- keywords in any case, comments anywhere, names in backticks
create source src with (type = 'MariaDB', host = '127.0.0.1', port = 3307); # a MySQL-style comment
create sink kafka with (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092');
create project golden from src to kafka with (format = 'DEFAULT_EXTEND_COLUMN_TYPE');
sync table `golden_shop`.`orders` to topic 'orders' -- the orders
  columns (`id`, `status`) where `status` = 'paid';
;
