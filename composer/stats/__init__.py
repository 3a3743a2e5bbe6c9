"""Download statistics: access logs in the Common Log Format parsed into downloads per package (docs/stats.md)."""
