"""Key-driver figures checked against synthetic feeds whose true effects are known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

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


# --- statistical-correctness audit: regressions --------------------------------------------

ANY = DriverConfig(min_mentions=1)


def _reference_hc3(
    presence: dict[str, np.ndarray], y: np.ndarray, w: np.ndarray, confidence: float = 0.95
) -> dict[str, tuple[float, float, float]]:
    """OLS + HC3 + Student interval on the expanded data (one row per verbatim), plain numpy."""
    from scipy import stats

    counts = w.astype(int)
    x = np.repeat(
        np.column_stack([np.ones(y.size)] + [v.astype(float) for v in presence.values()]),
        counts,
        axis=0,
    )
    yy = np.repeat(y, counts)
    beta, *_ = np.linalg.lstsq(x, yy, rcond=None)
    e = yy - x @ beta
    inv = np.linalg.inv(x.T @ x)
    h = np.einsum("ij,jk,ik->i", x, inv, x)
    cov = inv @ ((x * (e**2 / np.clip(1 - h, 1e-9, None) ** 2)[:, None]).T @ x) @ inv
    t = stats.t.ppf(0.5 + confidence / 2, yy.size - x.shape[1])
    se = np.sqrt(np.diag(cov))
    return {
        theme: (beta[j], beta[j] - t * se[j], beta[j] + t * se[j])
        for j, theme in enumerate(presence, start=1)
    }


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(12, 60),
    k=st.integers(1, 3),
)
def test_matches_a_reference_hc3_regression_on_expanded_data(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    presence = {f"t{j}": rng.random(n) < rng.uniform(0.2, 0.7) for j in range(k)}
    y = np.round(rng.normal(6, 2, n) - sum(v for v in presence.values())).clip(0, 10)
    w = rng.integers(1, 5, n).astype(float)
    x = np.column_stack([np.ones(n)] + list(presence.values())).astype(float)
    assume(all(0 < v.sum() < n for v in presence.values()))
    assume(np.linalg.matrix_rank(x) == k + 1 and w.sum() > k + 3)
    got = {e.theme: e for e in key_drivers(presence, y, ANY, w.tolist())}
    assert set(got) == set(presence)
    for theme, (beta, low, high) in _reference_hc3(presence, y, w).items():
        e = got[theme]
        assert e.effect == pytest.approx(beta, abs=1e-9)
        assert e.ci_low == pytest.approx(low, abs=1e-7)
        assert e.ci_high == pytest.approx(high, abs=1e-7)
        assert e.impact == pytest.approx(e.effect * e.mentions / w.sum(), abs=1e-9)


def test_themes_always_named_together_are_not_split_into_two_false_effects():
    # Two themes with the same presence column: the old code split the effect in two halves,
    # each "significant" with a narrow interval that misses the truth (-2.0 -> -1.0, -1.0).
    rng = np.random.default_rng(21)
    late = rng.random(800) < 0.35
    y = 7.0 - 2.0 * late + rng.normal(0, 1.0, 800)
    effects = key_drivers({"retard": late, "delai": late.copy()}, y, ANY)
    assert [e.theme for e in effects] == ["delai"]  # same mentions: first by name is kept
    assert effects[0].ci_low <= -2.0 <= effects[0].ci_high
    # A theme named exactly when another one is not is the intercept minus it: aliased too.
    effects = key_drivers({"a": late, "not_a": ~late}, y, ANY)
    assert [e.theme for e in effects] == ["not_a"]  # the more mentioned one
    assert effects[0].ci_low <= 2.0 <= effects[0].ci_high
    # a = b + c (b, c: a split in two): three columns of rank two.
    b = late & (rng.random(800) < 0.5)
    effects = key_drivers({"a": late, "b": b, "c": late & ~b}, y, ANY)
    assert {e.theme for e in effects} == {"a", "b"}


def test_theme_never_or_always_named_is_left_out_even_without_a_mention_floor():
    rng = np.random.default_rng(2)
    a = rng.random(300) < 0.4
    y = 5 - a + rng.normal(0, 1, 300)
    config = DriverConfig(min_mentions=0)
    effects = key_drivers({"a": a, "never": np.zeros(300, bool), "always": np.ones(300)}, y, config)
    assert [e.theme for e in effects] == ["a"]  # "never" came back with a NaN mean and p = 0


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(3, 80),
    k=st.integers(1, 6),
    level=st.sampled_from([-100.0, 0.0, 3.0, 7.0, 100.0, 1e6]),
    weighted=st.booleans(),
)
def test_identical_scores_give_zero_effects_never_significant(
    seed: int, n: int, k: int, level: float, weighted: bool
) -> None:
    # Rounding noise (|effect| ~ 1e-16 over se ~ 1e-16) used to give p-values anywhere in [0, 1]
    # and, by chance, a "significant" zero effect.
    rng = np.random.default_rng(seed)
    presence = {f"t{j}": rng.random(n) < 0.5 for j in range(k)}
    weights = rng.integers(1, 50, n).tolist() if weighted else None
    for e in key_drivers(presence, [level] * n, ANY, weights):
        assert e.effect == 0.0 and e.ci_low == e.ci_high == 0.0
        assert e.p_value == 1.0 and not e.significant


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 12),
    k=st.integers(1, 8),
    min_mentions=st.integers(0, 2),
)
def test_tiny_samples_give_finite_coherent_figures(
    seed: int, n: int, k: int, min_mentions: int
) -> None:
    # n can be below the number of themes: never NaN, never an interval that excludes its
    # own estimate, never more effects than the data can identify.
    rng = np.random.default_rng(seed)
    presence = {f"t{j}": rng.random(n) < 0.5 for j in range(k)}
    y = rng.integers(0, 11, n).astype(float)
    effects = key_drivers(presence, y, DriverConfig(min_mentions=min_mentions))
    assert len(effects) <= max(0, n - 2)
    for e in effects:
        fields = (e.effect, e.ci_low, e.ci_high, e.p_value, e.mean_with, e.mean_without, e.impact)
        assert all(np.isfinite(fields)), e
        assert e.ci_low <= e.effect <= e.ci_high and 0.0 <= e.p_value <= 1.0
        assert 1 <= e.mentions < n


def test_missing_scores_are_left_out_and_invalid_inputs_refused():
    rng = np.random.default_rng(8)
    a = rng.random(200) < 0.4
    y = 5 - a + rng.normal(0, 1, 200)
    with_gap = y.copy()
    with_gap[:10] = np.nan  # unanswered: used to turn every figure into NaN with p = 0
    got = key_drivers({"a": a}, with_gap, ANY)[0]
    want = key_drivers({"a": a[10:]}, y[10:], ANY)[0]
    assert got == want
    with pytest.raises(ValueError, match="finite"):
        key_drivers({"a": a}, np.where(np.arange(200) == 0, np.inf, y), ANY)
    for bad in (-1.0, np.nan, np.inf, 0.5):  # negative crashed in LAPACK, NaN gave []
        weights = np.ones(200)
        weights[3] = bad
        with pytest.raises(ValueError, match="weights"):
            key_drivers({"a": a}, y, ANY, weights.tolist())
    for flags in (np.where(a, 2.0, 0.0), np.where(a, np.nan, 0.0)):
        with pytest.raises(ValueError, match="presence"):
            key_drivers({"a": flags}, y, ANY)
    for confidence in (0.0, 1.0, 95.0, float("nan")):
        with pytest.raises(ValueError, match="confidence"):
            DriverConfig(confidence=confidence)
    # A zero weight is an empty group: the same as no row.
    zero = np.ones(200)
    zero[:10] = 0
    assert key_drivers({"a": a}, y, ANY, zero.tolist())[0] == want


def test_missing_answers_are_not_coded_as_detractors_or_unsatisfied():
    assert np.isnan(nps_points([np.nan, 10.0])[0]) and nps_points([np.nan, 10.0])[1] == 100
    assert np.isnan(csat_points([np.nan])[0])  # was 0: a missing answer counted unsatisfied
    assert nps_points([6.5, 6.99, 7.0, 8.99, 9.0]).tolist() == [-100, -100, 0, 0, 100]
    for bad in ([11.0], [-1.0]):
        with pytest.raises(ValueError, match="NPS"):
            nps_points(bad)
    with pytest.raises(ValueError, match="CSAT"):
        csat_points([0.0])
    # The effect is in NPS points: the mean of the codes is % promoters - % detractors.
    answers = [10, 9, 8, 3, 0, 7]
    assert nps_points(answers).mean() == pytest.approx(100 * (2 / 6 - 2 / 6))


def test_lower_is_better_scores_rank_the_costliest_theme_first():
    # An effort score (high = more effort): the theme that raises it is the one to fix first.
    rng = np.random.default_rng(9)
    presence = {"attente": rng.random(2000) < 0.3, "appli": rng.random(2000) < 0.3}
    effort = 3 + 2.0 * presence["attente"] - 0.5 * presence["appli"] + rng.normal(0, 1, 2000)
    assert [e.theme for e in key_drivers(presence, effort)] == ["appli", "attente"]
    worst_first = key_drivers(presence, effort, higher_is_better=False)
    assert [e.theme for e in worst_first] == ["attente", "appli"]
