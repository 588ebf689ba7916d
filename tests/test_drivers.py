"""Key-driver figures checked against synthetic feeds whose true effects are known."""

from __future__ import annotations

import numpy as np
import pytest

from nlp.drivers import DriverConfig, csat_points, key_drivers, nps_points

TRUE_EFFECTS = {"livraison": -2.0, "emballage": -1.0, "prix": 0.0, "qualite_produit": 0.8}


def synthetic_feed(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    livraison = rng.random(n) < 0.30
    # Damaged parcels come mostly with late ones: a naive difference of means would blame
    # emballage for part of livraison's effect.
    emballage = np.where(livraison, rng.random(n) < 0.45, rng.random(n) < 0.05)
    presence = {
        "livraison": livraison,
        "emballage": emballage,
        "prix": rng.random(n) < 0.20,
        "qualite_produit": rng.random(n) < 0.40,
    }
    score = 7.0 + sum(TRUE_EFFECTS[t] * presence[t] for t in presence)
    score = score + rng.normal(0, 1.5 + presence["livraison"], n)  # heteroskedastic noise
    return presence, score


def test_effects_recover_known_truth_with_covering_intervals():
    presence, score = synthetic_feed(6000, seed=7)
    effects = {e.theme: e for e in key_drivers(presence, score)}
    assert set(effects) == set(TRUE_EFFECTS)
    for theme, truth in TRUE_EFFECTS.items():
        e = effects[theme]
        assert e.ci_low <= truth <= e.ci_high, (theme, e)
        assert abs(e.effect - truth) < 0.25, (theme, e)
    assert effects["livraison"].significant and effects["emballage"].significant
    assert not effects["prix"].significant
    # The naive gap overstates emballage (it co-occurs with late deliveries); the model does not.
    naive = effects["emballage"].mean_with - effects["emballage"].mean_without
    assert naive < -1.3 < effects["emballage"].effect


def test_ranked_by_impact_and_impact_is_effect_times_share():
    presence, score = synthetic_feed(3000, seed=11)
    effects = key_drivers(presence, score)
    assert effects[0].theme == "livraison"
    impacts = [e.impact for e in effects]
    assert impacts == sorted(impacts)
    liv = effects[0]
    assert liv.impact == pytest.approx(liv.effect * presence["livraison"].mean())


def test_interval_coverage_close_to_nominal():
    misses = 0
    for seed in range(200):
        presence, score = synthetic_feed(400, seed=1000 + seed)
        e = {d.theme: d for d in key_drivers(presence, score)}["livraison"]
        misses += not (e.ci_low <= TRUE_EFFECTS["livraison"] <= e.ci_high)
    assert 2 <= misses <= 20  # 95 % intervals: about 10 misses in 200


def test_rare_themes_left_out_and_lengths_checked():
    presence, score = synthetic_feed(500, seed=3)
    presence["site_appli"] = np.zeros(500, dtype=bool)
    presence["site_appli"][:5] = True
    assert "site_appli" not in {e.theme for e in key_drivers(presence, score)}
    assert key_drivers({"x": [True] * 10}, [1.0] * 10, DriverConfig(min_mentions=1)) == []
    with pytest.raises(ValueError, match="rows"):
        key_drivers({"livraison": [True, False]}, [1.0, 2.0, 3.0])


def test_nps_and_csat_codings():
    assert nps_points([10, 9, 8, 7, 6, 0]).tolist() == [100, 100, 0, 0, -100, -100]
    assert csat_points([5, 4, 3, 1]).tolist() == [100, 100, 0, 0]
    rng = np.random.default_rng(5)
    late = rng.random(4000) < 0.3
    answers = np.clip(np.round(rng.normal(8.5 - 3 * late, 1.2)), 0, 10)
    effects = key_drivers({"livraison": late}, nps_points(answers))
    nps_with = nps_points(answers[late]).mean()
    nps_without = nps_points(answers[~late]).mean()
    assert effects[0].effect == pytest.approx(nps_with - nps_without)  # one theme: plain gap


def test_frequency_weights_equal_the_expanded_data():
    # Grouped counts (what the precomputed driver cells hold) give the expanded data's result.
    rng = np.random.default_rng(4)
    a = rng.random(400) < 0.3
    b = rng.random(400) < 0.4
    y = np.round(7 - 2 * a - 1 * b + rng.normal(0, 1.5, 400)).clip(0, 10)
    cells: dict[tuple[bool, bool, float], int] = {}
    for key in zip(a.tolist(), b.tolist(), y.tolist(), strict=True):
        cells[key] = cells.get(key, 0) + 1
    keys = list(cells)
    grouped = key_drivers(
        {"a": [k[0] for k in keys], "b": [k[1] for k in keys]},
        [k[2] for k in keys],
        weights=[cells[k] for k in keys],
    )
    expanded = key_drivers({"a": a.tolist(), "b": b.tolist()}, y.tolist())
    assert len(keys) < 100 and len(grouped) == len(expanded) == 2
    for g, e in zip(grouped, expanded, strict=True):
        assert g.theme == e.theme and g.mentions == e.mentions
        for field in ("mean_with", "mean_without", "effect", "ci_low", "ci_high", "impact"):
            assert getattr(g, field) == pytest.approx(getattr(e, field), rel=1e-9, abs=1e-9)
        assert g.p_value == pytest.approx(e.p_value, rel=1e-6, abs=1e-12)
    with pytest.raises(ValueError):
        key_drivers({"a": [True]}, [1.0], weights=[1.0, 2.0])
