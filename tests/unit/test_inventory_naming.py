"""Derived names: one module builds them, and validate holds them to their systems' limits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.load import InventoryError
from fellesdrift.network import intended
from fellesdrift.plan import naming
from fellesdrift.provision import stacks as provision
from fellesdrift.report import status

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inventories"


@pytest.mark.parametrize("env", ["lab", "e2e", "a", "bench-2", "x" * naming.MAX_ENV_LENGTH])
def test_environment_names_that_are_dns_labels_within_the_bound(env: str) -> None:
    assert naming.env_problem(env) is None


@pytest.mark.parametrize("env", ["x" * (naming.MAX_ENV_LENGTH + 1), "Lab", "a.b", "a_b", "-a",
                                 "a-", "", "lab\n", "1lab"])
def test_other_environment_names_are_refused_with_the_reason(env: str) -> None:
    problem = naming.env_problem(env)
    assert problem is not None and str(naming.MAX_ENV_LENGTH) in problem


def test_fixed_names_fit_with_the_longest_environment() -> None:
    env = naming.LONGEST_ENV
    assert len(naming.stack(env, naming.CORE_STACK)) <= naming.PULUMI_STACK
    assert len(naming.machine(env, naming.CORE_ROUTER)) <= naming.DNS_LABEL
    # The finance endpoint's certificate is issued for its service name: CN at most 64 bytes.
    assert len(naming.fqdn(env, naming.SERVICE_ALIASES["finance_hosting"]).encode()) <= \
        naming.X509_NAME
    assert naming.env_problem(env) is None


def test_the_other_modules_build_the_same_names_until_they_use_naming() -> None:
    model = inventory.load([FIXTURES])
    for m in model.municipalities:
        for s in m.sites:
            assert status.site_hosts(m.slug, s.id) == (naming.site_router(m.slug, s.id),
                                                       naming.site_client(m.slug, s.id))
            assert intended.device_name(m, s) == naming.site_router(m.slug, s.id)
        assert intended.prefix_list_name(m.slug) == naming.prefix_list(m.slug)
        assert provision.stack_name("lab", m.slug) == naming.stack("lab", m.slug)
    assert intended.CORE == naming.CORE_ROUTER and provision.CORE == naming.CORE_STACK


def test_databases_never_take_postgresql_names() -> None:
    assert naming.postgres_reserved("postgres") and naming.postgres_reserved("pg_monitor")
    assert not naming.postgres_reserved(naming.database("gis", "vinje"))
    assert naming.database("okonomi", "midt-telemark") == "okonomi_midt_telemark"


SITE_ID = "r" * 22  # the longest site id the schema takes


def _with_slug(tmp_path: Path, slug: str) -> Path:
    folder = tmp_path / "inventories"
    shutil.copytree(FIXTURES, folder)
    vinje = folder / "vinje.yaml"
    (folder / f"{slug}.yaml").write_text(vinje.read_text().replace("slug: vinje", f"slug: {slug}")
                                         .replace("  - id: radhus", f"  - id: {SITE_ID}"))
    vinje.unlink()
    return folder


#: <env>-<slug>-<site>-client is a container name: at most 63 characters with a 16-character env.
FITTING = naming.DNS_LABEL - naming.MAX_ENV_LENGTH - len(f"--{SITE_ID}-client")


def test_names_fit_up_to_the_container_name_limit(tmp_path: Path) -> None:
    slug = "v" * FITTING
    model = inventory.load([_with_slug(tmp_path, slug)])
    client = naming.machine(naming.LONGEST_ENV, naming.site_client(slug, SITE_ID))
    assert len(client) == naming.DNS_LABEL
    assert model.municipality(slug).sites[0].id == SITE_ID


def test_one_character_more_is_refused_at_the_site_id(tmp_path: Path) -> None:
    slug = "v" * (FITTING + 1)
    with pytest.raises(InventoryError) as err:
        inventory.load([_with_slug(tmp_path, slug)])
    [problem] = err.value.problems
    assert (problem.rule, problem.field) == ("name-too-long", "sites.0.id")
    assert f"'<env>-{slug}-{SITE_ID}-" in problem.message and " 63 " in problem.message
