"""Running runway's services as a deployment: the project-started PostgreSQL (``postgres.py``) for ML Metadata and
Airflow; the first piece of ``runway deploy`` (issue 18). Standard library only: both environments import it."""
