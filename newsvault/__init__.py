"""newsvault: scheduled scraping and archiving of news sites into verifiable snapshots."""

__version__ = "0.1.0"

# Version of the item and manifest formats; bumped on any incompatible change.
SCHEMA_VERSION = 1
