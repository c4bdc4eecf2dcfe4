"""Download lanes (``storage.download_lanes``): how many customers' files a worker fetches at once.
One lane (the default) fetches a burst one file after another; two fetch two at a time."""

from __future__ import annotations

import pytest

from tests.conftest import start_client
from tests.helpdesk.attachments.conftest import APP_SECRET, image, messenger_event, post_messenger
from tests.helpdesk.attachments.files import jpeg

#: customers each sending one photo at once (their messages spread over both lanes)
CUSTOMERS = 6


async def burst_on_a_slow_cdn(make_settings, graph, host, storage_dir, lanes: int | None) -> int:
    """The most downloads the CDN saw at once while ``CUSTOMERS`` photos, each answered after 0.5 s,
    were fetched by an app with ``lanes`` download lanes (``None``: the default)."""
    storage = {"local_dir": str(storage_dir)}
    if lanes is not None:
        storage["download_lanes"] = lanes
    settings = make_settings(
        facebook={"verify_token": "v", "app_secret": APP_SECRET, "page_access_token": "EAAG-page-token",
                  "graph_api_base": graph.base_url},
        storage=storage, secret_key="attachments-test-secret-key")
    host.delay_s = 0.5
    async for client in start_client(settings):
        for n in range(CUSTOMERS):
            url = host.serve(f"cdn/{n}.jpg", jpeg(200 + n, 150), "image/jpeg")
            response = await post_messenger(client, messenger_event(f"m_lane_{n}", [image(url)],
                                                                    psid=f"68432157901{n:05d}"))
            assert response.status_code == 200
        await client.settle(timeout=30)
    assert len(host.requests) == CUSTOMERS
    return host.most_in_flight


@pytest.mark.slow
async def test_two_lanes_download_two_files_at_once(make_settings, graph, host, storage_dir):
    assert await burst_on_a_slow_cdn(make_settings, graph, host, storage_dir, lanes=2) == 2


@pytest.mark.slow
async def test_one_lane_by_default_downloads_one_file_at_a_time(make_settings, graph, host, storage_dir):
    assert await burst_on_a_slow_cdn(make_settings, graph, host, storage_dir, lanes=None) == 1


@pytest.mark.parametrize("lanes", ["0", "-1", "many"])
def test_a_lane_count_that_is_not_a_positive_number_is_refused(make_settings, monkeypatch, lanes):
    monkeypatch.setenv("CAREDESK_STORAGE__DOWNLOAD_LANES", lanes)
    with pytest.raises(ValueError, match="download_lanes"):
        make_settings()


def test_lanes_are_read_from_the_environment(make_settings, monkeypatch):
    monkeypatch.setenv("CAREDESK_STORAGE__DOWNLOAD_LANES", "3")
    assert make_settings().storage.download_lanes == 3
