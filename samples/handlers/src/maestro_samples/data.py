"""The nightly sales ETL's systems: a warehouse, an object store and Spark.

The fake sales data is a function of the date (and region): every region sells
some thousands of rows a day, except on Sundays, when the sample shop is
closed and there are no rows at all. So ``etl.yaml`` loads the warehouse for a
weekday and takes its ``alert`` branch for a Sunday.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date
from typing import Any

from maestro.services.executor.handlers import TaskContext, TaskKind
from maestro_samples._fake import day, invalid, require_secret, stable_id, strings, text

REGIONS = ("eu", "us", "apac")
"""Every region the fake shop sells in (the default of ``regions``)."""
SUNDAY = 6


def sales_rows(on: date, region: str) -> int:
    """Rows of raw sales of ``region`` on ``on``: 0 on Sundays, else 1000-9999."""
    if on.weekday() == SUNDAY:
        return 0
    seed = int(hashlib.sha256(f"{on.isoformat()}/{region}".encode()).hexdigest()[:8], 16)
    return 1000 + seed % 9000


def clean_rows(on: date) -> int:
    """Rows the cleaning job keeps for ``on``: every region's sales, less 1 % rejects."""
    return sum(sales_rows(on, region) * 99 // 100 for region in REGIONS)


def table_of(on: date) -> str:
    return f"analytics.sales_clean_{on:%Y%m%d}"


async def list_partitions(ctx: TaskContext) -> Mapping[str, Any]:
    """Lists the raw sales partitions of a date (one per region)."""
    bucket = text(ctx.config, "bucket", where="config")
    on = day(ctx.input)
    regions = strings(ctx.input, "regions")
    unknown = sorted(set(regions or ()) - set(REGIONS))
    if unknown:
        raise invalid("INVALID_INPUT", f"unknown regions {unknown}; known: {list(REGIONS)}")
    chosen = [r for r in REGIONS if regions is None or r in regions]
    return {"partitions": [f"s3://{bucket}/sales/date={on.isoformat()}/region={r}" for r in chosen]}


async def extract(ctx: TaskContext) -> Mapping[str, Any]:
    """Copies one raw partition to the staging area; output its row count."""
    require_secret(ctx, "credentials")
    bucket = text(ctx.config, "bucket", where="config")
    partition = text(ctx.input, "partition")
    on = day(ctx.input)
    region = partition.rsplit("region=", 1)[-1] if "region=" in partition else ""
    if region not in REGIONS:
        raise invalid("INVALID_INPUT", f"{partition} is not a sales partition")
    shard = ctx.input.get("shard")
    shard = shard if isinstance(shard, int) and not isinstance(shard, bool) else 0
    return {
        "partition": partition,
        "rows": sales_rows(on, region),
        "staged": f"s3://{bucket}/staging/date={on.isoformat()}/part-{shard:05d}.parquet",
    }


async def submit(ctx: TaskContext) -> Mapping[str, Any]:
    """Runs the cleaning Spark job for a date; output the clean table and its rows."""
    job = text(ctx.config, "job", where="config")
    cluster = text(ctx.config, "cluster", where="config")
    on = day(ctx.input)
    return {
        "jobId": stable_id("spark", cluster, job, on.isoformat()),
        "table": table_of(on),
        "rows": clean_rows(on),
    }


async def load(ctx: TaskContext) -> Mapping[str, Any]:
    """Loads a clean table into the warehouse's sales fact for a date."""
    table = text(ctx.input, "table")
    on = day(ctx.input)
    if table != table_of(on):
        raise invalid("INVALID_INPUT", f"{table} is not the clean table of {on.isoformat()}")
    return {"table": table, "loaded": clean_rows(on)}


async def rollback(ctx: TaskContext) -> Mapping[str, Any]:
    """Undoes ``warehouse/load`` (saga compensation): deletes what it loaded."""
    if ctx.kind is not TaskKind.COMPENSATE:
        raise invalid("INVALID_CONFIG", "warehouse/rollback only compensates warehouse/load")
    loaded = ctx.step_output.get("loaded", 0)
    return {"table": ctx.step_output.get("table", ""), "rolledBack": loaded}
