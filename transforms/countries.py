"""dim_country from the reference seed (data/reference/countries.csv)."""

from __future__ import annotations

from datetime import date

import polars as pl

# dim_country's columns (declared with their docs in eujp/schema/reference.py).
COLUMNS: dict[str, pl.DataType] = {
    "iso2": pl.String(), "iso3": pl.String(), "name": pl.String(), "eurostat_code": pl.String(),
    "sipri_name": pl.String(), "eu_entry_date": pl.Date(), "eu_exit_date": pl.Date(), "is_eu_member": pl.Boolean(),
}


def build_dim_country(seed: pl.DataFrame, today: date) -> pl.DataFrame:
    """Type the seed's columns and derive `is_eu_member` as of `today`.

    `eu_exit_date` is the last day of membership (the UK left at the end of 2020-01-31)."""
    out = seed.with_columns(
        pl.col("eu_entry_date").cast(pl.String).str.to_date("%Y-%m-%d", strict=True),
        pl.col("eu_exit_date").cast(pl.String).str.to_date("%Y-%m-%d", strict=True),
    ).with_columns(
        (
            pl.col("eu_entry_date").is_not_null()
            & (pl.col("eu_entry_date") <= today)
            & (pl.col("eu_exit_date").is_null() | (pl.col("eu_exit_date") >= today))
        ).alias("is_eu_member")
    )
    return out.select([pl.col(c).cast(t) for c, t in COLUMNS.items()])


def eu_members_on(dim_country: pl.DataFrame, day: date) -> list[str]:
    """ISO2 codes of the EU member states on `day` (e.g. 27 after 2020-01-31)."""
    return (
        dim_country.filter(
            pl.col("eu_entry_date").is_not_null()
            & (pl.col("eu_entry_date") <= day)
            & (pl.col("eu_exit_date").is_null() | (pl.col("eu_exit_date") >= day))
        )
        .get_column("iso2")
        .sort()
        .to_list()
    )
