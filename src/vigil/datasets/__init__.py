"""Datasets: uploads in four formats, stored as Parquet, with inferred schemas and previews."""
