"""Resident memory of the API process after serving 1 tenant, then 200: target growth < 20 MB.

Set-up: 200 tenants cloned at head (`benchmarks.support.clone_tenants`), each with one user
made by the identity action. Then the real API runs as a subprocess (`renshi serve` with
DATABASE_URL set, spare-schema keeper included, on a free port), driven over HTTP one
request at a time:

1. warm-up: `--warm-up` rounds of login + `{ viewer { user { email } } }` on tenant 1;
2. RSS after 1 tenant;
3. login + viewer for each of the other tenants, then RSS after all of them;
4. viewer again for every tenant with the tokens already held, then RSS once more, to
   tell a cost per tenant from a leak per request.

Every answer is checked to carry its own tenant's user.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO
from unittest import mock

import httpx
import psutil

from benchmarks.support import bench_engine, clone_tenants, machine, throwaway_database
from domain.identity import passwords
from domain.identity.actions import create_user

# NOTE: users.employee_id references employees; that model must be mapped to flush a user.
from domain.people import models as _people_models  # noqa: F401
from renshi.settings import get_settings
from tenants.context import use_tenant
from tenants.database import create_engine
from tenants.provisioning import count_spares
from tenants.registry import get_active_tenant

TARGET_GROWTH_MB = 20.0
PASSWORD = "benchmark-password"  # noqa: S105 - a throwaway user in a throwaway database
PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOGIN = """mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken userErrors { code message } }
}"""
VIEWER = "{ viewer { user { email } } }"


@dataclasses.dataclass
class Figures:
    prepared: float = 0.0
    served: float = 0.0
    after_one: float = 0.0
    after_all: float = 0.0
    after_again: float = 0.0


def email_of(slug: str) -> str:
    return f"admin@{slug}.test"


async def prepare(url: str, slugs: list[str]) -> None:
    """Register `slugs` at head, each with one admin whose password is `PASSWORD`."""
    # NOTE: every user has the same password, so one Argon2 hash serves them all; that
    # saves minutes of set-up. The API still verifies each login in full.
    one_hash = functools.cache(passwords.hash_password)
    async with bench_engine(url) as engine:
        await clone_tenants(url, engine, slugs)
        with mock.patch.object(passwords, "hash_password", one_hash):
            for slug in slugs:
                tenant = await get_active_tenant(slug)
                with use_tenant(tenant):
                    await create_user(
                        tenant,
                        email=email_of(slug),
                        display_name=f"Admin of {slug}",
                        password=PASSWORD,
                        roles=["admin"],
                    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def api_server(url: str, log: IO[str]) -> AsyncIterator[tuple[psutil.Process, str]]:
    """`renshi serve` on a free port; yields its process and base URL once it answers."""
    port = free_port()
    # PYTHONPATH: the server runs the same code as this script, even from another checkout.
    env = os.environ | {"DATABASE_URL": url, "PYTHONPATH": str(PROJECT_ROOT)}
    command = [str(Path(sys.executable).parent / "renshi"), "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=base, timeout=1) as probe:
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"The API exited with {process.returncode}; see {log.name}.")
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get("/healthz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"The API did not start within 60 s; see {log.name}.")
                await asyncio.sleep(0.2)
        yield psutil.Process(process.pid), base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


async def spares_ready(url: str) -> None:
    """Wait until the API's keeper has made its spare schemas, so it is idle from then on."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        deadline = time.monotonic() + 60
        target = get_settings().spare_schemas
        while await count_spares(engine) < target and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


async def login(client: httpx.AsyncClient, slug: str) -> str:
    variables = {"email": email_of(slug), "password": PASSWORD}
    response = await client.post(
        "/graphql", json={"query": LOGIN, "variables": variables}, headers={"X-Tenant": slug}
    )
    payload = response.json()["data"]["login"]
    if payload["userErrors"] or not payload["accessToken"]:
        raise SystemExit(f"Login to {slug} failed: {payload}")
    return str(payload["accessToken"])


async def ask_viewer(client: httpx.AsyncClient, slug: str, token: str) -> None:
    response = await client.post(
        "/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {token}"}
    )
    body = response.json()
    email = (((body.get("data") or {}).get("viewer") or {}).get("user") or {}).get("email")
    if email != email_of(slug):
        raise SystemExit(f"Tenant {slug} got the wrong answer: {body}")


async def rss_mb(process: psutil.Process) -> float:
    await asyncio.sleep(0.5)  # let the server finish with the last response
    return float(process.memory_info().rss) / 2**20


async def measure(slugs: list[str], warm_up: int) -> Figures:
    figures = Figures()
    async with throwaway_database("memory") as url:
        started = time.perf_counter()
        await prepare(url, slugs)
        figures.prepared = time.perf_counter() - started

        with tempfile.NamedTemporaryFile("w", prefix="renshi-api-", suffix=".log") as log:
            async with (
                api_server(url, log) as (process, base),
                httpx.AsyncClient(base_url=base, timeout=60) as client,
            ):
                await spares_ready(url)
                first = slugs[0]
                for _ in range(warm_up):
                    await ask_viewer(client, first, await login(client, first))
                figures.after_one = await rss_mb(process)

                tokens = {first: await login(client, first)}
                await ask_viewer(client, first, tokens[first])
                started = time.perf_counter()
                for slug in slugs[1:]:
                    tokens[slug] = await login(client, slug)
                    await ask_viewer(client, slug, tokens[slug])
                figures.served = time.perf_counter() - started
                figures.after_all = await rss_mb(process)

                for slug in slugs:
                    await ask_viewer(client, slug, tokens[slug])
                figures.after_again = await rss_mb(process)
    return figures


def report(figures: Figures, tenants: int, warm_up: int, load_before: str) -> None:
    growth = figures.after_all - figures.after_one
    print(f"API process resident memory (RSS), 1 tenant vs {tenants} tenants")
    print(f"Before: {load_before}")
    print(f"After:  {machine()}")
    print(
        f"Set-up, not measured: {tenants} tenants with one user each in"
        f" {figures.prepared:.1f} s; warm-up {warm_up} x (login + viewer) on tenant 1"
    )
    print()
    print(f"RSS after 1 tenant (warm)                     {figures.after_one:8.1f} MB")
    print(
        f"RSS after login + viewer for {tenants:>3} tenants      {figures.after_all:8.1f} MB"
        f"   ({tenants - 1} tenants served in {figures.served:.1f} s)"
    )
    print(f"RSS after viewer again for all {tenants:>3} tenants   {figures.after_again:8.1f} MB")
    print()
    verdict = "met" if growth < TARGET_GROWTH_MB else "MISSED"
    print(f"Growth from 1 to {tenants} tenants: {growth:+.1f} MB")
    print(f"Target growth < {TARGET_GROWTH_MB:g} MB: {verdict}")
    ratio = figures.after_all / figures.after_one
    print(f"RSS with {tenants} tenants / RSS with 1 tenant: {ratio:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=200, help="Tenants served.")
    parser.add_argument("--warm-up", type=int, default=5, help="Warm-up rounds on tenant 1.")
    args = parser.parse_args()
    load_before = machine()
    slugs = [f"r{i:04d}" for i in range(args.tenants)]
    figures = asyncio.run(measure(slugs, args.warm_up))
    report(figures, args.tenants, args.warm_up, load_before)


if __name__ == "__main__":
    main()
