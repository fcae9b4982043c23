"""Pure parsing helpers used by the clean pipeline (no Scrapy, no I/O)."""
