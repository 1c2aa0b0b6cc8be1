"""Static checks of the deployment files (no Docker engine runs here or in CI)."""

from __future__ import annotations

import re

import yaml

from pipeline_components.settings import CHECKOUT


def test_compose_services_images_and_builds() -> None:
    compose = yaml.safe_load((CHECKOUT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in (
        "postgres",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    ):
        assert name in services, f"docker-compose.yml lacks {name}"
    for name, service in services.items():
        image = service.get("image", "")
        assert image and not image.endswith(":latest") and ":" in image, f"{name}: pin the image tag ({image!r})"
        if "build" in service:
            assert (CHECKOUT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        env = service.get("environment", {})
        if name.startswith("airflow-"):
            assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
            assert "runway-data:/var/lib/runway" in service["volumes"]


def test_dockerfiles_pin_their_base_and_do_not_run_as_root() -> None:
    for dockerfile in CHECKOUT.glob("infra/**/Dockerfile"):
        text = dockerfile.read_text()
        bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
        assert bases and all(":" in b and not b.endswith(":latest") for b in bases), dockerfile
        users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
        assert users and users[-1] not in ("root", "0"), f"{dockerfile} runs as root"
