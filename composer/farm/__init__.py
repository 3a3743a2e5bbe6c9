"""The build farm (issue 20): build-all on Dask distributed with a shared, signed, content-addressed cache."""
