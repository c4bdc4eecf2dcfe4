"""Retraining through the real app: the shipped training data plus 1,000 new examples, timed from
``POST /api/nlu/train`` to a job whose candidate and side-by-side comparison are ready.

`caredesk serve` runs in a subprocess on the embedded default (SQLite, no Redis). The 1,000 new
examples (generated customer phrasings over the shipped intents, every text new) go in through
``POST /api/nlu/import`` after ``GET /api/nlu/models`` (what the training page reads first, which
starts the training worker process), and ``GET /api/nlu/review`` is read once as an admin would. Two
retrains are timed back to back. Baseline in the same process: a bare ``train_model`` on the whole set (shipped + new),
which is more than a retrain trains on (it holds 15 % out) and does nothing but train.
Prints one figure a line.

    .venv/bin/python bench/training_bench.py [--new 1000] [--target 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._harness import running_caredesk
from nlu import TrainingData, TrainingExample, load_training_data, train_model
from nlu.training_data import read_training_yaml

ADMIN = {"email": "bench-admin@caredesk.local", "password": "bench-admin-pass-1"}

PRODUCTS = ["máy giặt", "tủ lạnh", "nồi cơm điện", "máy lạnh", "tivi", "lò vi sóng", "máy hút bụi", "quạt điều hoà",
            "bếp từ", "máy lọc nước", "ấm siêu tốc", "máy sấy tóc", "điện thoại", "tai nghe", "laptop"]
OPENERS = ["", "shop ơi ", "cho mình hỏi ", "ad ơi ", "chị ơi ", "em hỏi chút ", "bạn ơi ", "alo shop ", "dạ "]
CLOSERS = ["", " ạ", " nhé", " với", " vậy", " không ạ", " giúp mình", " nha shop", " được không", " ha"]
#: intent -> phrasings with {p} (a product) and {n} (an order number)
TEMPLATES = {
    "order_status": ["đơn {n} của mình tới đâu rồi", "kiểm tra giúp đơn {n}", "đơn {n} giao chưa",
                     "bao giờ đơn {n} tới", "where is order {n}"],
    "ask_delivery_time": ["giao {p} ra tỉnh mất mấy ngày", "đặt {p} hôm nay bao lâu thì nhận",
                          "ship {p} về quê mất bao lâu", "how long to deliver the {p}"],
    "report_defect": ["{p} mới mua đã hỏng", "{p} nhà mình không lên nguồn", "{p} kêu to bất thường",
                      "{p} bị rò điện", "my {p} stopped working"],
    "ask_warranty_policy": ["{p} bảo hành mấy năm", "{p} được bảo hành ở đâu", "chính sách bảo hành {p} thế nào",
                            "warranty for the {p}"],
    "check_warranty_status": ["{p} của mình còn bảo hành không", "tra bảo hành {p} mua theo đơn {n}",
                              "kiểm tra hạn bảo hành {p}"],
    "ask_return_policy": ["{p} không vừa ý có đổi được không", "mua {p} về trả lại được không",
                          "đổi trả {p} trong bao nhiêu ngày"],
    "cancel_order": ["huỷ giúp mình đơn {n}", "mình không lấy {p} nữa, huỷ đơn {n}", "cancel order {n}"],
    "change_order": ["đổi {p} trong đơn {n} sang màu khác", "sửa địa chỉ giao đơn {n}", "thêm {p} vào đơn {n}"],
    "ask_payment": ["mua {p} trả góp được không", "thanh toán {p} bằng thẻ được không", "có cod cho {p} không"],
    "ask_promotion": ["{p} đang giảm giá không", "có mã giảm giá cho {p} không", "khuyến mãi {p} tháng này"],
    "product_usage": ["hướng dẫn dùng {p}", "cách vệ sinh {p}", "{p} dùng chế độ tiết kiệm thế nào"],
    "complain_delivery": ["giao {p} trễ quá", "shipper giao {p} bị móp", "đơn {n} giao sai {p}"],
    "request_human": ["cho gặp nhân viên về {p}", "mình cần người thật tư vấn {p}", "nối máy nhân viên giúp"],
    "ask_store_location": ["cửa hàng nào có {p} trưng bày", "xem {p} trực tiếp ở đâu", "chi nhánh gần nhất bán {p}"],
}


def new_examples(count: int, taken: set[str], seed: int = 7) -> TrainingData:
    """``count`` generated examples whose texts are not in ``taken`` (nor repeat one another)."""
    rng = random.Random(seed)
    intents = sorted(TEMPLATES)
    examples: list[TrainingExample] = []
    seen = set(taken)
    while len(examples) < count:
        intent = rng.choice(intents)
        body = rng.choice(TEMPLATES[intent]).format(p=rng.choice(PRODUCTS), n=f"DH{rng.randint(100000, 999999)}")
        text = f"{rng.choice(OPENERS)}{body}{rng.choice(CLOSERS)}".strip()
        if text not in seen:
            seen.add(text)
            examples.append(TrainingExample(text, intent))
    return TrainingData(examples=examples)


async def retrain(http, headers: dict[str, str]) -> tuple[float, dict]:
    """Click-to-comparison time of one retrain, and the finished job."""
    started = time.perf_counter()
    async with http.post("/api/nlu/train", headers=headers) as response:
        assert response.status == 202, await response.text()
        job = await response.json()
    while job["status"] in ("queued", "running"):
        await asyncio.sleep(0.05)
        async with http.get(f"/api/nlu/jobs/{job['id']}", headers=headers) as response:
            job = await response.json()
    elapsed = time.perf_counter() - started
    assert job["status"] == "succeeded" and job["comparison"], job.get("error")
    return elapsed, job


async def run(new: int, target: float) -> int:
    shipped = load_training_data([ROOT / "data" / "nlu"])
    added = new_examples(new, {example.text for example in shipped.examples})
    env = {"CAREDESK_ADMIN__EMAIL": ADMIN["email"], "CAREDESK_ADMIN__PASSWORD": ADMIN["password"]}
    async with running_caredesk(extra_env=env) as harness:
        http = harness.http
        async with http.post("/api/auth/token", json=ADMIN) as response:
            headers = {"Authorization": f"Bearer {(await response.json())['access_token']}"}
        async with http.get("/api/nlu/models", headers=headers) as response:  # the admin opens the page
            assert response.status == 200
        started = time.perf_counter()
        async with http.post("/api/nlu/import", params={"mode": "merge"}, data=added.to_yaml().encode(),
                             headers={**headers, "Content-Type": "application/x-yaml"}) as response:
            summary = await response.json()
        import_seconds = time.perf_counter() - started
        assert summary["added"] == new, summary
        async with http.get("/api/nlu/review", headers=headers) as response:
            assert response.status == 200
        cold, job = await retrain(http, headers)
        warm, job = await retrain(http, headers)
        async with http.get("/api/nlu/export", headers=headers) as response:
            exported = read_training_yaml(await response.text())

    # Baseline: the whole exported set (shipped + new), trained bare in this process.
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        train_model(exported, Path(tmp) / "model")
        baseline_all = time.perf_counter() - began
    comparison = job["comparison"]
    print(f"cores: {os.cpu_count()}")
    print(f"training set: {len(exported.examples)} examples ({len(shipped.examples)} shipped + {new} new), "
          f"{len(exported.intents)} intents")
    print(f"import of {new} examples: {import_seconds:.2f} s")
    print(f"retrain split: {job['n_train']} trained on, {job['n_holdout']} held out, {job['n_review']} review")
    print(f"baseline bare train_model on all {len(exported.examples)} examples: {baseline_all:.2f} s")
    print(f"retrain click to comparison, first: {cold:.2f} s")
    print(f"retrain click to comparison, second: {warm:.2f} s")
    print(f"ratio first / baseline: {cold / baseline_all:.2f}")
    print(f"ratio second / baseline: {warm / baseline_all:.2f}")
    print(f"candidate held-out accuracy: {comparison['holdout']['candidate']['accuracy']:.4f}, "
          f"macro F1 {comparison['holdout']['candidate']['macro_f1']:.4f}, verdict {comparison['verdict']}")
    met = max(cold, warm) < target
    print(f"target {target:.0f} s: {'met' if met else 'MISSED'}")
    return 0 if met else 1


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new", type=int, default=1000, help="new examples added before retraining")
    parser.add_argument("--target", type=float, default=15.0, help="seconds the retrain must stay under")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.new, args.target))


if __name__ == "__main__":
    sys.exit(main())
