"""runway's custom TFX components, one folder each (component.py, executor.py)."""
