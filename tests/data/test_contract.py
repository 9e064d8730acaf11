"""One contract, three providers (files, Redis, HTTP): CRUD, referential rules, changes."""

from __future__ import annotations

import asyncio

import pytest
from routr_data_testkit import Opener, agent, domain, gateway, number, peer, user, wait_until

from routr.data import (
    AlreadyExists,
    Change,
    DataProvider,
    DependentObjects,
    NotFound,
    UnfulfilledDependency,
)
from routr.data.passwords import verify_secret
from routr.models import Agent, Domain, Number, User, parse_resource, public_dict


async def seed(p: DataProvider) -> None:
    """A gateway, a number on it, a domain egressing through it, an agent in the domain."""
    await p.create(gateway(ref="gw-prov"))
    await p.create(number(ref="dd-pstn"))
    await p.create(domain(ref="dm-local", egressPolicy={"rule": ".*", "numberRef": "dd-pstn"}))
    await p.create(agent(ref="ag-1001"))


async def test_starts_empty(provider: DataProvider) -> None:
    for kind in ("agents", "Domain", "pr", "gateway", "numbers", "users"):
        page = await provider.list(kind)
        assert (page.items, page.total) == ([], 0)


async def test_create_get_list_find(provider: DataProvider) -> None:
    await seed(provider)
    got = await provider.get("Agent", "ag-1001")
    assert isinstance(got, Agent) and got.spec.credentials.secret == "1234"
    assert got.metadata.createdOn is not None and got.metadata.modifiedOn is not None
    assert (await provider.find_by_key("Domain", "SIP.LOCAL")) is not None
    assert (await provider.find_by_key("agent", "1001@sip.local")) == got
    found = await provider.find_by_key("Number", "tel:17066041487")
    assert found is not None and found.ref == "dd-pstn"
    assert await provider.find_by_key("Peer", "nobody") is None
    with pytest.raises(NotFound):
        await provider.get("Agent", "ag-none")


async def test_pages_and_filters(provider: DataProvider) -> None:
    await provider.create(domain())
    for n in range(1001, 1008):
        await provider.create(agent(str(n)))
    page = await provider.list("Agent", page=2, items_per_page=3)
    assert page.total == 7 and len(page.items) == 3
    usernames = [a.spec.credentials.username for a in page.items if isinstance(a, Agent)]
    assert usernames == ["1004", "1005", "1006"]
    flt = "@.spec.credentials.username == '1003' || @.spec.credentials.username == 1005"
    matched = await provider.list("Agent", filter=flt)
    assert matched.total == 2
    none = await provider.list("Agent", filter="@.spec.credentials.secret == '1234'")
    assert none.total == 0  # secrets are not searchable


async def test_unfulfilled_dependencies(provider: DataProvider) -> None:
    with pytest.raises(UnfulfilledDependency, match=r"Domain sip\.local"):
        await provider.create(agent())
    with pytest.raises(UnfulfilledDependency, match="Gateway gw-prov"):
        await provider.create(number())
    with pytest.raises(UnfulfilledDependency, match="Number dd-x"):
        await provider.create(domain(egressPolicies=[{"rule": ".*", "numberRef": "dd-x"}]))
    assert len(await provider.snapshot()) == 0


@pytest.mark.parametrize(
    "duplicate",
    [
        lambda: domain("SIP.local", ref="dm-other"),
        lambda: agent("1001", ("sip.local",), ref="ag-other"),
        lambda: number("tel:17066041487", ref="dd-other"),
        lambda: gateway(ref="gw-other"),
        lambda: agent(ref="ag-1001", domains=("sip.local",), privacy="Private"),
    ],
    ids=["domainUri", "agent user@domain", "telUrl digits", "gateway host:port", "same ref"],
)
async def test_already_exists(provider: DataProvider, duplicate: object) -> None:
    await seed(provider)
    assert callable(duplicate)
    with pytest.raises(AlreadyExists):
        await provider.create(duplicate())


async def test_unique_usernames(provider: DataProvider) -> None:
    await provider.create(peer())
    await provider.create(user())
    with pytest.raises(AlreadyExists):
        await provider.create(
            parse_resource(
                {
                    **public_dict(peer()),
                    "metadata": {"name": "Other", "ref": "pr-2"},
                    "spec": {"credentials": {"username": "ast", "secret": "x"}},
                }
            )
        )
    with pytest.raises(AlreadyExists):
        await provider.create(
            parse_resource(
                {
                    "kind": "User",
                    "metadata": {"name": "Root", "ref": "ur-2"},
                    "spec": {"credentials": {"username": "admin", "secret": "x"}},
                }
            )
        )
    # the same username in another domain is another agent
    await provider.create(domain("sip.other"))
    await provider.create(domain())
    await provider.create(agent("1001", ("sip.local",)))
    await provider.create(agent("1001", ("sip.other",)))


