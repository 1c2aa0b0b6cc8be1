"""ML Metadata, the record of every run: reading what runs did (``reader.py``) and correcting what a node's
launch recorded (``outputs.py``). Runtime environment only (``ml_metadata``, TFX)."""
