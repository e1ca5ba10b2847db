#!/usr/bin/env python3
"""drift_rows.py OUT_DIR: a drift reference and synced hub rows for test_hub_release.sh.

Two clinics (c-stable, c-dark), 4 weeks from Monday 2026-01-05, 12 analysed photos a
week each, every value drawn from the reference's own distributions; from week 2
c-dark's photos show darker skin (skin_tone brown / dark). Writes reference.json and
rows.sql (hub_cases + hub_images; the nodes must exist)."""
import json
import random
import sys

out = sys.argv[1]
rnd = random.Random(14)
T0 = 1767571200


def draw(skin_dark=False):
    pm = rnd.random() * rnd.random()
    cat = "high" if pm >= 0.4 else ("medium" if pm >= 0.06 else "low")
    tone = (rnd.choice(["brown", "dark"]) if skin_dark else
            ("light" if rnd.random() < 0.6 else "intermediate"))
    rgb = [150 + 20 * rnd.random() for _ in range(3)]
    ok = rnd.random() > 0.05
    return {
        "status": "ok" if ok else "rejected",
        "quality": {"ok": ok, "checks": []},
        "skin_tone": {"ita": 30.0, "category": tone},
        "probabilities": {"nv": 1 - pm, "mel": pm},
        "risk": {"index": int(pm * 100), "malignant_probability": pm, "category": cat},
        "image_stats": {"mean_rgb": rgb,
                        "brightness": 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]},
        "model": {"name": "basira-derm", "version": "1.0.0", "sha256": "ab" * 32},
    }


ref_rows = [draw() for _ in range(400)]
scored = [r for r in ref_rows if r["status"] == "ok"]


def shares(values):
    d = {}
    for v in values:
        d[v] = d.get(v, 0) + 1
    return {k: c / len(values) for k, c in d.items()}


ref = {
    "format": "basira-drift-reference", "version": 1, "n": len(ref_rows),
    "classes": ["nv", "mel"], "malignant": ["mel"],
    "quality_fail_rate": sum(r["status"] != "ok" for r in ref_rows) / len(ref_rows),
    "shares": {
        "skin_tone": shares([r["skin_tone"]["category"] for r in ref_rows]),
        "photo_kind": {"dermoscopy": 1.0},
        "body_site": {"back": 0.5, "arm": 0.5},
        "risk_category": shares([r["risk"]["category"] for r in scored]),
    },
    "samples": {
        "risk_index": [r["risk"]["index"] for r in scored],
        "p_malignant": [r["risk"]["malignant_probability"] for r in scored],
        "prob:nv": [r["probabilities"]["nv"] for r in scored],
        "prob:mel": [r["probabilities"]["mel"] for r in scored],
        "mean_r": [r["image_stats"]["mean_rgb"][0] for r in ref_rows],
        "mean_g": [r["image_stats"]["mean_rgb"][1] for r in ref_rows],
        "mean_b": [r["image_stats"]["mean_rgb"][2] for r in ref_rows],
        "brightness": [r["image_stats"]["brightness"] for r in ref_rows],
    },
    "model": {"name": "basira-derm", "version": "1.0.0", "sha256": "ab" * 32},
}
with open(f"{out}/reference.json", "w") as f:
    json.dump(ref, f)

sql = []
for clinic in ("c-stable", "c-dark"):
    cid = 0
    for week in range(4):
        for i in range(12):
            cid += 1
            res = draw(skin_dark=(clinic == "c-dark" and week >= 2))
            ts = T0 + week * 604800 + i * 3600
            node = f"(SELECT id FROM hub_nodes WHERE name = '{clinic}')"
            site = rnd.choice(["back", "arm"])
            sql.append(
                f"INSERT INTO hub_cases(node_id, case_id, patient_ref, body_site, consent) "
                f"VALUES({node}, {cid}, 'P{cid}', '{site}', '{{}}');")
            doc = json.dumps(res).replace("'", "''")
            sql.append(
                f"INSERT INTO hub_images(node_id, image_id, case_id, kind, created_at, result) "
                f"VALUES({node}, {cid}, {cid}, 'dermoscopy', {ts}, '{doc}'::jsonb);")
with open(f"{out}/rows.sql", "w") as f:
    f.write("\n".join(sql) + "\n")
