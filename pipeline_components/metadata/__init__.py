"""ML Metadata, the record of every run: where it lives and how it is opened (``connection.py``: a SQLite file per
pipeline, or one PostgreSQL database from ``RUNWAY_METADATA_URL``), reading what runs did (``reader.py``) and
correcting what a node's launch recorded (``outputs.py``). Runtime environment only (``ml_metadata``, TFX)."""
