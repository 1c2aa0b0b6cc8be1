"""Model code run inside TFX components (Transform's preprocessing_fn, Trainer's run_fn)."""
