"""A scripted 10-turn conversation, end to end: webhook in, sendMessage out to the fake Telegram.

Measures, per turn, the time from posting the update to the fake platform receiving the bot's
reply. Baseline in the same run: GET /healthz round trips. Prints one figure a line.

    .venv/bin/python bench/conversation_bench.py [--conversations 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from _harness import percentile, running_caredesk, telegram_update

SCRIPT = [
    "chào shop",
    "bảo hành bao lâu vậy shop",
    "ship ra Hà Nội mất mấy ngày",
    "có trả góp không shop",
    "đơn hàng của mình giao tới đâu rồi",
    "DH100002",
    "0912345678",
    "đổi trả trong bao lâu vậy",
    "cảm ơn shop nhiều",
    "tạm biệt",
]


async def run(conversations: int) -> None:
    async with running_caredesk(demo=True) as harness:
        baseline = []
        for _ in range(100):
            started = time.perf_counter()
            async with harness.http.get("/healthz") as response:
                await response.read()
            baseline.append((time.perf_counter() - started) * 1000)
        latencies: list[float] = []
        update_id = 1
        for n in range(conversations):
            chat_id = 900_000 + n
            for text in SCRIPT:
                before = len(harness.fake.sent_messages(chat_id))
                started = time.perf_counter()
                async with harness.webhook(telegram_update(update_id, chat_id, text)) as response:
                    assert response.status == 200, await response.text()
                update_id += 1
                deadline = time.monotonic() + 10
                while len(harness.fake.sent_messages(chat_id)) <= before:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"no reply to {text!r} in conversation {n}")
                    await asyncio.sleep(0.0005)
                reply_at = [c for c in harness.fake.calls_to("sendMessage")
                            if str(c.params.get("chat_id")) == str(chat_id)][before].at
                latencies.append((reply_at - started) * 1000)
        print(f"turns {len(latencies)}")
        print(f"reply_p50_ms {statistics.median(latencies):.2f}")
        print(f"reply_p99_ms {percentile(latencies, 0.99):.2f}")
        print(f"healthz_p50_ms {statistics.median(baseline):.2f}")
        print(f"reply_p50_vs_healthz_p50 {statistics.median(latencies) / statistics.median(baseline):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=30)
    asyncio.run(run(parser.parse_args().conversations))


if __name__ == "__main__":
    main()
