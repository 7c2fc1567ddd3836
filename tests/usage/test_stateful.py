"""With stored responses, the spend layer sits inside the stateful layer: a continued
conversation is charged for the input it really sends, and a background run is recorded with its
real cost."""

from __future__ import annotations

import anyio
import httpx

from akgate import Catalog, DemoModel, gateway
from akgate.auth import MemoryKeyStore, new_key_record
from akgate.usage import MemoryLedgerBackend, UsageLedger


async def test_continued_and_background_responses_are_recorded() -> None:
    new = new_key_record(name="t")
    backend = MemoryLedgerBackend()
    ledger = UsageLedger(backend)
    app = gateway(
        DemoModel(),
        keys=MemoryKeyStore([new.record]),
        catalog=Catalog.demo(),
        app_provider="demo",
        response_store="memory://",
        spend_options={"ledger": ledger},
    )
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": f"Bearer {new.key}"}
    costs = []
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        first = await c.post("/v1/responses", json={"model": "demo", "input": "hi", "store": True})
        costs.append(first.json()["routing_metadata"]["cost"]["usd"])
        again = await c.post(
            "/v1/responses",
            json={"model": "demo", "input": "again", "previous_response_id": first.json()["id"]},
        )
        costs.append(again.json()["routing_metadata"]["cost"]["usd"])
        queued = await c.post(
            "/v1/responses",
            json={"model": "demo", "input": "bg", "background": True, "store": True},
        )
        assert queued.json()["status"] == "queued"
        with anyio.fail_after(10):
            while True:
                done = await c.get(f"/v1/responses/{queued.json()['id']}")
                if done.json()["status"] == "completed":
                    break
                await anyio.sleep(0.02)
        costs.append(done.json()["routing_metadata"]["cost"]["usd"])
    await app.aclose()  # type: ignore[attr-defined]
    ledger.close()
    records = backend.records
    assert [r.cost_usd for r in records] == costs  # the queued answer itself is not a charge
    assert records[1].input_tokens > records[0].input_tokens  # the earlier turn was sent again
