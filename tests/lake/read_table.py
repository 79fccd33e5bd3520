"""Reads a lake table with an independent reader and prints its rows as JSON lines.

usage: read_table.py READER PATH
  READER: pyarrow | duckdb (Parquet files of a table directory), deltalake | polars (a Delta table)
  PATH:   a local directory, or s3://bucket/prefix with S3_ENDPOINT, S3_KEY, S3_SECRET set

Values are printed as text the test compares with the source's CAST(... AS CHAR): bytes as
lower-case hex, date-times as 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC, whole floats without '.0'.
"""
import datetime
import decimal
import json
import os
import sys


def canon(value):
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return text + (".%06d" % value.microsecond if value.microsecond else "")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)


def storage_options():
    return {
        "AWS_ENDPOINT_URL": os.environ["S3_ENDPOINT"],
        "AWS_ACCESS_KEY_ID": os.environ["S3_KEY"],
        "AWS_SECRET_ACCESS_KEY": os.environ["S3_SECRET"],
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }


def read(reader, path):
    s3 = path.startswith("s3://")
    if reader == "pyarrow":
        import pyarrow.dataset as ds
        import pyarrow.fs as pafs

        filesystem = None
        if s3:
            endpoint = os.environ["S3_ENDPOINT"]
            filesystem = pafs.S3FileSystem(
                endpoint_override=endpoint.split("://", 1)[1],
                scheme=endpoint.split("://", 1)[0],
                access_key=os.environ["S3_KEY"],
                secret_key=os.environ["S3_SECRET"],
                region="us-east-1",
            )
            path = path[len("s3://"):]
        # Files under `_staging` are not committed: pyarrow skips `_`-prefixed paths itself.
        dataset = ds.dataset(path, format="parquet", filesystem=filesystem)
        if len(dataset.files) == 0:
            return []
        # Files written before an ADD COLUMN lack it: read them under the newest schema.
        schemas = [ds.dataset(f, format="parquet", filesystem=filesystem).schema for f in dataset.files]
        import pyarrow as pa

        unified = pa.unify_schemas(schemas)
        table = ds.dataset(path, format="parquet", filesystem=filesystem, schema=unified).to_table()
        return table.to_pylist()
    if reader == "duckdb":
        import duckdb

        con = duckdb.connect()
        if s3:
            endpoint = os.environ["S3_ENDPOINT"]
            con.execute("SET s3_endpoint = ?", [endpoint.split("://", 1)[1]])
            con.execute("SET s3_use_ssl = false")
            con.execute("SET s3_url_style = 'path'")
            con.execute("SET s3_access_key_id = ?", [os.environ["S3_KEY"]])
            con.execute("SET s3_secret_access_key = ?", [os.environ["S3_SECRET"]])
            con.execute("SET s3_region = 'us-east-1'")
        glob = path.rstrip("/") + "/*.parquet"
        try:
            result = con.execute(f"SELECT * FROM read_parquet('{glob}', union_by_name = true)")
        except duckdb.IOException as e:
            if "No files found" in str(e):
                return []
            raise
        # Through Arrow: DuckDB's own conversion of TIMESTAMPTZ to Python needs pytz.
        return result.fetch_arrow_table().to_pylist()
    if reader == "deltalake":
        from deltalake import DeltaTable

        table = DeltaTable(path, storage_options=storage_options() if s3 else None)
        return table.to_pyarrow_table().to_pylist()
    if reader == "polars":
        import polars as pl

        frame = pl.read_delta(path, storage_options=storage_options() if s3 else None)
        return frame.to_dicts()
    raise SystemExit(f"unknown reader {reader}")


def main():
    reader, path = sys.argv[1], sys.argv[2]
    for row in read(reader, path):
        print(json.dumps({k: canon(v) for k, v in row.items()}, sort_keys=True))
    # Every row is out: leave without the interpreter's teardown, where pyarrow's and
    # deltalake's native threads sometimes abort with "terminate called without an active
    # exception" (apache/arrow#34314, delta-io/delta-rs#2184) after a complete, correct read.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