async def test_delete_refused_while_referenced(provider: DataProvider) -> None:
    await seed(provider)
    with pytest.raises(DependentObjects, match="ag-1001"):
        await provider.delete("Domain", "dm-local")
    with pytest.raises(DependentObjects, match="dd-pstn"):
        await provider.delete("Gateway", "gw-prov")
    with pytest.raises(DependentObjects, match="dm-local"):
        await provider.delete("Number", "dd-pstn")
    for kind, ref in [
        ("Agent", "ag-1001"),
        ("Domain", "dm-local"),
        ("Number", "dd-pstn"),
        ("Gateway", "gw-prov"),
    ]:
        deleted = await provider.delete(kind, ref)
        assert deleted.ref == ref
    assert len(await provider.snapshot()) == 0
    with pytest.raises(NotFound):
        await provider.delete("Agent", "ag-1001")


async def test_update(provider: DataProvider) -> None:
    await seed(provider)
    before = await provider.get("Agent", "ag-1001")
    changed = agent(ref="ag-1001", privacy="Private")
    updated = await provider.update(changed)
    assert isinstance(updated, Agent) and updated.spec.privacy == "Private"
    again = await provider.get("Agent", "ag-1001")
    assert again == updated
    assert again.metadata.createdOn == before.metadata.createdOn
    with pytest.raises(NotFound):
        await provider.update(agent(ref="ag-none"))
    # renaming the domain would strand its agent
    with pytest.raises(DependentObjects):
        await provider.update(domain("sip.renamed", ref="dm-local"))
    with pytest.raises(UnfulfilledDependency):
        await provider.update(number(ref="dd-pstn", gw_ref="gw-none"))
    with pytest.raises(AlreadyExists):
        await provider.create(domain("sip.other", ref="dm-other"))
        await provider.update(domain("sip.local", ref="dm-other"))


async def test_change_notifications(provider: DataProvider) -> None:
    seen: list[Change] = []
    unsubscribe = provider.subscribe(seen.append)
    await provider.create(domain(ref="dm-local"))
    await provider.update(domain(ref="dm-local", accessControlList={"deny": ["0.0.0.0/0"]}))
    await provider.delete("Domain", "dm-local")
    unsubscribe()
    await provider.create(domain(ref="dm-later"))
    assert [(c.type, c.kind, c.ref) for c in seen] == [
        ("ADDED", "Domain", "dm-local"),
        ("MODIFIED", "Domain", "dm-local"),
        ("DELETED", "Domain", "dm-local"),
    ]


async def test_changes_iterator(provider: DataProvider) -> None:
    stream = provider.changes()
    waiter = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    await provider.create(user())
    change = await asyncio.wait_for(waiter, 5)
    assert (change.type, change.kind) == ("ADDED", "User")
    await stream.aclose()


async def test_another_instance_sees_writes(
    provider: DataProvider, open_same_store: Opener
) -> None:
    other = open_same_store()
    await other.start()
    try:
        heard: list[Change] = []
        other.subscribe(heard.append)
        await seed(provider)
        await wait_until(lambda: len(heard) == 4, what="the other instance to hear 4 changes")
        assert {c.ref for c in heard} == {"gw-prov", "dd-pstn", "dm-local", "ag-1001"}
        got = await other.get("Number", "dd-pstn")
        assert isinstance(got, Number)
        # and the other way round, with its rules seeing the first one's data
        with pytest.raises(AlreadyExists):
            await other.create(domain("sip.local", ref="dm-dup"))
        await other.create(domain("sip.two", ref="dm-two"))
        await wait_until(
            lambda: provider.current().get("Domain", "dm-two") is not None,
            what="the first instance to see dm-two",
        )
        assert isinstance(await provider.get("Domain", "dm-two"), Domain)
    finally:
        await other.close()


async def test_user_secrets_are_stored_hashed(provider: DataProvider) -> None:
    created = await provider.create(user())
    assert isinstance(created, User)
    fetched = await provider.get("User", created.ref)
    assert isinstance(fetched, User)
    stored = fetched.spec.credentials.secret
    assert stored.startswith("$argon2id$") and "changeit" not in stored
    assert verify_secret(stored, "changeit") and not verify_secret(stored, "changeit!")
    # An update that carries the hash keeps it: no hash of a hash.
    again = await provider.update(fetched)
    assert isinstance(again, User) and again.spec.credentials.secret == stored
    # Agents keep their secret as written: digest needs it.
    await provider.create(domain())
    await provider.create(agent("1001", ("sip.local",)))
    found = await provider.find_by_key("Agent", "1001@sip.local")
    assert isinstance(found, Agent) and found.spec.credentials.secret == "1234"


def test_hand_written_plain_secrets_still_verify() -> None:
    assert verify_secret("changeit", "changeit")
    assert not verify_secret("changeit", "change")
    assert not verify_secret("$argon2id$broken", "x")
